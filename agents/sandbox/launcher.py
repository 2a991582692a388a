"""Child-side launcher: turns a fresh process into a confined one, then execs the isolated Python.

Run by the supervisor as `python -I -S launcher.py '<json spec>'` in a new session with the
allowlisted environment already in place (the server's environment never reaches this process).
Standard library only; it loads its two siblings (landlock.py, seccomp.py) by path. Order matters:

  1. new mount namespace (root only): a private /dev/shm, and when the interpreter or workspace sits
     under a directory the sandbox uid cannot traverse (e.g. /root), that directory covered with an
     empty tmpfs and only the needed paths bound back;
  2. rlimits (CPU, AS, FSIZE, NPROC, NOFILE, CORE=0);
  3. chdir to the workspace, drop to the workspace's uid/gid (root only), with no supplementary groups;
  4. PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE 0;
  5. Landlock; 6. seccomp (last: it forbids setsid and mount that the steps above use);
  7. execve(python -E -s -B ...): isolated mode minus -P, so the workspace stays importable.

Any failure exits 125 with a line starting "playground-sandbox: setup failed:" and runs nothing.
"""

import ctypes
import json
import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import landlock  # noqa: E402  (sibling file, loaded by path)
import seccomp  # noqa: E402

SETUP_FAILED = "playground-sandbox: setup failed:"
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
CLONE_NEWNS = 0x00020000
MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 0x1000, 0x4000, 1 << 18
RLIMITS = {"cpu": resource.RLIMIT_CPU, "as": resource.RLIMIT_AS, "fsize": resource.RLIMIT_FSIZE,
           "nproc": resource.RLIMIT_NPROC, "nofile": resource.RLIMIT_NOFILE, "core": resource.RLIMIT_CORE}

libc = ctypes.CDLL(None, use_errno=True)


def fail(message: str) -> None:
    os.write(2, f"{SETUP_FAILED} {message}\n".encode("utf-8", "backslashreplace"))
    os._exit(125)


def check(rc: int, what: str) -> None:
    if rc != 0:
        fail(f"{what}: {os.strerror(ctypes.get_errno())}")


def private_mounts(covers: list, shm_bytes: int) -> None:
    """A private mount namespace: a fresh /dev/shm of its own (multiprocessing's semaphores live there),
    and every directory the sandbox uid cannot traverse covered (see cover_untraversable)."""
    check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    if shm_bytes and os.path.isdir("/dev/shm"):
        options = f"mode=1777,size={shm_bytes},nr_inodes=1024".encode()
        check(libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, options), "mount /dev/shm")
    cover_untraversable(covers)


def cover_untraversable(covers: list) -> None:
    """covers: [[blocking_dir, [path, ...]], ...]: hide blocking_dir behind a tmpfs, bind paths back."""
    wanted = [p for _, paths in covers for p in paths]  # opened inside the new namespace: bind needs that
    fds = {p: os.open(p, os.O_PATH | os.O_CLOEXEC) for p in wanted}
    for blocker, paths in sorted(covers, key=lambda c: c[0].count("/")):
        check(libc.mount(b"tmpfs", blocker.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=64k"),
              f"mount tmpfs on {blocker}")
        for path in paths:
            os.makedirs(path, mode=0o755, exist_ok=True)
            source = f"/proc/self/fd/{fds[path]}".encode()
            check(libc.mount(source, path.encode(), None, MS_BIND | MS_REC, None), f"bind {path}")
    for fd in fds.values():
        os.close(fd)


def apply_rlimits(limits: dict) -> None:
    for name, value in limits.items():
        soft, hard = value
        resource.setrlimit(RLIMITS[name], (soft, hard))


def drop_uid(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    try:
        os.setuid(0)
    except PermissionError:
        return
    fail("the uid drop is reversible; refusing to run")


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.umask(0o022)
    if os.getsid(0) != os.getpid():
        os.setsid()
    if spec.get("covers") or spec.get("shm_bytes"):
        private_mounts(spec.get("covers", []), spec.get("shm_bytes", 0))
    apply_rlimits(spec["rlimits"])
    os.chdir(spec["workspace"])
    if spec.get("uid") is not None:
        drop_uid(spec["uid"], spec["gid"])
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "PR_SET_DUMPABLE")
    if spec.get("landlock_abi"):
        landlock.restrict_self([(p, r) for p, r in spec["landlock_rules"]], spec["landlock_abi"])
    if spec.get("seccomp"):
        seccomp.install_filter()
    python = spec["python"]
    # -E -s is -I without -P: no PYTHONPATH or user site, but the script's folder (the workspace) stays
    # importable so `python main.py` can import its neighbours.
    os.execve(python, [python, "-E", "-s", "-B", *spec["args"]], dict(os.environ))


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - any setup error must stop the run, not leak through
        fail(f"{type(exc).__name__}: {exc}")
