"""Per-session workspaces: creation (0700, owned by a uid private to it when the server is root),
measurement, hand-over to the sandbox uid, and removal confined to the workspace root.

Knows nothing about processes or isolation layers.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

UID_BASE = 62000  # sandbox uids: UID_BASE .. UID_BASE + UID_COUNT - 1, absent from /etc/passwd here
UID_COUNT = 3000
_alloc_lock = threading.Lock()


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


def is_sandbox_uid(uid: int) -> bool:
    return UID_BASE <= uid < UID_BASE + UID_COUNT


def allocate_uid(root: Path, taken_by_processes: set[int] = frozenset()) -> int:
    """Lowest sandbox uid owning no workspace under root and running no process."""
    used = set(taken_by_processes)
    for entry in os.scandir(root):
        try:
            used.add(entry.stat(follow_symlinks=False).st_uid)
        except FileNotFoundError:
            continue
    for uid in range(UID_BASE, UID_BASE + UID_COUNT):
        if uid not in used:
            return uid
    raise RuntimeError(f"all {UID_COUNT} sandbox uids are in use; remove stale workspaces under {root}")


def running_uids() -> set[int]:
    uids = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uids.add(os.stat(f"/proc/{name}").st_uid)
            except OSError:
                continue
    return uids


def make_workspace(root: Path | None = None) -> Path:
    """A fresh 0700 directory for one session. As root it is chowned to a uid of its own, which the
    sandboxed child runs as (so RLIMIT_NPROC binds and sessions cannot read each other)."""
    root = ensure_root(root or workspace_root())
    with _alloc_lock:
        path = Path(tempfile.mkdtemp(prefix="ws-", dir=root))
        if os.geteuid() == 0:
            uid = allocate_uid(root, running_uids())
            os.chown(path, uid, uid)
    return path


def remove_workspace(path: Path, root: Path | None = None) -> None:
    """Delete a workspace made by make_workspace, whatever the child left in it. Refuses any path
    that is not directly inside the workspace root; a missing path is fine."""
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

    def make_writable_and_retry(func, failed_path, _exc):
        parent = os.path.dirname(failed_path)
        for p in (parent, failed_path):
            try:
                if not os.path.islink(p):
                    os.chmod(p, 0o700)
            except OSError:
                pass
        try:
            func(failed_path)
        except FileNotFoundError:
            pass

    shutil.rmtree(path, onerror=make_writable_and_retry)


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int


def measure(path: Path, stop_after_files: int | None = None) -> Usage:
    """Allocated bytes and entry count under path (symlinks not followed). Stops counting early once
    past stop_after_files, so a million tiny files cannot stall the supervisor."""
    total, count, todo = 0, 0, [str(path)]
    while todo:
        try:
            it = os.scandir(todo.pop())
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                count += 1
                total += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    todo.append(entry.path)
                if stop_after_files is not None and count > stop_after_files:
                    return Usage(total, count)
    return Usage(total, count)


def hand_over(path: Path, uid: int) -> None:
    """chown the workspace tree to the sandbox uid (files the server's tools wrote are root's).
    Never follows symlinks; skips multiply-linked files. Call only while no sandbox process lives."""
    os.chown(path, uid, uid, follow_symlinks=False)
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            try:
                st = os.lstat(full)
                if st.st_uid == uid or (not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1):
                    continue
                os.chown(full, uid, uid, follow_symlinks=False)
            except OSError:
                continue
