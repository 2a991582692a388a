"""Code execution works wherever the project is installed: a clone in a 0700 folder (`mktemp -d`, a
home directory under /root) with its virtual environment inside it, and workspaces inside it too."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import uuid

from .conftest import CANARY, NO_NAMESPACES, cmdline
from .staging import copy_project, make_venv, private_folder, remove_folder

SERVER = textwrap.dedent("""
    import dataclasses, json, os, sys
    from agents.sandbox import SandboxLimits, make_workspace, open_sandbox, probe_isolation, remove_workspace
    probe = probe_isolation()
    if os.environ.get("SANDBOX_TEST_NO_NAMESPACES") == "1":
        probe = dataclasses.replace(probe, namespaces=None, namespaces_error="switched off for this pass")
    sandbox = open_sandbox(probe=probe)
    report = {"available": sandbox.available, "reason": sandbox.reason, "failure": getattr(sandbox, "failure", None)}
    if sandbox.available:
        workspace = make_workspace()
        code = ("# " + os.environ["RUN_MARKER"] + "\\nimport os, sys\\nprint(sys.prefix)\\n"
                "try:\\n    open(sys.argv[1]).read(); print('READ app.py')\\n"
                "except OSError as exc:\\n    print('refused', type(exc).__name__)\\n"
                "print('HF_TOKEN' in os.environ)")
        result = sandbox.run(["python", "-c", code, os.path.abspath("app.py")], workspace, SandboxLimits(wall_s=20))
        report.update(exit_code=result.exit_code, output=result.output, note=result.note,
                      workspace=str(workspace))
        remove_workspace(workspace)
    print(json.dumps(report))
""")


def test_a_clone_in_a_private_folder_runs_sandboxed_code():
    private = private_folder("private-clone-")  # 0700: the sandbox uid may not even traverse it
    try:
        repo = copy_project(private / "repo")
        python = make_venv(repo / ".venv")
        (private / "tmp").mkdir(mode=0o700)
        marker = f"marker-{uuid.uuid4().hex}"
        env = {"PATH": "/usr/bin:/bin", "HOME": str(private), "TMPDIR": str(private / "tmp"), "HF_TOKEN": CANARY,
               "RUN_MARKER": marker,
               "PYTHONDONTWRITEBYTECODE": "1", "SANDBOX_TEST_NO_NAMESPACES": "1" if NO_NAMESPACES else "0"}
        done = subprocess.run([str(python), "-c", SERVER], cwd=repo, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert CANARY not in done.stdout + done.stderr
        assert [pid for pid in os.listdir("/proc") if pid.isdigit() and marker.encode() in cmdline(int(pid))] == []
        report = json.loads(done.stdout.strip().splitlines()[-1])
        if not report["available"]:
            # Only a root server that can neither mount a private root nor reach the interpreter may
            # refuse, and then it must say what to do.
            assert os.geteuid() == 0 and NO_NAMESPACES, report
            assert report["failure"] == "setup" and "world-" in report["reason"], report
            return
        lines = report["output"].split("\n")
        assert report["exit_code"] == 0, report
        assert lines[0] == str(repo / ".venv"), report  # the private venv itself, bound into the child's view
        assert lines[1].startswith("refused") and lines[2] == "False", report
        assert report["workspace"].startswith(str(private / "tmp")), report
    finally:
        remove_folder(private)
