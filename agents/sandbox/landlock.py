"""Landlock for sandboxed children: ABI probe and a ruleset of read-only and read-write paths (ctypes).

Standard library only and no relative imports: the launcher loads this file by path inside the child.
It knows paths and rights, nothing about workspaces, limits or the supervisor.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446  # same on x86_64 and aarch64
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ_RIGHTS = FS_READ_FILE | FS_READ_DIR
EXEC_RIGHTS = READ_RIGHTS | FS_EXECUTE
WRITE_RIGHTS = (READ_RIGHTS | FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG
                | FS_MAKE_SOCK | FS_MAKE_FIFO | FS_MAKE_SYM | FS_REFER | FS_TRUNCATE)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> tuple[int, str | None]:
    """(ABI version, None) or (0, why Landlock is unusable)."""
    if platform.system() != "Linux":
        return 0, f"Landlock is Linux-only (this is {platform.system()})"
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(ctypes.c_long(SYS_CREATE_RULESET), None, ctypes.c_size_t(0),
                      ctypes.c_uint32(CREATE_RULESET_VERSION))
    if rc >= 1:
        return int(rc), None
    err = ctypes.get_errno()
    why = {errno.ENOSYS: "kernel built without Landlock (ENOSYS)",
           errno.EOPNOTSUPP: "Landlock disabled at boot (EOPNOTSUPP: add landlock to lsm=)"}
    return 0, why.get(err, f"landlock_create_ruleset failed ({errno.errorcode.get(err, err)})")


def handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def ruleset_attr(abi: int) -> bytes:
    """struct landlock_ruleset_attr, cut to the size this ABI knows."""
    fs = handled_fs(abi)
    if abi < 4:
        return struct.pack("=Q", fs)
    net = NET_BIND_TCP | NET_CONNECT_TCP
    if abi < 6:
        return struct.pack("=QQ", fs, net)
    return struct.pack("=QQQ", fs, net, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)


def _check(rc: int, what: str) -> int:
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what} failed: {errno.errorcode.get(err, err)}")
    return rc


def restrict_self(rules: list[tuple[str, int]], abi: int) -> None:
    """Allow `rights` beneath each path (missing paths are skipped), deny every other handled access,
    deny TCP bind/connect (ABI >= 4), scope signals and abstract sockets (ABI >= 6). Needs
    PR_SET_NO_NEW_PRIVS. Irreversible for this process and its descendants."""
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    attr = ruleset_attr(abi)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _check(libc.syscall(ctypes.c_long(SYS_CREATE_RULESET), buf, ctypes.c_size_t(len(attr)),
                                  ctypes.c_uint32(0)), "landlock_create_ruleset")
    try:
        mask = handled_fs(abi)
        for path, rights in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                allowed = rights & mask
                if not os.path.isdir(path):
                    allowed &= FILE_RIGHTS
                rule = struct.pack("=Qi", allowed, fd)
                rbuf = ctypes.create_string_buffer(rule, len(rule))
                _check(libc.syscall(ctypes.c_long(SYS_ADD_RULE), ctypes.c_int(ruleset),
                                    ctypes.c_int(RULE_PATH_BENEATH), rbuf, ctypes.c_uint32(0)),
                       f"landlock_add_rule({path})")
            finally:
                os.close(fd)
        _check(libc.syscall(ctypes.c_long(SYS_RESTRICT_SELF), ctypes.c_int(ruleset), ctypes.c_uint32(0)),
               "landlock_restrict_self")
    finally:
        os.close(ruleset)
