"""Per-session workspaces: creation (0700, owned by a uid private to it when the server is root),
measurement, hand-over to the sandbox uid, and removal confined to the workspace root. Trees of any
depth are walked without recursion (tree.py).

Knows nothing about processes or isolation layers.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import tree, uids
from .uids import UID_BASE, UID_COUNT, is_sandbox_uid, running_uids  # noqa: F401  (re-exported)


def workspace_root() -> Path:
    return Path(tempfile.gettempdir()) / "playground-workspaces"


def ensure_root(root: Path) -> Path:
    """Create the root 0711 (others may traverse, not list) or check an existing one is ours."""
    try:
        os.mkdir(root, 0o711)
    except FileExistsError:
        pass
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise RuntimeError(f"{root} exists but is not a directory owned by uid {os.geteuid()}; "
                           "remove it or set TMPDIR to a private directory")
    if stat.S_IMODE(st.st_mode) != 0o711:
        os.chmod(root, 0o711)
    return root


def allocate_uid(workspace: Path) -> int:
    """Claim a sandbox uid for `workspace` (root only) and chown the workspace to it."""
    return uids.claim(workspace, workspace.parent / ".uid-claims")


def make_workspace(root: Path | None = None) -> Path:
    """A fresh 0700 directory for one session. As root it is chowned to a uid of its own, which the
    sandboxed child runs as (so RLIMIT_NPROC binds and sessions cannot read each other)."""
    root = ensure_root(root or workspace_root())
    path = Path(tempfile.mkdtemp(prefix="ws-", dir=root))
    if os.geteuid() == 0:
        allocate_uid(path)
    return path


def remove_workspace(path: Path, root: Path | None = None) -> None:
    """Delete a workspace made by make_workspace, whatever the child left in it (read-only or
    1,500-level-deep trees, FIFOs, sockets), and release its uid. Refuses any path that is not
    directly inside the workspace root; a missing path is fine."""
    root = (root or workspace_root()).resolve()
    path = Path(path)
    if path.parent.resolve() != root or path.name in ("", ".", ".."):
        raise ValueError(f"refusing to delete {path}: it is not a workspace under {root}")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return
    if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
        os.chmod(path, 0o700)
    tree.retrying(lambda: tree.remove_contents(path))
    os.rmdir(path)
    uids.release(st.st_uid, path, root / ".uid-claims")


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int
    complete: bool = True  # False: the tree kept moving under the scan, or a directory stayed unreadable


def measure(path: Path, stop_after_files: int | None = None) -> Usage:
    """Allocated bytes and entry count under path (symlinks not followed, any depth). Stops counting
    early once past stop_after_files, so a million tiny files cannot stall the supervisor. A non-root
    server gives u+rwx back to directories its child made unreadable to their owner, so none hides."""

    def scan() -> Usage:
        total, count = 0, 0
        for event, _, _, st in tree.walk(path, make_readable=os.geteuid() != 0):
            if event != "entry":
                continue
            count += 1
            total += st.st_blocks * 512
            if stop_after_files is not None and count > stop_after_files:
                break
        return Usage(total, count)

    try:
        return tree.retrying(scan, attempts=3)
    except OSError:
        return Usage(0, 0, complete=False)


def hand_over(path: Path, uid: int) -> None:
    """chown the workspace tree to the sandbox uid (files the server's tools wrote are root's).
    Never follows symlinks; skips multiply-linked files. Call only while no sandbox process lives."""
    os.chown(path, uid, uid, follow_symlinks=False)

    def chown_all() -> None:
        for event, dir_fd, name, st in tree.walk(path):
            if event != "entry" or st.st_uid == uid or (not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1):
                continue
            try:
                os.chown(name, uid, uid, dir_fd=dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                continue

    tree.retrying(chown_all)
