"""Fixtures for sandbox tests: a canary secret in the environment, one sandbox for the session,
fresh workspaces, a runner that checks no process of the run survives and the canary never leaks,
and a check that the server's files are unchanged (content and metadata) and the server still answers.

SANDBOX_TEST_NO_NAMESPACES=1 runs the same tests with the probe saying namespaces are unavailable, the
way a container without user namespaces runs (test_modes.py sets it for its nested passes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import secrets
import stat
import uuid
from pathlib import Path

import pytest

from agents.sandbox import SandboxLimits, make_workspace, open_sandbox, probe_isolation, remove_workspace
from agents.sandbox import procs
from agents.sandbox.workspace import is_sandbox_uid, workspace_root

CANARY = f"canary-{secrets.token_hex(8)}"
REPO = Path(__file__).resolve().parents[2]
APP_FILES = [REPO / "app.py", REPO / "protocol.py", REPO / "agents" / "sandbox" / "launcher.py"]
IN_CI = os.environ.get("CI", "") not in ("", "0", "false")
NO_NAMESPACES = os.environ.get("SANDBOX_TEST_NO_NAMESPACES") == "1"


def skip_or_fail(why: str) -> None:
    """A security test that cannot run here: skipped on a developer's machine, a failure in CI."""
    if IN_CI:
        pytest.fail(f"{why} (CI=1: a security test that cannot run fails)")
    pytest.skip(why)


@pytest.fixture(autouse=True)
def canary_env(monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", CANARY)
    caplog.set_level(logging.DEBUG)
    yield CANARY
    assert CANARY not in caplog.text


@pytest.fixture(scope="session")
def probe():
    real = probe_isolation()
    if NO_NAMESPACES:
        return dataclasses.replace(real, namespaces=None,
                                   namespaces_error="switched off for this pass (SANDBOX_TEST_NO_NAMESPACES=1)")
    return real


@pytest.fixture(scope="session")
def sandbox(probe):
    return open_sandbox(probe=probe)


@pytest.fixture
def isolated(sandbox):
    if not sandbox.available:
        if sandbox.failure == "setup":  # the kernel could isolate; this installation failed to
            pytest.fail(f"the sandbox cannot start in this installation: {sandbox.reason}")
        skip_or_fail(f"isolation unavailable on this kernel: {sandbox.reason}")
    return sandbox


@pytest.fixture
def workspace():
    path = make_workspace()
    yield path
    remove_workspace(path)


def cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def live_leftovers(marker: str, workspace: Path) -> list[int]:
    """Live processes carrying the run's marker in their command line or running as its private uid."""
    uid = workspace.stat().st_uid
    found = []
    for p in procs.scan(with_uid=True):
        if p.state in ("Z", "X") or p.pid == os.getpid():
            continue
        if marker.encode() in cmdline(p.pid) or (is_sandbox_uid(uid) and p.uid == uid):
            found.append(p.pid)
    return found


def run_code(sandbox, workspace: Path, code: str, limits: SandboxLimits = SandboxLimits(wall_s=10, cpu_s=5),
             marker: str | None = None, **kwargs):
    """Run hostile code; afterwards nothing of it may live and the canary may not appear."""
    marker = marker or f"marker-{uuid.uuid4().hex}"
    result = sandbox.run(["python", "-c", f"# {marker}\n{code}"], workspace, limits, **kwargs)
    assert live_leftovers(marker, workspace) == []
    assert CANARY not in result.output
    assert CANARY not in (result.note or "")
    return result


def fingerprint(path: Path, times: bool = True) -> tuple:
    """Content and every piece of metadata a child could change: mode, owner, times, xattrs."""
    st = os.lstat(path)
    content = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else None
    try:
        xattrs = sorted((name, os.getxattr(path, name, follow_symlinks=False))
                        for name in os.listxattr(path, follow_symlinks=False))
    except OSError:
        xattrs = None
    stamp = (st.st_size, st.st_mtime_ns, st.st_ctime_ns) if times else ()
    return content, st.st_mode, st.st_uid, st.st_gid, xattrs, stamp


@pytest.fixture
def intact(isolated):
    """The server's own files keep content and metadata, the workspaces folder keeps its owner and
    mode, and the server still answers a run afterwards."""
    files = {p: fingerprint(p) for p in APP_FILES}
    folders = {p: fingerprint(p, times=False) for p in (REPO, REPO / "agents", workspace_root())}
    yield
    assert {p: fingerprint(p) for p in APP_FILES} == files, "an app file changed"
    assert {p: fingerprint(p, times=False) for p in folders} == folders, "a server folder changed"
    ws = make_workspace()
    try:
        answer = isolated.run(["python", "-c", "print('still answering')"], ws, SandboxLimits(wall_s=10))
    finally:
        remove_workspace(ws)
    assert answer.exit_code == 0 and answer.output.strip() == "still answering", answer
