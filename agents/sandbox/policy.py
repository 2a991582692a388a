"""What a sandboxed child may see and use: environment allowlist, rlimits, Landlock rules, and which
untraversable directories must be covered for the sandbox uid. Pure decisions from paths and limits;
the launcher applies them, the supervisor passes them along.
"""

from __future__ import annotations

import os
import resource
import stat
import sys
from pathlib import Path

from . import landlock
from .api import SandboxLimits

CHILD_PATH = "/usr/bin:/bin"
NOFILE = 256
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
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def interpreter_dirs() -> list[str]:
    """The interpreter's installation and the virtual environment (its site-packages), as real paths."""
    dirs = []
    for p in (sys.base_prefix, sys.prefix, sys.base_exec_prefix, sys.exec_prefix):
        for q in (p, os.path.realpath(p)):
            if q and q not in dirs and os.path.isdir(q):
                dirs.append(q)
    return dirs


def rlimits(limits: SandboxLimits, nproc: int) -> dict[str, tuple[int, int]]:
    wanted = {"cpu": (limits.cpu_s, limits.cpu_s + 1), "as": (limits.memory_bytes, limits.memory_bytes),
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


def covers_for(paths: list[str]) -> list[list]:
    """[[blocking_dir, [paths under it]], ...] for the launcher's private mount namespace."""
    groups: dict[str, list[str]] = {}
    for p in paths:
        blocker = blocking_ancestor(p)
        if blocker is not None:
            groups.setdefault(blocker, []).append(p)
    return [[b, ps] for b, ps in sorted(groups.items())]
