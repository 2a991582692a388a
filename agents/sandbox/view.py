"""Child-side namespaces: new mount, PID, network and IPC namespaces (inside a new user namespace when
the server is not root), and a private root that holds only what the sandboxed interpreter may use.

The root is an empty tmpfs with the system and interpreter directories bound read-only, a few /etc and
/dev files, a private /dev/shm and the workspace read-write, then pivot_root'ed into. Nothing else of
the machine can be reached by path: no unix socket, no file whose metadata could be changed, and no
directory the sandbox uid could not traverse (a project cloned into a 0700 folder still runs).

Standard library only and no relative imports: the launcher loads this file by path. It knows paths
and mount flags, nothing about workspaces, limits or the supervisor.
"""

from __future__ import annotations

import ctypes
import os
import struct

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER = 0x00020000, 0x08000000, 0x10000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 2, 4, 8, 32
MS_RDONLY, MS_BIND, MS_REC, MS_PRIVATE = 1, 0x1000, 0x4000, 1 << 18
MNT_DETACH = 2
ST_FLAGS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: 1 << 10, 2048: 1 << 11, 4096: 1 << 21}
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
SYS_MOUNT_SETATTR = 442  # same on x86_64 and aarch64
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 1, 2, 4, 8
AT_RECURSIVE = 0x8000
# Any existing directory will do: its tmpfs becomes "/" and the old root is detached.
NEW_ROOT = next((d for d in ("/tmp", "/mnt", "/opt", "/srv", "/var") if os.path.isdir(d)), "/tmp")
# (mount_setattr attribute bits, the same restriction as classic MS_* remount flags)
ATTRS = {"ro": (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, MS_RDONLY | MS_NOSUID | MS_NODEV),
         "dev": (MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, MS_RDONLY | MS_NOSUID | MS_NOEXEC),
         "rw": (MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, MS_NOSUID | MS_NODEV | MS_NOEXEC)}

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(kind: str) -> None:
    """Enter new mount, PID (for children), network and IPC namespaces. kind "user": also a user
    namespace mapping only this uid and gid to themselves, which is what lets a non-root server mount."""
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | (CLONE_NEWUSER if kind == "user" else 0)
    check(libc.unshare(flags), "unshare")
    if kind == "user":
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)


def restrict(target: str, kind: str) -> None:
    """Make the mount at `target` (and those below it) read-only, nosuid, ... per ATTRS[kind]."""
    attr_set, ms_flags = ATTRS[kind]
    attr = struct.pack("=QQQQ", attr_set, 0, 0, 0)
    buf = ctypes.create_string_buffer(attr, len(attr))
    rc = libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(-100), target.encode(),
                      ctypes.c_uint(AT_RECURSIVE), buf, ctypes.c_size_t(len(attr)))
    if rc == 0:
        return
    # Before 5.12: a remount of the top mount only. Flags the source mount has must be kept, or a
    # user namespace refuses the remount as an attempt to lift them.
    kept = 0
    current = os.statvfs(target).f_flag
    for st_bit, ms_bit in ST_FLAGS.items():
        if current & st_bit:
            kept |= ms_bit
    check(libc.mount(None, target.encode(), None, MS_REMOUNT | MS_BIND | ms_flags | kept, None),
          f"remount {target}")


def make_mountpoint(path: str, is_dir: bool) -> None:
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    if is_dir:
        os.mkdir(path, 0o755)
    else:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))


def build(view: dict, arch: str) -> None:
    """Build the private root described by `view` and pivot into it.

    view: {"binds": [[kind, path], ...] with kind "ro", "dev" or "rw" (parents before children),
           "symlinks": [[path, target], ...], "shm_bytes": int}."""
    binds = view["binds"]
    # Open every source first: once the new root's tmpfs is mounted, a source below it is hidden.
    sources = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for _, path in binds}
    check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
    check(libc.mount(b"tmpfs", NEW_ROOT.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"),
          f"mount tmpfs on {NEW_ROOT}")
    for path, target in view["symlinks"]:
        link = NEW_ROOT + path
        os.makedirs(os.path.dirname(link), mode=0o755, exist_ok=True)
        os.symlink(target, link)
    for kind, path in binds:
        target = NEW_ROOT + path
        make_mountpoint(target, os.path.isdir(f"/proc/self/fd/{sources[path]}"))
        check(libc.mount(f"/proc/self/fd/{sources[path]}".encode(), target.encode(), None, MS_BIND | MS_REC,
                         None), f"bind {path}")
        restrict(target, kind)
        os.close(sources[path])
    if view.get("shm_bytes"):
        shm = NEW_ROOT + "/dev/shm"
        make_mountpoint(shm, True)
        options = f"mode=1777,size={view['shm_bytes']},nr_inodes=1024".encode()
        check(libc.mount(b"tmpfs", shm.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options),
              "mount /dev/shm")
    os.chdir(NEW_ROOT)
    check(libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT[arch]), b".", b"."), "pivot_root")
    check(libc.umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")
    check(libc.mount(None, b"/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None),
          "remount the new root read-only")


def probe(kind: str) -> None:
    """Exit 0 when this process may build a private root of `kind` here, else say why (exit 1).
    Run as `python -I -S view.py root|user` by the isolation probe."""
    try:
        unshare(kind)
        pid = os.fork()
        if pid == 0:
            try:
                build({"binds": [], "symlinks": [], "shm_bytes": 0}, os.uname().machine.replace("arm64", "aarch64"))
            except BaseException as exc:  # noqa: BLE001
                os.write(2, f"{exc}\n".encode())
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        os._exit(0 if os.waitstatus_to_exitcode(status) == 0 else 1)
    except OSError as exc:
        os.write(2, f"{exc}\n".encode())
        os._exit(1)


if __name__ == "__main__":
    import sys

    probe(sys.argv[1])
