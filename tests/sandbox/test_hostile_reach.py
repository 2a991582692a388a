"""Hostile programs that reach past the workspace without files or IP: unix sockets, metadata changes,
signals. Each attacks a decoy the test owns first, then the real thing; the server's files must keep
content and metadata and the server must still answer (the `intact` fixture)."""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from agents.sandbox import make_workspace, open_sandbox, remove_workspace
from agents.sandbox.workspace import workspace_root

from .conftest import APP_FILES, fingerprint, run_code


def with_args(args: list, code: str) -> str:
    """The attack script with its targets bound to ARGS."""
    return f"ARGS = {args!r}\n{code}"

UNIX_ATTACKS = r"""
import socket
stream, dgram, abstract = ARGS
def attempt(name, action):
    try:
        action(); print("SENT", name, flush=True)
    except OSError as exc:
        print("refused", name, type(exc).__name__, flush=True)
def connect(address):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(2); s.connect(address); s.sendall(b"leak")
def sendto(address, kind):
    s = socket.socket(socket.AF_UNIX, kind); s.sendto(b"leak", address)
def pair_sendto(address, kind):
    a, b = socket.socketpair(socket.AF_UNIX, kind); a.sendto(b"leak", address)
attempt("stream", lambda: connect(stream))
attempt("abstract", lambda: connect(abstract))
attempt("dgram", lambda: sendto(dgram, socket.SOCK_DGRAM))
attempt("pair-dgram", lambda: pair_sendto(dgram, socket.SOCK_DGRAM))
attempt("pair-stream", lambda: pair_sendto(dgram, socket.SOCK_STREAM))
"""


@pytest.fixture
def unix_listeners():
    """A stream and a datagram socket anyone may connect to (0777, in a 0777 folder), and an abstract one."""
    folder = Path(tempfile.mkdtemp(prefix="unix-listeners-"))
    folder.chmod(0o777)
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        stream.bind(str(folder / "stream.sock"))
        dgram.bind(str(folder / "dgram.sock"))
        abstract.bind(f"\0playground-test-{uuid.uuid4().hex}")
        for path in ("stream.sock", "dgram.sock"):
            os.chmod(folder / path, 0o777)
        for s in (stream, abstract):
            s.listen(4)
        for s in (stream, dgram, abstract):
            s.setblocking(False)
        yield stream, dgram, abstract
    finally:
        for s in (stream, dgram, abstract):
            s.close()
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def nothing_arrived(stream, dgram, abstract) -> bool:
    for listener in (stream, abstract):
        try:
            listener.accept()
            return False
        except BlockingIOError:
            pass
    try:
        dgram.recv(64)
        return False
    except BlockingIOError:
        return True


def test_unix_socket_egress_to_a_local_listener_fails(isolated, workspace, intact, unix_listeners):
    stream, dgram, abstract = unix_listeners
    # the listeners really take connections from an unconfined process of the same machine
    code = with_args([stream.getsockname(), dgram.getsockname(), abstract.getsockname()], UNIX_ATTACKS)
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert probe.stdout.count("SENT") >= 3, probe.stdout  # stream, abstract, dgram (pairs vary)
    assert not nothing_arrived(stream, dgram, abstract)
    while not nothing_arrived(stream, dgram, abstract):
        pass
    result = run_code(isolated, workspace, code)
    assert "SENT" not in result.output, result.output
    assert result.output.count("refused") == 5
    assert nothing_arrived(stream, dgram, abstract)


def test_python_process_tools_still_work_without_unix_egress(isolated, workspace):
    code = """
import multiprocessing as mp, socket, subprocess, sys
with mp.Pool(2) as pool:
    print("pool", pool.map(abs, [-1, -2]))
a, b = socket.socketpair(); a.sendall(b"x"); print("pair", b.recv(1))
print("subprocess", subprocess.run([sys.executable, "-c", "print(5)"], capture_output=True, text=True).stdout.strip())
try:
    m = mp.Manager(); d = m.dict(); d[1] = 2; print("manager", dict(d))
except Exception as exc:
    print("manager refused", type(exc).__name__, exc)
"""
    result = run_code(isolated, workspace, code)
    if not isolated.isolation.private_mounts:  # a private /dev/shm is what multiprocessing's locks need
        assert "Permission" in result.output
        return
    assert "pool [1, 2]" in result.output and "pair b'x'" in result.output and "subprocess 5" in result.output
    assert "manager {1: 2}" in result.output  # a unix socket inside the private root is fine


