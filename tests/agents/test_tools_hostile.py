"""Hostile workspaces: what sandboxed code leaves behind (FIFOs, sockets, symlinks, loops, a 1,500-deep tree)
must never hang, crash or mislead the server-side tools. Every call goes through Toolbox.call as the agent
makes it, and must come back (as an error where it touches the trap) within a few seconds.

Each trap is planted twice: by the test itself (runs everywhere) and by model-written code through
run_python in the real sandbox (the way an attack happens; under CI=1 a missing sandbox fails the test).
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from agents.sandbox import SandboxLimits, make_workspace, open_sandbox, remove_workspace
from agents.tools import ToolOutcome, Toolbox

DEPTH = 1500
PROMPT_S = 10.0  # a call that takes longer than this is hung (a FIFO open blocks forever)

PLANT = f"""
import os
os.mkfifo("notes.txt")                       # the name the next write_file uses
os.unlink("_snippet.py")                     # this very script: the next run_python writes here
os.mkfifo("_snippet.py")
os.symlink("notes.txt", "alias.txt")         # a link inside the workspace, to the FIFO
os.symlink("/etc/passwd", "passwd.txt")      # a link out of the workspace
os.symlink("loop_b", "loop_a")
os.symlink("loop_a", "loop_b")
os.mkdir("deep")
os.chdir("deep")
for _ in range({DEPTH}):
    os.mkdir("d")
    os.chdir("d")
with open("bottom.txt", "w") as f:
    f.write("needle at the bottom")
print("planted")
"""


def plant_from_the_server(ws: Path) -> None:
    """The same traps, made by the test process (and a listening unix socket, which the sandbox may forbid)."""
    os.mkfifo(ws / "notes.txt")
    os.mkfifo(ws / "_snippet.py")
    (ws / "alias.txt").symlink_to("notes.txt")
    (ws / "passwd.txt").symlink_to("/etc/passwd")
    (ws / "loop_a").symlink_to("loop_b")
    (ws / "loop_b").symlink_to("loop_a")
    fd = os.open(ws, os.O_DIRECTORY)
    for name in ["deep"] + ["d"] * DEPTH:  # dir fds: the test's own working directory stays put
        os.mkdir(name, dir_fd=fd)
        child = os.open(name, os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    bottom = os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
    os.write(bottom, b"needle at the bottom")
    os.close(bottom)
    os.close(fd)


def remove_tree_iteratively(top: Path) -> None:
    """Delete a tree of any depth (shutil.rmtree recurses on Python 3.11), one directory fd at a time."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fd, names = os.open(top, flags), []  # names: the path from top down to fd
    while True:
        with os.scandir(fd) as it:
            sub = None
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    sub = entry.name
                    break
                os.unlink(entry.name, dir_fd=fd)
        if sub is not None:
            child = os.open(sub, flags, dir_fd=fd)
            os.close(fd)
            fd, names = child, [*names, sub]
            continue
        if not names:
            os.close(fd)
            os.rmdir(top)
            return
        parent = os.open("..", flags, dir_fd=fd)
        os.close(fd)
        os.rmdir(names.pop(), dir_fd=parent)
        fd = parent


def call_promptly(box: Toolbox, name: str, arguments: dict) -> ToolOutcome:
    """Toolbox.call in a thread; fails the test (instead of hanging it) when the call does not return."""
    box_result: list[ToolOutcome] = []
    worker = threading.Thread(target=lambda: box_result.append(box.call(name, arguments)), daemon=True)
    worker.start()
    worker.join(PROMPT_S)
    assert not worker.is_alive(), f"{name}({arguments}) hung: it did not return within {PROMPT_S} s"
    return box_result[0]


@pytest.fixture
def server_planted(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    plant_from_the_server(ws)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(ws / "listening.sock"))
    server.listen(1)
    try:
        yield Toolbox(ws), ws
    finally:
        server.close()
        remove_tree_iteratively(ws / "deep")


