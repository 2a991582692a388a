"""Sandbox uids for a root server: one per workspace, never shared by two workspaces on the machine,
even between servers with different workspace roots.

A claim is a file named after the uid in a root-only registry (/run/playground-sandbox-uids), holding
the workspace's path; an flock on the registry serialises claims across processes. A claim whose
workspace is gone (a server crashed) is taken back. The uid is drawn at random among the free ones,
so a program that picks from the same range without the registry (an older server) rarely collides.
Knows nothing of processes beyond which uids run.
"""

from __future__ import annotations

import fcntl
import os
import random
import stat
import threading
from pathlib import Path

UID_BASE = 62000  # sandbox uids: UID_BASE .. UID_BASE + UID_COUNT - 1, absent from /etc/passwd here
UID_COUNT = 3000
REGISTRY = Path("/run/playground-sandbox-uids")
_thread_lock = threading.Lock()


def is_sandbox_uid(uid: int) -> bool:
    return UID_BASE <= uid < UID_BASE + UID_COUNT


def running_uids() -> set[int]:
    uids = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                uids.add(os.stat(f"/proc/{name}").st_uid)
            except OSError:
                continue
    return uids


def registry(fallback: Path) -> Path:
    """/run/playground-sandbox-uids (machine-wide), or `fallback` where /run cannot hold it."""
    for candidate in (REGISTRY, fallback):
        try:
            os.mkdir(candidate, 0o700)
        except FileExistsError:
            pass
        except OSError:
            continue
        st = os.lstat(candidate)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077:
            return candidate
    raise RuntimeError(f"no private directory for sandbox uid claims ({REGISTRY} or {fallback}); "
                       "make /run writable for root or set TMPDIR to a private directory")


def claim_is_live(claim: Path, uid: int) -> bool:
    try:
        workspace = claim.read_text()
        return os.lstat(workspace).st_uid == uid
    except (OSError, ValueError):
        return False


def claim(workspace: Path, fallback_registry: Path, taken: set[int] = frozenset()) -> int:
    """A random sandbox uid that no live claim holds, no process runs as and no entry of the
    workspace's own root is owned by; chowns the workspace to it. Safe across threads and processes."""
    folder = registry(fallback_registry)
    with _thread_lock, open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        used = set(taken) | running_uids()
        for entry in os.scandir(workspace.parent):
            try:
                used.add(entry.stat(follow_symlinks=False).st_uid)
            except FileNotFoundError:
                continue
        for claimed in folder.iterdir():  # claims of workspaces that vanished without a removal
            if claimed.name.isdigit() and not claim_is_live(claimed, int(claimed.name)):
                claimed.unlink(missing_ok=True)
        candidates = list(range(UID_BASE, UID_BASE + UID_COUNT))
        random.SystemRandom().shuffle(candidates)
        for uid in candidates:
            path = folder / str(uid)
            if uid in used or path.exists():
                continue
            path.write_text(str(workspace))
            os.chown(workspace, uid, uid)
            return uid
    raise RuntimeError(f"all {UID_COUNT} sandbox uids are in use; remove stale workspaces (see {folder})")


def release(uid: int, workspace: Path, fallback_registry: Path | None = None) -> None:
    """Drop the claim on `uid` if it is this workspace's."""
    if not is_sandbox_uid(uid) or os.geteuid() != 0:
        return
    for folder in (REGISTRY, fallback_registry):
        if folder is None:
            continue
        path = folder / str(uid)
        try:
            if path.read_text() == str(workspace):
                path.unlink()
        except OSError:
            continue
