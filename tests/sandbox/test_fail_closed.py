"""Without the isolation it needs the sandbox refuses to run code, unless a local user opts out."""

from __future__ import annotations

import dataclasses
import tempfile

import pytest

from agents.sandbox import SandboxLimits, open_sandbox, seccomp, supervisor
from agents.sandbox.probe import probe_isolation
from agents.sandbox.workspace import workspace_root


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


BASE = dict(landlock_abi=7, landlock_error=None, seccomp_error=None, platform="Linux", is_root=True,
            can_switch_uid=True, namespaces="root", namespaces_error=None, memory_bytes=16 << 30)
NO_NS = {"namespaces": None, "namespaces_error": "test: no namespaces"}
USER = {"is_root": False, "can_switch_uid": False, "uid": 1000}


@pytest.mark.parametrize("changes,allow,expect_isolation,expect_word", [
    ({}, False, True, "private root"),
    ({"landlock_abi": 0, "landlock_error": "x"}, False, False, "Landlock"),
    ({"landlock_abi": 0, "landlock_error": "x"}, True, True, "unisolated"),
    ({"seccomp_error": "x"}, True, True, "unisolated"),
    ({"is_root": True, "can_switch_uid": False}, False, False, "root"),
    ({**USER, "namespaces": "user"}, False, True, "inside a user namespace of its own"),
    ({**USER, **NO_NS}, False, True, "RLIMIT_NPROC over all"),
    ({**USER, **NO_NS, "landlock_abi": 5}, False, False, "does not scope signals"),
    ({**USER, "namespaces": "user", "landlock_abi": 5}, False, True, "the PID namespace hides the server"),
    ({**NO_NS, "landlock_abi": 5}, False, True, "a different uid protects the server"),
    ({"platform": "Darwin"}, True, False, "not Linux"),
])
def test_decide_fails_closed_unless_opted_out(changes, allow, expect_isolation, expect_word):
    probe = dataclasses.replace(probe_isolation(), **{**BASE, **changes})
    isolation, reason = supervisor.decide(probe, allow)
    assert (isolation is not None) == expect_isolation
    assert expect_word in reason


@pytest.mark.parametrize("changes,unix_sockets,metadata", [
    ({}, True, True),  # a private root hides every socket and makes the rest read-only
    ({**USER, "namespaces": "user"}, True, True),
    (NO_NS, False, False),  # root without namespaces: DAC would still let it touch world-writable files
    ({**USER, **NO_NS}, False, False),  # the server's own uid and no private root: seccomp guards both
])
def test_seccomp_closes_what_no_private_root_hides(changes, unix_sockets, metadata):
    isolation, _ = supervisor.decide(dataclasses.replace(probe_isolation(), **{**BASE, **changes}), False)
    assert isolation.seccomp_profile == seccomp.Profile(unix_sockets=unix_sockets, metadata=metadata)
    assert isolation.private_mounts == (isolation.namespaces is not None)


def test_unreachable_interpreter_without_a_private_root_is_a_setup_problem(tmp_path, monkeypatch):
    private = tmp_path / "home"
    (private / "venv").mkdir(parents=True)
    tmp_path.chmod(0o755)
    private.chmod(0o700)
    probe = dataclasses.replace(probe_isolation(), **{**BASE, **NO_NS})
    problem = supervisor.setup_problem(probe, [str(private / "venv")])
    assert problem is not None and str(private) in problem and "world-readable folder" in problem
    assert supervisor.setup_problem(dataclasses.replace(probe, namespaces="root"), [str(private / "venv")]) is None
    assert supervisor.setup_problem(dataclasses.replace(probe, **USER), [str(private / "venv")]) is None
    monkeypatch.setattr(tempfile, "tempdir", str(private))  # TMPDIR inside the private folder
    problem = supervisor.setup_problem(probe, [str(workspace_root())])
    assert problem is not None and "set TMPDIR" in problem


def test_a_failing_self_test_is_a_setup_failure_that_says_what_to_do(monkeypatch):
    monkeypatch.setattr(supervisor, "self_test", lambda sandbox: "self-test failed (exit 1): 'boom'")
    sandbox = open_sandbox()
    assert not sandbox.available and sandbox.failure == "setup"
    assert "boom" in sandbox.reason and "python -m agents.sandbox" in sandbox.reason


def test_missing_kernel_features_are_platform_failures(no_landlock):
    sandbox = open_sandbox()
    assert not sandbox.available and sandbox.failure == "platform"


def test_a_private_root_that_fails_its_self_test_falls_back_to_seccomp_and_landlock(monkeypatch):
    probe = dataclasses.replace(probe_isolation(), **BASE)
    failing = "self-test failed (pivot_root: EPERM)"
    monkeypatch.setattr(supervisor, "self_test", lambda sandbox: failing if sandbox.isolation.namespaces else None)
    monkeypatch.setattr(supervisor, "setup_problem", lambda probe, dirs: None)  # an interpreter anyone can reach
    sandbox = open_sandbox(probe=probe)
    assert sandbox.available and sandbox.isolation.namespaces is None
    assert "the private root failed its self-test" in sandbox.reason
    assert sandbox.isolation.seccomp_profile == seccomp.Profile(unix_sockets=False, metadata=False)
