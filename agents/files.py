"""Server-side file access inside one workspace: path confinement, regular files only, bounded walks.

Sandboxed code writes to the same folder between tool calls, so the tree is hostile: every open is
O_NONBLOCK | O_NOFOLLOW and checks the type on the open descriptor (a FIFO planted under a file's name
cannot hang the server; sockets, devices and symlinks are refused), writes refuse hard links, and walks
are iterative with bounds on depth and entries (a 1,500-deep tree cannot raise RecursionError or stall).
Knows nothing of tools or models.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_DEPTH = 24  # folders deeper than this below a walk's start are not entered
MAX_WALK_ENTRIES = 5000  # directory entries one walk looks at
SKIPPED_FOLDERS = frozenset({"__pycache__", ".pytest_cache"})
_OPEN_FLAGS = os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class ToolError(Exception):
    """A tool refused its input; the message tells the model what to do instead."""


def resolve_in_workspace(workspace: Path, path: str) -> Path:
    """The real path of `path` inside the workspace; ToolError for absolute paths, `..` or symlink escapes."""
    if not isinstance(path, str) or not path.strip():
        raise ToolError("Give a path relative to the workspace, e.g. 'main.py'.")
    if "\x00" in path:
        raise ToolError("The path contains a NUL byte.")
    pure = PurePosixPath(path.strip())
    if pure.is_absolute() or path.startswith("~"):
        raise ToolError(f"{path!r} is absolute; paths are relative to the workspace, e.g. 'src/app.py'.")
    if ".." in pure.parts:
        raise ToolError(f"{path!r} uses '..'; stay inside the workspace.")
    root = workspace.resolve()
    try:
        target = (root / pure).resolve()
    except (RuntimeError, OSError) as e:  # a symlink loop (RuntimeError on 3.11), a name too long
        raise ToolError(f"{path!r} cannot be resolved ({getattr(e, 'strerror', None) or e}).") from None
    if target != root and root not in target.parents:
        raise ToolError(f"{path!r} leads outside the workspace (through a symlink); use a path inside it.")
    return target


def relative(workspace: Path, path: Path | str) -> str:
    return Path(path).relative_to(workspace.resolve()).as_posix() or "."


def kind_of(mode: int) -> str:
    """What a non-regular entry is, in words."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def _not_regular(shown: str, mode: int) -> ToolError:
    return ToolError(f"{shown!r} is {kind_of(mode)}, not a regular file; the file tools use regular files only.")


def _open(path: Path, flags: int, shown: str, mode: int = 0o644) -> int:
    """A descriptor of a regular file; never blocks, never follows a final symlink."""
    try:
        fd = os.open(path, flags | _OPEN_FLAGS, mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ToolError(f"{shown!r} is a symbolic link; the file tools do not follow links.") from None
        if e.errno == errno.ENXIO:  # a socket, or a FIFO opened for writing with no reader
            raise _not_regular(shown, os.lstat(path).st_mode) from None
        if e.errno == errno.ENOENT:
            raise ToolError(f"{shown!r} does not exist; list_files shows what there is.") from None
        if e.errno == errno.EISDIR:
            raise ToolError(f"{shown!r} is a folder; give a file name.") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise _not_regular(shown, st.st_mode)
    return fd


def read_regular(path: Path, shown: str, cap_bytes: int) -> tuple[bytes, int]:
    """(at most cap_bytes of the file, its size in bytes)."""
    fd = _open(path, os.O_RDONLY, shown)
    try:
        size = os.fstat(fd).st_size
        chunks, left = [], cap_bytes
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), size
    finally:
        os.close(fd)


def write_regular(path: Path, shown: str, data: bytes) -> bool:
    """Create or replace a regular file's content; True when it was created. Refuses hard-linked files
    (writing through a link planted by sandboxed code would change a file elsewhere)."""
    existed = os.path.lexists(path)
    fd = _open(path, os.O_WRONLY | os.O_CREAT, shown)
    try:
        if os.fstat(fd).st_nlink > 1:
            raise ToolError(f"{shown!r} is a hard link to another file; write to a new name instead.")
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return not existed


def make_parents(workspace: Path, file: Path, shown: str) -> None:
    """Create the folders above `file` (inside the workspace), refusing anything in the way."""
    root = workspace.resolve()
    missing = []
    for parent in file.parents:
        if parent == root or root not in parent.parents:
            break
        try:
            st = os.lstat(parent)
        except FileNotFoundError:
            missing.append(parent)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise ToolError(f"Cannot create {shown!r}: {relative(workspace, parent)!r} is {kind_of(st.st_mode)}.")
        break
    for folder in reversed(missing):
        os.mkdir(folder, 0o755)


@dataclass(frozen=True)
class Entry:
    path: Path
    mode: int
    size: int


@dataclass(frozen=True)
class Walk:
    """What a bounded walk found: every non-folder entry (files, links, FIFOs...), and why it stopped
    early if it did."""

    entries: tuple[Entry, ...]
    cut: str | None


def walk(top: Path, *, max_depth: int = MAX_DEPTH, max_entries: int = MAX_WALK_ENTRIES) -> Walk:
    """Entries under `top`, depth first, sorted by name within a folder; iterative, never follows links."""
    found: list[Entry] = []
    stack: list[tuple[Path, int]] = [(top, 0)]
    seen, cuts = 0, []
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                batch = []
                for entry in it:  # bounded before sorting: a folder of a million names costs max_entries
                    batch.append(entry)
                    if seen + len(batch) > max_entries:
                        break
        except OSError:
            continue
        subfolders = []
        for entry in sorted(batch, key=lambda e: e.name):
            seen += 1
            if seen > max_entries:
                return Walk(tuple(found), f"stopped after looking at {max_entries} entries")
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if entry.name in SKIPPED_FOLDERS:
                    continue
                if depth + 1 > max_depth:
                    cuts.append(f"folders deeper than {max_depth} levels were not entered")
                    continue
                subfolders.append(Path(entry.path))
            else:
                found.append(Entry(Path(entry.path), st.st_mode, st.st_size))
        stack.extend((sub, depth + 1) for sub in reversed(subfolders))
    return Walk(tuple(found), cuts[0] if cuts else None)
