"""Without the isolation it needs the sandbox refuses to run code, unless a local user opts out."""

from __future__ import annotations

import dataclasses

import pytest

from agents.sandbox import SandboxLimits, open_sandbox, supervisor
from agents.sandbox.probe import probe_isolation


@pytest.fixture
def no_landlock(monkeypatch):
    real = probe_isolation()
    fake = dataclasses.replace(real, landlock_abi=0, landlock_error="test: kernel without Landlock")
    monkeypatch.setattr(supervisor, "probe_isolation", lambda: fake)
    return fake


def test_missing_landlock_fails_closed(no_landlock, workspace):
    sandbox = open_sandbox()
    assert sandbox.available is False
    assert "Landlock" in sandbox.reason and "test: kernel without Landlock" in sandbox.reason
    result = sandbox.run(["python", "-c", "open('ran', 'w')"], workspace)
    assert result.exit_code is None and "disabled" in result.note
    assert not (workspace / "ran").exists()


def test_missing_seccomp_fails_closed(monkeypatch):
    fake = dataclasses.replace(probe_isolation(), seccomp_error="test: no seccomp")
    monkeypatch.setattr(supervisor, "probe_isolation", lambda: fake)
    sandbox = open_sandbox()
    assert not sandbox.available and "seccomp" in sandbox.reason


def test_root_without_uid_switch_fails_closed(monkeypatch):
    fake = dataclasses.replace(probe_isolation(), is_root=True, can_switch_uid=False)
    monkeypatch.setattr(supervisor, "probe_isolation", lambda: fake)
    assert not open_sandbox().available


def test_opt_out_runs_unisolated_with_bounds_still_applied(no_landlock, workspace):
    sandbox = open_sandbox(allow_unisolated=True)
    assert sandbox.available and "unisolated" in sandbox.reason
    code = "import os, resource\nprint(sorted(os.environ))\nprint(resource.getrlimit(resource.RLIMIT_CPU))"
    result = sandbox.run(["python", "-c", code], workspace, SandboxLimits(wall_s=10, cpu_s=3))
    assert result.exit_code == 0, result
    assert "HF_TOKEN" not in result.output and "(3, 4)" in result.output


@pytest.mark.parametrize("changes,allow,expect_isolation,expect_word", [
    ({}, False, True, "isolated"),
    ({"landlock_abi": 0, "landlock_error": "x"}, False, False, "Landlock"),
    ({"landlock_abi": 0, "landlock_error": "x"}, True, True, "unisolated"),
    ({"seccomp_error": "x"}, True, True, "unisolated"),
    ({"is_root": True, "can_switch_uid": False}, False, False, "root"),
    ({"is_root": False, "uid": 1000}, False, True, "RLIMIT_NPROC over all"),
    ({"landlock_abi": 5}, False, True, "signals NOT scoped"),
    ({"platform": "Darwin"}, True, False, "not Linux"),
])
def test_decide_fails_closed_unless_opted_out(changes, allow, expect_isolation, expect_word):
    base = dataclasses.replace(probe_isolation(), landlock_abi=7, landlock_error=None, seccomp_error=None,
                               platform="Linux", is_root=True, can_switch_uid=True, can_mount=False)
    isolation, reason = supervisor.decide(dataclasses.replace(base, **changes), allow)
    assert (isolation is not None) == expect_isolation
    assert expect_word in reason
    assert isolation is None or not isolation.private_mounts  # no CAP_SYS_ADMIN, no mount namespace
