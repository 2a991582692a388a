"""What a sandboxed child may see and use: environment allowlist, rlimits and the run's memory bound,
Landlock rules, and the private root (mount view) that holds the same paths. Pure decisions from paths
and limits; the launcher applies them, the supervisor passes them along.
"""

from __future__ import annotations

import os
import resource
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from . import landlock
from .api import SandboxLimits

CHILD_PATH = "/usr/bin:/bin"
NOFILE = 256
MIN_TASKS = 8  # a Pool(2) needs 6 (its parent runs 3 helper threads)
EXEC_DIRS = ("/usr/lib", "/usr/lib64", "/usr/local/lib", "/lib", "/lib64", "/usr/lib32")
READ_DIRS = ("/usr",)
READ_FILES = ("/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
              "/dev/urandom", "/dev/random", "/dev/zero")
READ_WRITE_FILES = ("/dev/null",)


def child_environment(workspace: Path) -> dict[str, str]:
    """The child's whole environment. Nothing is copied from os.environ (HF_TOKEN stays out)."""
    ws = str(workspace)
    return {"PATH": CHILD_PATH, "HOME": ws, "TMPDIR": ws, "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1", "CUDA_VISIBLE_DEVICES": "",
            # The server's venv carries pytest plugins (langsmith's) that cost the child ~1.5 s per run_tests.
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            # One BLAS/OpenMP thread: every thread counts against RLIMIT_NPROC and RLIMIT_CPU anyway.
            "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def interpreter_dirs() -> list[str]:
    """The interpreter's installation and the virtual environment (its site-packages), as real paths."""
    dirs = []
    for p in (sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix):
        for q in (p, os.path.realpath(p)):
            if q and q not in dirs and os.path.isdir(q):
                dirs.append(q)
    return dirs


@dataclass(frozen=True)
class RunBounds:
    """The bound on everything one run can hold in memory, without cgroups: tasks x per-task."""

    tasks: int  # processes and threads alive at once (RLIMIT_NPROC over the run's own tasks)
    as_bytes: int  # RLIMIT_AS per process
    bound_bytes: int  # tasks x (as_bytes + NOFILE x socket buffer) + private /dev/shm
    clamped: bool  # the asked-for limits did not fit the budget and were lowered


def socket_buffer_bytes() -> int:
    """The most one unix socket can queue in the kernel: net.core.wmem_default, since seccomp refuses
    SO_SNDBUF/SO_RCVBUF (which could raise it to twice wmem_max)."""
    try:
        with open("/proc/sys/net/core/wmem_default") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return 212992


def run_bounds(limits: SandboxLimits, budget_bytes: int, shm_bytes: int, socket_bytes: int) -> RunBounds:
    """Fit limits.processes x limits.memory_bytes (plus what unix sockets can queue in the kernel for
    each of a process's NOFILE descriptors) into budget_bytes: fewer tasks first, down to MIN_TASKS,
    then less address space per process."""
    per_fd = NOFILE * socket_bytes
    room = max(budget_bytes - shm_bytes, 0)
    tasks, as_bytes = limits.processes, limits.memory_bytes
    if tasks * (as_bytes + per_fd) > room:
        tasks = max(min(tasks, room // (as_bytes + per_fd)), min(MIN_TASKS, tasks))
    if tasks * (as_bytes + per_fd) > room:
        as_bytes = max(room // tasks - per_fd, 64 << 20)
    clamped = (tasks, as_bytes) != (limits.processes, limits.memory_bytes)
    return RunBounds(tasks, as_bytes, tasks * (as_bytes + per_fd) + shm_bytes, clamped)


def rlimits(limits: SandboxLimits, nproc: int, as_bytes: int | None = None) -> dict[str, tuple[int, int]]:
    as_bytes = limits.memory_bytes if as_bytes is None else as_bytes
    wanted = {"cpu": (limits.cpu_s, limits.cpu_s + 1), "as": (as_bytes, as_bytes),
              "fsize": (limits.file_bytes, limits.file_bytes), "nproc": (nproc, nproc),
              "nofile": (NOFILE, NOFILE), "core": (0, 0)}
    names = {"cpu": resource.RLIMIT_CPU, "as": resource.RLIMIT_AS, "fsize": resource.RLIMIT_FSIZE,
             "nproc": resource.RLIMIT_NPROC, "nofile": resource.RLIMIT_NOFILE, "core": resource.RLIMIT_CORE}
    out = {}
    for name, (soft, hard) in wanted.items():
        _, cur_hard = resource.getrlimit(names[name])
        if cur_hard != resource.RLIM_INFINITY:  # a non-root server cannot raise its hard limits
            hard, soft = min(hard, cur_hard), min(soft, cur_hard)
        out[name] = (soft, hard)
    return out


def landlock_rules(workspace: Path, private_shm: bool = False) -> list[tuple[str, int]]:
    """Read-only system and interpreter files, read-write workspace (and /dev/shm when the launcher
    mounts a private one); exec only from library and interpreter directories (not /usr/bin, not the
    workspace)."""
    rules: list[tuple[str, int]] = [(d, landlock.READ_RIGHTS) for d in READ_DIRS]
    rules += [(d, landlock.EXEC_RIGHTS) for d in EXEC_DIRS]
    rules += [(d, landlock.EXEC_RIGHTS) for d in interpreter_dirs()]
    for exe in {sys.executable, os.path.realpath(sys.executable)}:
        rules.append((exe, landlock.FS_EXECUTE | landlock.FS_READ_FILE))
    rules += [(f, landlock.FS_READ_FILE) for f in READ_FILES]
    rules += [(f, landlock.FS_READ_FILE | landlock.FS_WRITE_FILE) for f in READ_WRITE_FILES]
    rules.append((str(workspace), landlock.WRITE_RIGHTS))
    if private_shm:
        rules.append(("/dev/shm", landlock.WRITE_RIGHTS))
    return rules


def blocking_ancestor(path: str) -> str | None:
    """The topmost directory above `path` that others may not traverse (no o+x), or None."""
    parts = Path(path).parts
    for i in range(2, len(parts)):
        candidate = str(Path(*parts[:i]))
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            return candidate
        if not mode & stat.S_IXOTH:
            return candidate
    return None


def is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def private_view(workspace: Path, shm_bytes: int) -> dict:
    """The private root the launcher builds (view.py): what Landlock allows, and nothing else.
    A symlinked path (merged /usr, /etc/localtime, a venv reached through a link) is bound at its
    real path and appears as a symlink where it is not already inside a bound directory."""
    wanted: list[tuple[str, str]] = [("ro", p) for p in (*READ_DIRS, *EXEC_DIRS, *interpreter_dirs())]
    wanted += [("dev" if p.startswith("/dev/") else "ro", p) for p in READ_FILES]
    wanted += [("dev", p) for p in READ_WRITE_FILES]
    links: dict[str, str] = {}
    candidates: set[tuple[str, str]] = set()
    for kind, path in wanted:
        if os.path.islink(path):
            links[path] = os.readlink(path) if os.path.dirname(path) == "/" else os.path.realpath(path)
        real = os.path.realpath(path)
        if os.path.exists(real):
            candidates.add((kind, real))
    binds: list[tuple[str, str]] = []
    for kind, path in sorted(candidates, key=lambda b: (b[1].count("/"), b[1])):
        if not any(k == kind and is_under(path, p) for k, p in binds):
            binds.append((kind, path))
    binds.append(("rw", str(workspace)))
    for top in ("/bin", "/sbin"):
        if os.path.islink(top):
            links[top] = os.readlink(top)
    return {"binds": [list(b) for b in sorted(binds, key=lambda b: (b[1].count("/"), b[1]))],
            "symlinks": sorted([p, t] for p, t in links.items() if not any(is_under(p, b) for _, b in binds)),
            "shm_bytes": shm_bytes}
