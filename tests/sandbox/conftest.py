"""Fixtures for sandbox tests: a canary secret in the environment, one sandbox for the session,
fresh workspaces, and a runner that checks no process of the run survives and the canary never leaks."""

from __future__ import annotations

import logging
import os
import secrets
import uuid
from pathlib import Path

import pytest

from agents.sandbox import SandboxLimits, make_workspace, open_sandbox, remove_workspace
from agents.sandbox import procs
from agents.sandbox.workspace import is_sandbox_uid

CANARY = f"canary-{secrets.token_hex(8)}"


@pytest.fixture(autouse=True)
def canary_env(monkeypatch, caplog):
    monkeypatch.setenv("HF_TOKEN", CANARY)
    caplog.set_level(logging.DEBUG)
    yield CANARY
    assert CANARY not in caplog.text


@pytest.fixture(scope="session")
def sandbox():
    return open_sandbox()


@pytest.fixture
def isolated(sandbox):
    if not sandbox.available:
        pytest.skip(f"isolation unavailable on this kernel: {sandbox.reason}")
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
             **kwargs):
    """Run hostile code; afterwards nothing of it may live and the canary may not appear."""
    marker = f"marker-{uuid.uuid4().hex}"
    result = sandbox.run(["python", "-c", f"# {marker}\n{code}"], workspace, limits, **kwargs)
    assert live_leftovers(marker, workspace) == []
    assert CANARY not in result.output
    assert CANARY not in (result.note or "")
    return result
