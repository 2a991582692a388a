"""agents.tools: confinement to the workspace, size caps, argument checks, code tools through a sandbox."""

from __future__ import annotations

import os
import sys

import pytest

from agents.sandbox.api import ExecResult, SandboxLimits
from agents.file_tools import READ_CHARS, WRITE_CAP_BYTES
from agents.tools import RUN_OUTPUT_CHARS, SNIPPET_FILE, Toolbox, truncate
from tests.agents.helpers import FakeSandbox


@pytest.fixture
def workspace(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    return ws


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.txt", "a/../../outside.txt", "~/x", "", "  "])
def test_paths_outside_the_workspace_are_refused(workspace, path):
    box = Toolbox(workspace)
    for name, args in [("read_file", {"path": path}), ("write_file", {"path": path, "content": "x"})]:
        outcome = box.call(name, args)
        assert outcome.is_error, (name, path)
    assert not (workspace.parent / "outside.txt").exists()


def test_symlink_escaping_the_workspace_is_refused(workspace, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    (workspace / "link.txt").symlink_to(secret)
    (workspace / "dirlink").symlink_to(tmp_path)
    box = Toolbox(workspace)
    read = box.call("read_file", {"path": "link.txt"})
    assert read.is_error and "TOP SECRET" not in read.output
    write = box.call("write_file", {"path": "dirlink/secret.txt", "content": "overwritten"})
    assert write.is_error
    assert secret.read_text() == "TOP SECRET"


def test_symlink_inside_the_workspace_is_fine(workspace):
    (workspace / "real.txt").write_text("hello")
    (workspace / "alias.txt").symlink_to(workspace / "real.txt")
    assert Toolbox(workspace).call("read_file", {"path": "alias.txt"}).output == "real.txt, lines 1-1 of 1:\n1\thello"


def test_write_then_read_and_list_round_trip(workspace):
    box = Toolbox(workspace)
    assert box.call("write_file", {"path": "pkg/mod.py", "content": "x = 1\n"}).output == "Created pkg/mod.py (1 line)."
    assert box.call("read_file", {"path": "pkg/mod.py"}).output == "pkg/mod.py, lines 1-1 of 1:\n1\tx = 1"
    assert (workspace / "pkg" / "mod.py").read_text() == "x = 1\n"
    listing = box.call("list_files", {}).output
    assert "pkg/mod.py  (6 bytes)" in listing


def test_a_long_file_is_read_in_pages_within_the_budget(workspace):
    (workspace / "big.txt").write_text("".join(f"{'z' * 99}\n" for _ in range(1000)))
    box = Toolbox(workspace)
    out = box.call("read_file", {"path": "big.txt", "limit": 1000}).output
    assert len(out) <= READ_CHARS + 100
    shown = out.splitlines()[1:]
    head = out.splitlines()[0]
    assert head == f"big.txt, lines 1-{len(shown)} of 1000 (read on with offset={len(shown) + 1}):"
    following = box.call("read_file", {"path": "big.txt", "offset": len(shown) + 1, "limit": 1000}).output
    assert following.splitlines()[1].startswith(f"{len(shown) + 1}\tzzz")


def test_write_is_capped(workspace):
    outcome = Toolbox(workspace).call("write_file", {"path": "big.txt", "content": "a" * (WRITE_CAP_BYTES + 1)})
    assert outcome.is_error and "at most" in outcome.output
    assert not (workspace / "big.txt").exists()


@pytest.mark.parametrize("name, args, fragment", [
    ("read_file", {}, "needs the argument"),
    ("read_file", {"path": 3}, "must be a string"),
    ("read_file", {"path": "a", "mode": "r"}, "has no argument"),
    ("read_file", ["a"], "must be an object"),
    ("delete_everything", {}, "no tool named"),
    ("read_file", {"path": "missing.txt"}, "does not exist"),
])
def test_bad_calls_come_back_as_errors(workspace, name, args, fragment):
    outcome = Toolbox(workspace).call(name, args)
    assert outcome.is_error and fragment in outcome.output


FILE_TOOLS = {"list_files", "read_file", "search", "write_file", "edit_file", "insert_lines"}


def test_without_a_sandbox_code_tools_are_not_declared_and_refuse(workspace):
    box = Toolbox(workspace, None)
    assert {s["function"]["name"] for s in box.specs()} == FILE_TOOLS
    outcome = box.call("run_python", {"code": "print(1)"})
    assert outcome.is_error and "Code execution is disabled" in outcome.output and "no sandbox" in outcome.output


def test_an_unavailable_sandbox_counts_as_none_and_its_reason_is_given(workspace):
    box = Toolbox(workspace, FakeSandbox(available=False, reason="bubblewrap is missing"))
    assert "run_python" not in {s["function"]["name"] for s in box.specs()}
    assert "bubblewrap is missing" in box.call("run_tests", {}).output


def test_run_python_code_is_written_to_a_file_and_run_through_the_sandbox(workspace):
    sandbox, limits, stop = FakeSandbox(), SandboxLimits(wall_s=3.0), lambda: False
    box = Toolbox(workspace, sandbox, limits=limits, should_stop=stop)
    outcome = box.call("run_python", {"code": "print(42)"})
    assert not outcome.is_error
    assert sandbox.runs == [(["python", SNIPPET_FILE], workspace, limits, stop)]
    assert (workspace / SNIPPET_FILE).read_text() == "print(42)"
    assert outcome.output == "exit code 0\noutput:\nok\n"
    assert (outcome.exit_code, outcome.timed_out, outcome.killed) == (0, False, False)


def test_run_python_by_path_and_run_tests_argv(workspace):
    (workspace / "tests").mkdir()
    (workspace / "main.py").write_text("print(1)")
    sandbox = FakeSandbox()
    box = Toolbox(workspace, sandbox)
    box.call("run_python", {"path": "main.py"})
    box.call("run_tests", {})
    box.call("run_tests", {"path": "tests"})
    assert [r[0] for r in sandbox.runs] == [["python", "main.py"], ["python", "-m", "pytest", "-q"],
                                            ["python", "-m", "pytest", "-q", "tests"]]
    assert box.call("run_python", {"code": "1", "path": "main.py"}).is_error
    assert box.call("run_python", {}).is_error
    assert box.call("run_python", {"path": "../x.py"}).is_error
    assert len(sandbox.runs) == 3


def test_timeout_and_truncation_notes_reach_the_model(workspace):
    result = ExecResult(exit_code=None, output="partial", timed_out=True, truncated=True, duration_s=3.0,
                        note="killed after 3 s wall time")
    outcome = Toolbox(workspace, FakeSandbox(result=result)).call("run_python", {"code": "while True: pass"})
    out = outcome.output
    assert "killed" in out and "TIMED OUT" in out and "killed after 3 s wall time" in out
    assert "output limit" in out and out.endswith("partial")
    assert outcome.is_error and (outcome.exit_code, outcome.timed_out, outcome.killed) == (None, True, True)


@pytest.mark.parametrize("result, tool, status, is_error, killed", [
    (ExecResult(0, "1 passed\n", False, False, 0.4), "run_tests", "exit code 0", False, False),
    (ExecResult(1, "1 failed\n", False, False, 0.4), "run_tests", "exit code 1 (tests failed)", True, False),
    (ExecResult(5, "no tests ran\n", False, False, 0.4), "run_tests", "exit code 5 (no tests were collected)", True,
     False),
    (ExecResult(1, "Traceback ...\n", False, False, 0.1), "run_python", "exit code 1", True, False),
    (ExecResult(None, "", False, False, 1.0, note="stopped by the user"), "run_python", "killed", True, True),
    (ExecResult(None, "", False, False, 0.0, note="another command is still running"), "run_python", "not run",
     True, False),
])
def test_a_failing_run_is_an_error_with_its_exit_status_as_fields(workspace, result, tool, status, is_error, killed):
    args = {"code": "pass"} if tool == "run_python" else {}
    outcome = Toolbox(workspace, FakeSandbox(result=result)).call(tool, args)
    assert outcome.output.splitlines()[0] == status
    assert (outcome.is_error, outcome.exit_code, outcome.killed) == (is_error, result.exit_code, killed)


def test_long_run_output_keeps_more_of_the_tail(workspace):
    output = "HEAD\n" + "x" * 50_000 + "\nFAILED test_a.py::test_x - assert 1 == 2\n"
    outcome = Toolbox(workspace, FakeSandbox(result=ExecResult(1, output, False, False, 1.0))).call("run_tests", {})
    assert len(outcome.output) <= RUN_OUTPUT_CHARS + 400
    assert outcome.output.endswith("FAILED test_a.py::test_x - assert 1 == 2\n") and "HEAD" in outcome.output
    assert "characters cut" in outcome.output


@pytest.mark.parametrize("length, cap", [(10, 100), (1000, 100), (5000, 4000), (100, 30)])
def test_truncate_respects_the_cap_and_keeps_both_ends(length, cap):
    text = "H" + "x" * (length - 2) + "T"
    out = truncate(text, cap)
    assert len(out) <= cap
    if length <= cap:
        assert out == text
    else:
        assert out.startswith("H") and "characters cut" in out


# ---- through the real sandbox, once agents.sandbox provides it ----

def _real_sandbox():
    try:
        from agents.sandbox import open_sandbox
    except ImportError:
        pytest.skip("agents.sandbox.open_sandbox is not there yet")
    sandbox = open_sandbox(allow_unisolated=True)
    if not sandbox.available:
        pytest.skip(f"no sandbox here: {sandbox.reason}")
    return sandbox


def test_real_sandbox_runs_code_and_kills_on_timeout(workspace):
    box = Toolbox(workspace, _real_sandbox(), limits=SandboxLimits(wall_s=2.0, cpu_s=5))
    assert "exit code 0" in (ok := box.call("run_python", {"code": "print(6 * 7)"}).output) and "42" in ok
    out = box.call("run_python", {"code": "import time\nprint('start', flush=True)\ntime.sleep(30)"}).output
    assert "TIMED OUT" in out or "killed" in out
    assert box.call("run_python", {"code": "print(1)"}).output.startswith("exit code 0")


def test_real_sandbox_caps_output(workspace):
    limits = SandboxLimits(output_bytes=1000)
    out = Toolbox(workspace, _real_sandbox(), limits=limits).call(
        "run_python", {"code": "print('y' * 100000)"}).output
    body = out.split("\noutput:\n", 1)[1]
    assert set(body.strip()) == {"y"} and len(body) <= 1000
    assert "output truncated at 1000 bytes" in out  # the model is told its output was cut


def test_real_sandbox_hides_parent_secrets(workspace, monkeypatch):
    monkeypatch.setenv("AGENT_TEST_SECRET_TOKEN", "s3cr3t-value-123")
    out = Toolbox(workspace, _real_sandbox()).call(
        "run_python", {"code": "import os\nprint(sorted(os.environ))\nprint(os.environ.get('AGENT_TEST_SECRET_TOKEN'))"}
    ).output
    assert "s3cr3t-value-123" not in out and "AGENT_TEST_SECRET_TOKEN" not in out


def test_real_sandbox_cannot_write_outside_the_workspace(workspace, tmp_path):
    target = tmp_path / f"escape-{os.getpid()}.txt"
    code = f"open({str(target)!r}, 'w').write('escaped')\nprint('wrote')"
    Toolbox(workspace, _real_sandbox()).call("run_python", {"code": code})
    assert not target.exists()


def test_real_sandbox_runs_pytest_in_the_workspace(workspace):
    pytest.importorskip("pytest")
    (workspace / "test_ok.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    out = Toolbox(workspace, _real_sandbox(), limits=SandboxLimits(wall_s=30)).call("run_tests", {}).output
    assert "1 passed" in out or "No module named pytest" in out, out
    assert sys.executable  # the child uses the sandbox's python, not necessarily ours