METADATA_ATTACKS = r"""
import os
def attempt(name, path, action):
    try:
        action(path); print("CHANGED", name, path, flush=True)
    except (OSError, NotImplementedError) as exc:
        print("refused", name, type(exc).__name__, flush=True)
ATTACKS = {
    "chmod-0": lambda p: os.chmod(p, 0),
    "chmod-777": lambda p: os.chmod(p, 0o777),
    "utime-epoch": lambda p: os.utime(p, (0, 0)),
    "utime-now": lambda p: os.utime(p),
    "setxattr": lambda p: os.setxattr(p, "user.pwned", b"1"),
    "chown-self": lambda p: os.chown(p, os.getuid(), os.getgid()),
    "lchown-self": lambda p: os.lchown(p, os.getuid(), os.getgid()),
    "truncate": lambda p: os.truncate(p, 0),
    "fchmod-ro-fd": lambda p: os.fchmod(os.open(p, os.O_RDONLY), 0),
    "futime-ro-fd": lambda p: os.utime(os.open(p, os.O_RDONLY), (0, 0)),
}
for path in ARGS:
    for name, action in ATTACKS.items():
        attempt(name, path, action)
"""


def test_metadata_outside_the_workspace_cannot_change(isolated, workspace, intact):
    decoy_dir = Path(tempfile.mkdtemp(prefix="decoy-meta-"))
    decoy = decoy_dir / "app.py"
    try:  # a decoy anyone may write, which only the sandbox protects: a broken sandbox fails here
        decoy_dir.chmod(0o777)
        decoy.write_text("decoy")
        decoy.chmod(0o666)
        before = fingerprint(decoy), fingerprint(decoy_dir)
        result = run_code(isolated, workspace, with_args([str(decoy), str(decoy_dir)], METADATA_ATTACKS))
        assert "CHANGED" not in result.output, result.output
        assert (fingerprint(decoy), fingerprint(decoy_dir)) == before
    finally:
        decoy.unlink()
        decoy_dir.rmdir()
    other = make_workspace()
    try:
        (other / "notes.txt").write_text("another session")
        targets = [str(other), str(other / "notes.txt"), str(workspace_root()), *map(str, APP_FILES)]
        venv_file = Path(sys.prefix) / "pyvenv.cfg"
        if os.getuid() != 0 and venv_file.stat().st_uid == os.getuid():  # a Space's venv: the server's own uid
            targets.append(str(venv_file))
        before = {t: fingerprint(Path(t), times=Path(t) != workspace_root()) for t in targets}
        result = run_code(isolated, workspace, with_args(targets, METADATA_ATTACKS))
        assert "CHANGED" not in result.output, result.output
        assert {t: fingerprint(Path(t), times=Path(t) != workspace_root()) for t in targets} == before
    finally:
        remove_workspace(other)


def test_metadata_inside_the_workspace_follows_the_mode(isolated, workspace):
    code = "import os\nopen('f', 'w')\nos.chmod('f', 0o600)\nprint(oct(os.stat('f').st_mode & 0o777))"
    result = run_code(isolated, workspace, code)
    iso = isolated.isolation
    if iso.seccomp_profile.metadata:
        assert result.output.strip() == "0o600", result
    else:  # no private root: seccomp refuses chmod everywhere
        assert "PermissionError" in result.output


STOP = """
import os, signal
for pid in ARGS:
    for sig in (signal.SIGSTOP, signal.SIGCONT):
        try:
            os.kill(pid, sig); print("SIGNALLED", pid, sig.name, flush=True)
        except OSError as exc:
            print("refused", pid, sig.name, type(exc).__name__, flush=True)
"""


def stopped_or_dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("T", "t", "Z", "X")


@pytest.mark.parametrize("simulate_abi_5", [True, False], ids=["simulated-landlock-abi-5", "this-kernel"])
def test_child_cannot_stop_the_server(probe, workspace, intact, simulate_abi_5):
    """Landlock below ABI 6 does not scope signals: the PID namespace (or a uid of its own) must
    protect the server, or the sandbox must refuse to run (the ABI is simulated through the probe,
    and the launcher then really applies ABI 5)."""
    abi = 5 if simulate_abi_5 else probe.landlock_abi
    sandbox = open_sandbox(probe=dataclasses.replace(probe, landlock_abi=abi))
    if not sandbox.available:
        assert abi < 6 and not probe.is_root and not probe.namespaces, sandbox.reason
        assert "does not scope signals" in sandbox.reason and sandbox.failure == "platform"
        return
    decoy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # the server's uid
    try:
        time.sleep(0.2)
        result = run_code(sandbox, workspace, with_args([decoy.pid], STOP))
        assert "SIGNALLED" not in result.output and not stopped_or_dead(decoy.pid), result.output
        # the decoy held: now the server itself (SIGCONT follows SIGSTOP, so a hole would not hang the suite)
        result = run_code(sandbox, workspace, with_args([os.getpid()], STOP))
        assert "SIGNALLED" not in result.output, result.output
        run_code(sandbox, workspace, "import os, signal\ntry:\n    os.kill(-1, signal.SIGSTOP)\n"
                                     "except OSError:\n    pass")
        assert not stopped_or_dead(decoy.pid)
    finally:
        decoy.kill()
        decoy.wait()
