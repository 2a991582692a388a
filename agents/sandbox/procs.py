"""Process table reading and killing for the supervisor: which processes belong to a run, what files
they hold open after deleting them, and ending them.

Reads /proc only; knows nothing about limits, isolation or output.
"""

from __future__ import annotations

import os
import signal
import stat
import time
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    state: str
    ppid: int
    pgid: int
    sid: int
    start_ticks: int
    uid: int | None = None


def parse_stat(pid: int, text: str) -> ProcInfo | None:
    """Parse /proc/<pid>/stat. comm may hold spaces and parentheses, so split after the LAST ')'."""
    end = text.rfind(")")
    if end < 0:
        return None
    fields = text[end + 2:].split()
    if len(fields) < 20:
        return None
    try:
        return ProcInfo(pid=pid, state=fields[0], ppid=int(fields[1]), pgid=int(fields[2]),
                        sid=int(fields[3]), start_ticks=int(fields[19]))
    except ValueError:
        return None


def parse_status_uid(text: str) -> int | None:
    """Real uid from /proc/<pid>/status ("Uid:\treal\teffective\tsaved\tfs")."""
    for line in text.splitlines():
        if line.startswith("Uid:"):
            parts = line.split()
            return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return None


def read_proc(pid: int, with_uid: bool) -> ProcInfo | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as f:
            info = parse_stat(pid, f.read())
        if info is None or not with_uid:
            return info
        with open(f"/proc/{pid}/status", encoding="utf-8", errors="replace") as f:
            uid = parse_status_uid(f.read())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return ProcInfo(info.pid, info.state, info.ppid, info.pgid, info.sid, info.start_ticks, uid)


def scan(with_uid: bool = False) -> list[ProcInfo]:
    procs = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = read_proc(int(name), with_uid)
            if info is not None:
                procs.append(info)
    return procs


def descendants(procs: Iterable[ProcInfo], roots: set[int]) -> list[ProcInfo]:
    """Processes whose parent chain reaches one of `roots` (roots included)."""
    by_parent: dict[int, list[ProcInfo]] = {}
    by_pid = {}
    for p in procs:
        by_parent.setdefault(p.ppid, []).append(p)
        by_pid[p.pid] = p
    found, todo = [], [by_pid[r] for r in roots if r in by_pid]
    seen = set()
    while todo:
        p = todo.pop()
        if p.pid in seen:
            continue
        seen.add(p.pid)
        found.append(p)
        todo.extend(by_parent.get(p.pid, []))
    return found


def parse_deleted_mappings(text: str) -> list[tuple[str, int, int, str]]:
    """(address range, device, inode, path) of each file mapping in /proc/<pid>/maps text whose file
    was deleted ("... 08:01 1234 /ws/f (deleted)")."""
    found = []
    for line in text.splitlines():
        if not line.endswith(" (deleted)"):
            continue
        fields = line.split(None, 5)
        if len(fields) < 6 or ":" not in fields[3] or not fields[4].isdigit() or fields[4] == "0":
            continue
        major, _, minor = fields[3].partition(":")
        try:
            device = os.makedev(int(major, 16), int(minor, 16))
        except ValueError:
            continue
        found.append((fields[0], device, int(fields[4]), fields[5][: -len(" (deleted)")]))
    return found


def deleted_file_bytes(pids: Iterable[int], device: int, prefix: str, assumed_bytes: int) -> int:
    """Disk held by regular files of the workspace (its device, or a path under `prefix`) that were
    deleted while `pids` still hold them open or mapped: invisible to a directory scan, still on disk.
    A mapping whose size cannot be read (map_files needs CAP_SYS_ADMIN) counts as `assumed_bytes`."""
    sizes: dict[tuple[int, int], int] = {}
    for pid in pids:
        fd_dir = f"/proc/{pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                if not os.readlink(f"{fd_dir}/{name}").endswith(" (deleted)"):
                    continue
                st = os.stat(f"{fd_dir}/{name}")
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_dev == device:
                sizes[(st.st_dev, st.st_ino)] = st.st_blocks * 512
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
                mappings = parse_deleted_mappings(f.read())
        except OSError:
            continue
        for span, dev, ino, path in mappings:
            if (dev, ino) in sizes or not (dev == device or path.startswith(prefix)):
                continue
            try:
                sizes[(dev, ino)] = os.stat(f"/proc/{pid}/map_files/{span}").st_blocks * 512
            except OSError:
                sizes[(dev, ino)] = assumed_bytes
    return sum(sizes.values())


def count_tasks_of_uid(uid: int) -> int:
    """Threads of every process whose real uid is `uid`: what RLIMIT_NPROC counts."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        if parse_status_uid(text) != uid:
            continue
        threads = [ln.split()[1] for ln in text.splitlines() if ln.startswith("Threads:")]
        total += int(threads[0]) if threads and threads[0].isdigit() else 1
    return total


@dataclass
class RunProcesses:
    """Everything that may belong to one run: its session/group, its uid (when private), and every
    descendant ever seen (pid -> start time, so a recycled pid is never mistaken for ours)."""

    leader: int
    uid: int | None  # a uid private to this workspace, or None when shared with the server
    seen: dict[int, int]

    def track(self) -> None:
        self.seen.update({p.pid: p.start_ticks for p in descendants(scan(), {self.leader})})

    def members(self) -> list[ProcInfo]:
        procs = scan(with_uid=self.uid is not None)
        own = {p.pid for p in descendants(procs, {self.leader})}
        hits = [p for p in procs if p.pid != os.getpid() and (
            p.pid in own or p.sid == self.leader or p.pgid == self.leader
            or (self.uid is not None and p.uid == self.uid)
            or self.seen.get(p.pid) == p.start_ticks)]
        roots = {p.pid for p in hits}
        return descendants(procs, roots) if roots else []

    def kill_all(self, deadline_s: float = 3.0) -> list[ProcInfo]:
        """SIGKILL until /proc shows no live member (zombies are reaped when they are ours).
        Returns the survivors, which must be empty."""
        end = time.monotonic() + deadline_s
        while True:
            live = [p for p in self.members() if p.state not in ("Z", "X")]
            self.reap(self.members())
            if not live or time.monotonic() > end:
                return live
            for target in (self.leader,):
                try:
                    os.killpg(target, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            for p in live:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)

    def reap(self, procs: Iterable[ProcInfo]) -> None:
        """Collect zombies re-parented to this (subreaper) process; never touches other children."""
        me = os.getpid()
        for p in procs:
            if p.ppid == me and p.pid != self.leader and p.state == "Z":
                try:
                    os.waitpid(p.pid, os.WNOHANG)
                except ChildProcessError:
                    pass
