"""Run a command as a uid that may not traverse the folders holding the interpreter (pyenv under
/root, a 0700 clone): a private mount namespace covers each such folder with an empty world-traversable
tmpfs and binds the needed paths back, then the uid drops (0: stays root) and the command is exec'ed.

Test helper, run by root as `python -I -S as_user.py '<json>'` with
{"uid": int, "reach": [path, ...], "cwd": path, "env": {...}, "argv": [...]}. Standard library only.
"""

import ctypes
import json
import os
import stat
import sys

CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE, MS_NOSUID, MS_NODEV = 0x20000, 0x1000, 0x4000, 1 << 18, 2, 4
libc = ctypes.CDLL(None, use_errno=True)


def check(rc: int, what: str) -> None:
    if rc != 0:
        raise OSError(ctypes.get_errno(), what)


def blocker(path: str) -> str | None:
    """The topmost folder above `path` that others may not traverse."""
    parts = path.rstrip("/").split("/")
    for i in range(2, len(parts)):
        folder = "/".join(parts[:i])
        if not os.stat(folder).st_mode & stat.S_IXOTH:
            return folder
    return None


def main() -> None:
    spec = json.loads(sys.argv[1])
    covers: dict[str, list[str]] = {}
    for path in spec["reach"]:
        b = blocker(os.path.realpath(path))
        if b is not None:
            covers.setdefault(b, []).append(os.path.realpath(path))
    check(libc.unshare(CLONE_NEWNS), "unshare")  # bind sources must be opened inside the new namespace
    fds = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for paths in covers.values() for p in paths}
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make-rprivate")
    for b, paths in sorted(covers.items(), key=lambda c: c[0].count("/")):
        check(libc.mount(b"tmpfs", b.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=64k"), f"cover {b}")
        for p in paths:
            os.makedirs(p, mode=0o755, exist_ok=True)
            check(libc.mount(f"/proc/self/fd/{fds[p]}".encode(), p.encode(), None, MS_BIND | MS_REC, None), f"bind {p}")
    uid = spec["uid"]
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.chdir(spec["cwd"])
    os.execve(spec["argv"][0], spec["argv"], spec["env"])


if __name__ == "__main__":
    main()
