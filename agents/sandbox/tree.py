"""Walk a directory tree a hostile program wrote: no recursion, no symlink following, no path longer
than one name, and at most two open directories whatever the depth.

It descends by name (O_NOFOLLOW) and climbs by "..", checking (device, inode) at every step, so a tree
1,500 or 100,000 levels deep costs neither stack nor file descriptors. Knows nothing of workspaces,
uids or limits.
"""

from __future__ import annotations

import os
import stat
from typing import Callable, Iterator

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class TreeChanged(OSError):
    """The tree moved under the walk (a directory was renamed or removed while it was being read)."""


def identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def chmod_dir(name: str, dir_fd: int | None, mode: int) -> None:
    """chmod a directory, never what a symlink swapped in for it points to (the child may still run)."""
    handle = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.chmod(f"/proc/self/fd/{handle}", mode)
    finally:
        os.close(handle)


def open_dir(name: str, dir_fd: int | None, expected: tuple[int, int] | None,
             make_readable: bool) -> int:
    """Open a directory without following a symlink; chmod u+rwx first if asked and it is unreadable
    to its owner (a non-root server cannot read a 0000 directory its child left)."""
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        if not make_readable:
            raise
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        if not stat.S_ISDIR(mode):
            raise
        chmod_dir(name, dir_fd, stat.S_IMODE(mode) | 0o700)
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    if expected is not None and identity(os.fstat(fd)) != expected:
        os.close(fd)
        raise TreeChanged(f"{name} changed while it was being walked")
    return fd


def walk(path: str | os.PathLike, *, make_readable: bool = False) -> Iterator[tuple[str, int, str, os.stat_result]]:
    """Depth-first events over the tree below `path` (itself excluded):
    ("entry", dir_fd, name, stat) for every entry, before descending into it when it is a directory;
    ("leave", dir_fd, name, stat) after a directory's contents, with dir_fd its parent again.
    dir_fd is valid only until the next event. Raises TreeChanged if the tree moves under the walk."""
    fd = open_dir(os.fspath(path), None, None, make_readable)
    stack = [(identity(os.fstat(fd)), iter(os.listdir(fd)), "", None)]
    try:
        while stack:
            ident, names, name_in_parent, own_stat = stack[-1]
            name = next(names, None)
            if name is None:
                stack.pop()
                if not stack:
                    return
                parent = os.open("..", DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = parent
                if identity(os.fstat(fd)) != stack[-1][0]:
                    raise TreeChanged(f"the directory above {name_in_parent} changed while it was being walked")
                yield "leave", fd, name_in_parent, own_stat
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            yield "entry", fd, name, st
            if not stat.S_ISDIR(st.st_mode):
                continue
            try:
                child = open_dir(name, fd, identity(st), make_readable)
            except FileNotFoundError:
                continue
            os.close(fd)
            fd = child
            stack.append((identity(st), iter(os.listdir(fd)), name, st))
    finally:
        os.close(fd)


def retrying(action: Callable[[], object], attempts: int = 5) -> object:
    """Run a whole walk again when the tree moved under it."""
    for attempt in range(attempts):
        try:
            return action()
        except TreeChanged:
            if attempt == attempts - 1:
                raise
    return None


def remove_contents(path: str | os.PathLike) -> None:
    """Delete everything below `path` (kept itself): files as they are met, directories on the way back
    up. Call only while nothing else writes there. Directories their owner cannot enter or write (a
    child's chmod 0500) get u+rwx first, which a non-root owner needs and root does not mind."""
    for event, dir_fd, name, st in walk(path, make_readable=True):
        if event == "leave":
            os.rmdir(name, dir_fd=dir_fd)
        elif stat.S_ISDIR(st.st_mode):
            if stat.S_IMODE(st.st_mode) & 0o700 != 0o700:
                chmod_dir(name, dir_fd, stat.S_IMODE(st.st_mode) | 0o700)
        else:
            try:
                os.unlink(name, dir_fd=dir_fd)
            except FileNotFoundError:
                pass
