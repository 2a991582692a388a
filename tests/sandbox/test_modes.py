"""The hostile suite again, in the other ways a server runs: as a throwaway unprivileged user (the way a
Space runs), with and without namespaces, and as root without namespaces (a container without
CAP_SYS_ADMIN). Each pass is a nested pytest on a private copy of the project with a venv of its own,
owned by that user; this test reports its results and fails with them.

Needs root to create the user; a developer's machine that is not root skips, CI (root) runs it.
"""

from __future__ import annotations

import os
import re

import pytest

from .conftest import IN_CI, skip_or_fail
from .staging import (chown_tree, copy_project, free_uid, kill_uid, make_venv, private_folder, remove_folder,
                      run_as)

HOSTILE = ["test_hostile_code.py", "test_hostile_reach.py", "test_hostile_resources.py", "test_limits.py",
           "test_install.py", "test_workspace.py"]
# Tests of pure tree walking, the same whoever runs them: once, in the main run, is enough.
MODE_FREE = ["test_trees_deeper_than_any_stack_are_walked_and_removed",
             "test_disk_scan_stops_at_the_files_cap_whatever_the_depth"]
MODES = {  # name: (as a throwaway user, namespaces, test files)
    "unprivileged": (True, True, HOSTILE),
    "unprivileged-without-namespaces": (True, False, HOSTILE),
    # Without a private root the sandbox uid must reach the interpreter itself: the project and venv sit in
    # a world-readable folder, and pyenv's /root is made traversable the way an operator would install it.
    "root-without-namespaces": (False, False, ["test_hostile_reach.py", "test_install.py", "test_limits.py"]),
}


@pytest.mark.parametrize("mode", MODES)
def test_hostile_suite_holds_in_mode(mode):
    as_user, namespaces, files = MODES[mode]
    if os.geteuid() != 0:
        skip_or_fail(f"the {mode} pass creates a throwaway user, which needs root (CI runs as root)")
    home = private_folder("m-")  # short: unix socket paths under its workspaces must fit in 108 bytes
    uid = free_uid() if as_user else None
    try:
        repo = copy_project(home / "repo")
        python = make_venv(home / "venv")
        (home / "tmp").mkdir(mode=0o700)
        if uid is not None:
            chown_tree(home, uid)
        else:
            for folder in (home, home / "tmp"):
                folder.chmod(0o755)
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(home / "tmp"), "LANG": "C.UTF-8",
               "USER": f"sandbox-test-{uid}", "LOGNAME": f"sandbox-test-{uid}", "PYTHONDONTWRITEBYTECODE": "1",
               "SANDBOX_TEST_NO_NAMESPACES": "0" if namespaces else "1", "CI": os.environ.get("CI", "")}
        argv = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", "--timeout=300",
                "-k", f"not ({' or '.join(MODE_FREE)})", *[f"tests/sandbox/{f}" for f in files]]
        done = run_as(uid if uid is not None else 0, argv, repo, env, timeout_s=900)
        tail = (done.stdout + done.stderr)[-6000:]
        summary = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed)", line)]
        print(f"\n[{mode}] {summary[-1] if summary else 'no summary'}")
        assert done.returncode == 0, f"{mode} pass failed:\n{tail}"
        if IN_CI:
            assert " skipped" not in (summary[-1] if summary else ""), f"{mode} pass skipped tests in CI:\n{tail}"
    finally:
        if uid is not None:
            kill_uid(uid)
        remove_folder(home)