@pytest.fixture(scope="module")
def real_sandbox():
    sandbox = open_sandbox()
    if not sandbox.available:
        message = f"no isolated sandbox here, so the attack cannot be planted by sandboxed code: {sandbox.reason}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return sandbox


@pytest.fixture
def sandbox_planted(real_sandbox):
    ws = make_workspace()
    box = Toolbox(ws, real_sandbox, limits=SandboxLimits(wall_s=30, cpu_s=20))
    try:
        planted = box.call("run_python", {"code": PLANT})
        assert planted.exit_code == 0 and "planted" in planted.output, planted.output
        yield box, ws
    finally:
        if (ws / "deep").exists():
            remove_tree_iteratively(ws / "deep")
        remove_workspace(ws)


# (tool, arguments, what the error must say)
TRAPS = [
    ("write_file", {"path": "notes.txt", "content": "x"}, "is a FIFO"),
    ("read_file", {"path": "notes.txt"}, "is a FIFO"),
    ("edit_file", {"path": "notes.txt", "old_text": "a", "new_text": "b"}, "is a FIFO"),
    ("insert_lines", {"path": "notes.txt", "after_line": 0, "text": "x"}, "is a FIFO"),
    ("search", {"text": "x", "path": "notes.txt"}, "is a FIFO"),
    ("read_file", {"path": "alias.txt"}, "is a FIFO"),
    ("write_file", {"path": "alias.txt", "content": "x"}, "is a FIFO"),
    ("read_file", {"path": "passwd.txt"}, "leads outside the workspace"),
    ("write_file", {"path": "passwd.txt", "content": "pwned"}, "leads outside the workspace"),
    ("read_file", {"path": "loop_a"}, "cannot be resolved"),
    ("write_file", {"path": "loop_a/x.py", "content": "x"}, "cannot be resolved"),
    ("read_file", {"path": "deep"}, "is a folder"),
    ("write_file", {"path": "notes.txt/x.py", "content": "x"}, "is a FIFO"),
]


def check_traps(box: Toolbox, ws: Path) -> None:
    passwd = Path("/etc/passwd").read_bytes()
    for name, arguments, fragment in TRAPS:
        outcome = call_promptly(box, name, arguments)
        assert outcome.is_error and fragment in outcome.output, (name, arguments, outcome.output)
    assert Path("/etc/passwd").read_bytes() == passwd
    assert os.path.islink(ws / "passwd.txt") and (ws / "notes.txt").is_fifo()

    listing = call_promptly(box, "list_files", {})
    assert not listing.is_error
    assert "notes.txt  (a FIFO)" in listing.output and "passwd.txt  (a symbolic link)" in listing.output
    assert "(listing incomplete: folders deeper than" in listing.output
    found = call_promptly(box, "search", {"text": "needle"})
    assert not found.is_error and found.output.startswith("No match for 'needle'")
    assert "search incomplete: folders deeper than" in found.output


def test_server_side_tools_refuse_traps_planted_in_the_workspace(server_planted):
    box, ws = server_planted
    check_traps(box, ws)
    outcome = call_promptly(box, "read_file", {"path": "listening.sock"})
    assert outcome.is_error and "is a socket" in outcome.output
    # the deep tree does not break the walk of a shallow neighbour
    (ws / "src").mkdir()
    (ws / "src" / "app.py").write_text("needle = 1\n")
    assert call_promptly(box, "search", {"text": "needle"}).output.splitlines()[:2] == [
        "1 match in 1 file:", "src/app.py:1: needle = 1"]
    assert "src/app.py  (11 bytes)" in call_promptly(box, "list_files", {}).output


def test_traps_planted_by_sandboxed_code_do_not_hang_the_next_tool_call(sandbox_planted):
    box, ws = sandbox_planted
    check_traps(box, ws)
    again = call_promptly(box, "run_python", {"code": "print('never runs')"})
    assert again.is_error and "'_snippet.py' is a FIFO" in again.output and "never runs" not in again.output
