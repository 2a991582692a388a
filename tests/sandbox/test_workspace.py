"""Workspaces: private, removable whatever the child left, and removal never leaves the workspace root."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from agents.sandbox import make_workspace, remove_workspace, tree, uids
from agents.sandbox.workspace import is_sandbox_uid, measure, workspace_root


def test_workspace_is_fresh_and_private():
    a, b = make_workspace(), make_workspace()
    try:
        assert a != b and a.parent == b.parent == workspace_root()
        assert stat.S_IMODE(a.stat().st_mode) == 0o700
        assert stat.S_IMODE(workspace_root().stat().st_mode) == 0o711
        if os.geteuid() == 0:
            assert is_sandbox_uid(a.stat().st_uid) and a.stat().st_uid != b.stat().st_uid
    finally:
        remove_workspace(a)
        remove_workspace(b)


def test_read_only_leftovers_are_removed():
    ws = make_workspace()
    nested = ws / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "f").write_text("x")
    (nested / "f").chmod(0o400)
    nested.chmod(0o500)
    (ws / "a").chmod(0o500)
    os.symlink("/etc/passwd", ws / "link")
    remove_workspace(ws)
    assert not ws.exists()
    assert os.path.exists("/etc/passwd")


def test_missing_workspace_is_fine():
    ws = make_workspace()
    remove_workspace(ws)
    remove_workspace(ws)


@pytest.mark.parametrize("target", ["/etc", "/tmp", str(workspace_root()), f"{workspace_root()}/../etc"])
def test_removal_outside_the_workspace_root_is_refused(target):
    with pytest.raises(ValueError, match="refusing"):
        remove_workspace(target)


def test_measure_counts_bytes_and_entries(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * 10000)
    usage = measure(tmp_path)
    assert usage.files == 2 and usage.bytes >= 10000
    assert measure(tmp_path, stop_after_files=0).files == 1


def test_harden_server_process_sets_non_dumpable_and_subreaper():
    code = """
import ctypes
from agents.sandbox import harden_server_process
harden_server_process(); harden_server_process()
libc = ctypes.CDLL(None)
flag = ctypes.c_int(0)
libc.prctl(37, ctypes.byref(flag), 0, 0, 0)
print(libc.prctl(3, 0, 0, 0, 0), flag.value)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert out.stdout.split() == ["0", "1"]


def test_uid_claims_keep_two_servers_apart(tmp_path):
    """Two servers with different workspace roots never hand out the same uid (machine-wide claims);
    a claim whose workspace is gone is taken back; removal releases the claim."""
    roots = [tmp_path / "server-a", tmp_path / "server-b"]
    if os.geteuid() != 0:  # a non-root server hands out no uid: workspaces stay its own
        ws = make_workspace(roots[0])
        assert ws.stat().st_uid == os.geteuid()
        remove_workspace(ws, roots[0])
        return
    made = []
    try:
        for _ in range(3):
            for root in roots:
                made.append((make_workspace(root), root))
        owners = [ws.stat().st_uid for ws, _ in made]
        assert len(set(owners)) == len(owners) and all(is_sandbox_uid(u) for u in owners)
        claim = uids.REGISTRY / str(owners[0])
        assert claim.read_text() == str(made[0][0])
        stale = uids.REGISTRY / str(owners[1])
        made[1][0].rmdir()  # a crashed server's workspace vanished without a removal
        assert not uids.claim_is_live(stale, owners[1])
        made.append((make_workspace(roots[0]), roots[0]))  # the next claim sweeps stale claims away
        assert not stale.exists()
    finally:
        for ws, root in made:
            remove_workspace(ws, root)
    assert not claim.exists()


def test_walks_never_chmod_what_a_symlink_points_to(tmp_path):
    """A child may swap a folder for a symlink to a server file while the disk scan fixes modes."""
    target = tmp_path / "server-file"
    target.write_text("x")
    target.chmod(0o600)
    (tmp_path / "swapped").symlink_to(target)
    folder = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError):
            tree.chmod_dir("swapped", folder, 0o777)
    finally:
        os.close(folder)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
