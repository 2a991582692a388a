"""Hostile programs: each must fail to reach secrets, the server, the network or other sessions, and
leave no process behind (run_code checks that and the canary)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from agents.sandbox import SandboxLimits, make_workspace, remove_workspace

from .conftest import CANARY, NO_NAMESPACES, REPO, fingerprint, run_code


def test_the_pass_runs_in_the_mode_it_claims(isolated, probe):
    """The nested passes of test_modes.py switch namespaces off through the probe: make sure they did."""
    if NO_NAMESPACES or probe.namespaces is None:
        assert isolated.isolation.namespaces is None
    else:
        assert isolated.isolation.namespaces == ("root" if os.geteuid() == 0 else "user")
    assert isolated.isolation.drop_uid == (os.geteuid() == 0)


def test_environment_holds_only_the_allowlist(isolated, workspace):
    result = run_code(isolated, workspace, "import os\nfor k, v in sorted(os.environ.items()): print(k, '=', v)")
    keys = {line.split(" = ")[0] for line in result.output.splitlines()}
    assert keys == {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONNOUSERSITE",
                    "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}


def test_server_environ_is_unreadable(isolated, workspace):
    env = {**os.environ, "HF_TOKEN": CANARY}
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env=env)
    try:
        time.sleep(0.2)
        assert CANARY.encode() in Path(f"/proc/{server.pid}/environ").read_bytes()  # the test can fail
        code = f"""
import glob
for path in [f"/proc/{server.pid}/environ", f"/proc/{os.getpid()}/environ"] + glob.glob("/proc/*/environ"):
    try:
        print(path, open(path, "rb").read())
    except OSError as exc:
        print(path, "refused", type(exc).__name__)
"""
        result = run_code(isolated, workspace, code)
        assert f"/proc/{server.pid}/environ refused" in result.output
    finally:
        server.kill()
        server.wait()


def test_token_file_outside_workspace_is_unreadable(isolated, workspace):
    folder = Path(tempfile.mkdtemp(prefix="token-test-"))
    try:
        folder.chmod(0o755)
        token = folder / "token"
        token.write_text(CANARY)
        token.chmod(0o644)  # world-readable: only the sandbox stands in the way
        result = run_code(isolated, workspace, f"print(open({str(token)!r}).read())")
        assert result.exit_code != 0
        # Landlock refuses it, or the private root does not even hold it
        assert "PermissionError" in result.output or "FileNotFoundError" in result.output
    finally:
        token.unlink()
        folder.rmdir()


def test_app_files_cannot_be_deleted_or_overwritten(isolated, workspace, intact):
    decoy_dir = Path(tempfile.mkdtemp(prefix="decoy-"))
    try:  # a broken sandbox must fail here, on a decoy, before it is pointed at the real files
        decoy_dir.chmod(0o777)
        decoy = decoy_dir / "app.py"
        decoy.write_text("decoy")
        decoy.chmod(0o666)
        probe = run_code(isolated, workspace, f"open({str(decoy)!r}, 'w').write('pwned')")
        assert decoy.read_text() == "decoy", "the sandbox let a child overwrite a file outside its workspace"
        assert probe.exit_code != 0
    finally:
        decoy.unlink()
        decoy_dir.rmdir()
    targets = [REPO / "app.py", REPO / "protocol.py"]
    before = {p: fingerprint(p) for p in targets}
    code = f"""
import os
for path in {[str(p) for p in targets]!r}:
    for attempt in (lambda: open(path, "w").write("pwned"), lambda: os.remove(path),
                    lambda: os.rename(path, path + ".bak"), lambda: os.chmod(path, 0o777)):
        try:
            attempt(); print("DONE", path)
        except OSError as exc:
            print("refused", type(exc).__name__)
"""
    result = run_code(isolated, workspace, code)
    assert "DONE" not in result.output
    assert {p: fingerprint(p) for p in targets} == before


def test_tcp_connect_to_local_listener_fails(isolated, workspace):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        code = f"""
import socket
s = socket.create_connection(("127.0.0.1", {port}), timeout=2)
print("CONNECTED")
"""
        result = run_code(isolated, workspace, code)
        assert "CONNECTED" not in result.output and result.exit_code != 0
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_udp_send_to_local_socket_fails(isolated, workspace):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        port = receiver.getsockname()[1]
        code = f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(b"leak", ("127.0.0.1", {port}))
print("SENT")
"""
        result = run_code(isolated, workspace, code)
        assert "SENT" not in result.output and "PermissionError" in result.output
        receiver.setblocking(False)
        with pytest.raises(BlockingIOError):
            receiver.recvfrom(64)


def test_kill_and_ptrace_of_server_fail(isolated, workspace):
    me = os.getpid()
    code = f"""
import ctypes, os, signal
try:
    os.kill({me}, signal.SIGKILL); print("KILLED")
except OSError as exc:
    print("kill refused", type(exc).__name__)
libc = ctypes.CDLL(None, use_errno=True)
rc = libc.ptrace(16, {me}, None, None)  # PTRACE_ATTACH
print("ptrace", rc, ctypes.get_errno())
"""
    result = run_code(isolated, workspace, code)
    assert "kill refused" in result.output
    assert "ptrace -1 1" in result.output  # EPERM
    assert Path(f"/proc/{me}").exists()


def test_other_session_workspace_is_unreadable(isolated, workspace):
    other = make_workspace()
    try:
        secret = other / "notes.txt"
        secret.write_text("private to the other session")
        os.chmod(secret, 0o644)
        code = f"""
import os
for attempt in (lambda: open({str(secret)!r}).read(), lambda: os.listdir({str(other)!r})):
    try:
        print("GOT", attempt())
    except OSError as exc:
        print("refused", type(exc).__name__)
"""
        result = run_code(isolated, workspace, code)
        assert "GOT" not in result.output and result.output.count("refused") == 2
    finally:
        remove_workspace(other)


def test_workspace_is_private_and_writable(isolated, workspace):
    result = run_code(isolated, workspace, "open('out.txt', 'w').write('ok'); import os; os.mkdir('d')")
    assert result.exit_code == 0, result
    assert (workspace / "out.txt").read_text() == "ok"
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o700


def test_only_the_isolated_interpreter_may_run(sandbox, workspace):
    result = sandbox.run(["/bin/sh", "-c", "echo hi"], workspace)
    assert result.exit_code is None and "python" in result.note and result.output == ""


def test_pytest_runs_inside_the_sandbox(isolated, workspace):
    (workspace / "test_add.py").write_text("def test_add():\n    assert 1 + 1 == 2\n")
    result = isolated.run(["python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], workspace,
                          SandboxLimits(wall_s=30, cpu_s=20))
    assert result.exit_code == 0, result
    assert "1 passed" in result.output


def test_scripts_import_their_workspace_neighbours_but_not_the_user_site(isolated, workspace):
    (workspace / "helper.py").write_text("VALUE = 42\n")
    (workspace / "main.py").write_text("import sys, helper\nprint(helper.VALUE, sys.flags.no_user_site,"
                                       " sys.flags.ignore_environment)\n")
    result = isolated.run(["python", "main.py"], workspace)
    assert result.output.split() == ["42", "1", "1"], result


def test_shared_memory_is_private_to_the_run(isolated, workspace):
    planted = Path("/dev/shm") / f"planted-{os.getpid()}"
    planted.write_text(CANARY)
    planted.chmod(0o644)
    try:
        code = f"""
import os, multiprocessing as mp
print("visible" if os.path.exists({str(planted)!r}) else "hidden")
try:
    print(mp.Pool(2).map(abs, [-1, -2]))
except OSError as exc:
    print("pool refused", type(exc).__name__)
"""
        result = run_code(isolated, workspace, code)
        lines = result.output.split("\n")
        if isolated.isolation.private_mounts:  # a /dev/shm of its own: semaphores work, the host's is hidden
            assert lines[:2] == ["hidden", "[1, 2]"], result
        else:  # the host's /dev/shm: Landlock keeps it unreadable and unwritable
            assert "pool refused PermissionError" in result.output, result
    finally:
        planted.unlink()
