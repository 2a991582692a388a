"""Seccomp BPF filter for sandboxed children: builds the program (pure) and installs it (ctypes).

Standard library only and no relative imports: the launcher loads this file by path inside the child
before it execs the interpreter. It knows nothing about Landlock, workspaces or limits.

The filter is a deny list on top of Landlock, rlimits, namespaces and the uid drop. Always refused:
the syscalls that reach other processes (ptrace, process_vm_*), escape the process group (setsid,
setpgid), change namespaces or mounts, talk to the kernel's large attack surfaces (bpf, perf,
io_uring, keyrings, userfaultfd, modules, kexec), hold memory outside the address-space limit (SysV
shared memory and message queues, memfd, socket buffers raised with SO_SNDBUF/SO_RCVBUF, pipes grown
with F_SETPIPE_SZ) and open any socket that is not AF_UNIX. clone3 answers
ENOSYS so libc falls back to clone, whose flags BPF can inspect (clone3 passes them in memory).

Two more groups where no private mount view hides the rest of the machine (see Profile):
unix-socket egress (socket(AF_UNIX) and every socketpair but a SOCK_STREAM one, which has no address
to send to) and metadata changes (chmod, chown, utimes, xattrs, truncate by path, inode-flag ioctls).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct
from dataclasses import dataclass

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little endian hosts).
OFFSET_NR = 0
OFFSET_ARCH = 4


def offset_arg_low(index: int) -> int:
    return 16 + 8 * index


# BPF opcodes (linux/filter.h).
BPF_LD_W_ABS = 0x20
BPF_ALU_AND_K = 0x54
BPF_JMP_JEQ_K = 0x15
BPF_JMP_JGE_K = 0x35
BPF_JMP_JSET_K = 0x45
BPF_RET_K = 0x06

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_SYSCALL_BIT = 0x40000000

AF_UNIX = 1
SOCK_TYPE_MASK, SOCK_STREAM = 0xF, 1
SOL_SOCKET = 1
BUFFER_OPTIONS = (7, 8, 32, 33)  # SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE
F_SETPIPE_SZ = 1031
# Inode-flag ioctls that change metadata of a file the caller owns (chattr, project ids, generation).
METADATA_IOCTLS = (0x40086602, 0x40046602, 0x401C5820, 0x40087602)  # FS_IOC{,32}_SETFLAGS, FSSETXATTR, SETVERSION
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
CLONE_NEW_MASK = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "unshare", "setns", "mount", "umount2",
    "pivot_root", "setsid", "setpgid", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load",
    "kexec_file_load", "init_module", "finit_module", "delete_module", "chroot", "open_by_handle_at",
    "name_to_handle_at", "swapon", "swapoff", "reboot", "acct", "syslog", "quotactl", "open_tree",
    "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "pidfd_getfd", "mount_setattr",
    "lookup_dcookie", "process_madvise", "iopl", "ioperm",
    # memory that RLIMIT_AS does not count and that may outlive the run
    "shmget", "msgget", "semget", "memfd_create", "memfd_secret",
)
METADATA = (
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "utime", "utimes",
    "futimesat", "utimensat", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
    "fremovexattr", "setxattrat", "removexattrat", "file_setattr", "truncate",
)

# Syscall numbers per architecture (x86_64: asm/unistd_64.h; aarch64: asm-generic/unistd.h).
SYSCALLS = {
    "x86_64": dict(
        ptrace=101, process_vm_readv=310, process_vm_writev=311, unshare=272, setns=308, mount=165,
        umount2=166, pivot_root=155, setsid=112, setpgid=109, keyctl=250, add_key=248, request_key=249,
        bpf=321, perf_event_open=298, userfaultfd=323, io_uring_setup=425, io_uring_enter=426,
        io_uring_register=427, kexec_load=246, kexec_file_load=320, init_module=175, finit_module=313,
        delete_module=176, chroot=161, socket=41, socketpair=53, clone=56, clone3=435,
        open_by_handle_at=304, name_to_handle_at=303, swapon=167, swapoff=168, reboot=169, acct=163,
        syslog=103, quotactl=179, open_tree=428, move_mount=429, fsopen=430, fsconfig=431, fsmount=432,
        fspick=433, pidfd_getfd=438, mount_setattr=442, lookup_dcookie=212, process_madvise=440,
        iopl=172, ioperm=173, shmget=29, msgget=68, semget=64, memfd_create=319, memfd_secret=447,
        chmod=90, fchmod=91, fchmodat=268, fchmodat2=452, chown=92, fchown=93, lchown=94, fchownat=260,
        utime=132, utimes=235, futimesat=261, utimensat=280, setxattr=188, lsetxattr=189, fsetxattr=190,
        removexattr=197, lremovexattr=198, fremovexattr=199, setxattrat=463, removexattrat=466,
        file_setattr=469, truncate=76, ioctl=16, setsockopt=54, fcntl=72,
    ),
    "aarch64": dict(
        ptrace=117, process_vm_readv=270, process_vm_writev=271, unshare=97, setns=268, mount=40,
        umount2=39, pivot_root=41, setsid=157, setpgid=154, keyctl=219, add_key=217, request_key=218,
        bpf=280, perf_event_open=241, userfaultfd=282, io_uring_setup=425, io_uring_enter=426,
        io_uring_register=427, kexec_load=104, kexec_file_load=294, init_module=105, finit_module=273,
        delete_module=106, chroot=51, socket=198, socketpair=199, clone=220, clone3=435,
        open_by_handle_at=265, name_to_handle_at=264, swapon=224, swapoff=225, reboot=142, acct=89,
        syslog=116, quotactl=60, open_tree=428, move_mount=429, fsopen=430, fsconfig=431, fsmount=432,
        fspick=433, pidfd_getfd=438, mount_setattr=442, lookup_dcookie=18, process_madvise=440,
        shmget=194, msgget=186, semget=190, memfd_create=279, memfd_secret=447, fchmod=52, fchmodat=53,
        fchmodat2=452, fchown=55, fchownat=54, utimensat=88, setxattr=5, lsetxattr=6, fsetxattr=7,
        removexattr=14, lremovexattr=15, fremovexattr=16, setxattrat=463, removexattrat=466,
        file_setattr=469, truncate=45, ioctl=29, setsockopt=208, fcntl=25,
    ),
}
AUDIT_ARCH = {"x86_64": AUDIT_ARCH_X86_64, "aarch64": AUDIT_ARCH_AARCH64}


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def supported_arch(arch: str) -> bool:
    return arch in SYSCALLS


def stmt(code: int, k: int) -> tuple[int, int, int, int]:
    return (code, 0, 0, k)


def jump(code: int, k: int, jt: int, jf: int) -> tuple[int, int, int, int]:
    return (code, jt, jf, k)


def errno_action(code: int) -> int:
    return SECCOMP_RET_ERRNO | (code & 0xFFFF)


@dataclass(frozen=True)
class Profile:
    """What the filter leaves open beyond the fixed deny list. Both are True where a private mount
    view already hides every socket and makes everything outside the workspace read-only."""

    unix_sockets: bool = True  # socket(AF_UNIX) (bind/connect by path) and any AF_UNIX socketpair
    metadata: bool = True  # chmod, chown, utimes, xattrs, truncate(path), inode-flag ioctls

    def to_json(self) -> dict:
        return {"unix_sockets": self.unix_sockets, "metadata": self.metadata}


def build_program(arch: str, profile: Profile = Profile()) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions. Every branch ends in its own RET, so every jump
    stays short (at most 10) and the list can grow without hitting BPF's 8-bit jump offsets."""
    if arch not in SYSCALLS:
        raise ValueError(f"no seccomp syscall table for {arch!r}; supported: {', '.join(SYSCALLS)}")
    nrs = SYSCALLS[arch]
    deny_eperm = errno_action(errno.EPERM)
    allow = SECCOMP_RET_ALLOW
    prog = [
        stmt(BPF_LD_W_ABS, OFFSET_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH[arch], 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),  # foreign ABI (e.g. i386 int 0x80): kill
        stmt(BPF_LD_W_ABS, OFFSET_NR),
    ]
    if arch == "x86_64":  # x32 syscalls share the arch value; refuse them all
        prog += [jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1), stmt(BPF_RET_K, deny_eperm)]
    denied = DENIED + (() if profile.metadata else METADATA)
    for name in denied:
        if name in nrs:
            prog += [jump(BPF_JMP_JEQ_K, nrs[name], 0, 1), stmt(BPF_RET_K, deny_eperm)]
    prog += [jump(BPF_JMP_JEQ_K, nrs["clone3"], 0, 1), stmt(BPF_RET_K, errno_action(errno.ENOSYS))]
    # socket(domain, ...): only AF_UNIX, and that only with unix_sockets
    unix_socket = allow if profile.unix_sockets else deny_eperm
    prog += [
        jump(BPF_JMP_JEQ_K, nrs["socket"], 0, 4),
        stmt(BPF_LD_W_ABS, offset_arg_low(0)),
        jump(BPF_JMP_JEQ_K, AF_UNIX, 0, 1),
        stmt(BPF_RET_K, unix_socket),
        stmt(BPF_RET_K, deny_eperm),
    ]
    # socketpair(domain, type, ...): AF_UNIX; without unix_sockets only SOCK_STREAM, whose sockets are
    # connected to each other for good (a datagram pair could sendto() any path)
    prog += [jump(BPF_JMP_JEQ_K, nrs["socketpair"], 0, 4 if profile.unix_sockets else 7),
             stmt(BPF_LD_W_ABS, offset_arg_low(0))]
    if profile.unix_sockets:
        prog += [jump(BPF_JMP_JEQ_K, AF_UNIX, 0, 1), stmt(BPF_RET_K, allow), stmt(BPF_RET_K, deny_eperm)]
    else:
        prog += [
            jump(BPF_JMP_JEQ_K, AF_UNIX, 0, 4),
            stmt(BPF_LD_W_ABS, offset_arg_low(1)),
            stmt(BPF_ALU_AND_K, SOCK_TYPE_MASK),
            jump(BPF_JMP_JEQ_K, SOCK_STREAM, 0, 1),
            stmt(BPF_RET_K, allow),
            stmt(BPF_RET_K, deny_eperm),
        ]
    if not profile.metadata:  # ioctl(fd, cmd, ...): the inode-flag setters
        ioctls = METADATA_IOCTLS
        prog += [jump(BPF_JMP_JEQ_K, nrs["ioctl"], 0, 2 * len(ioctls) + 2), stmt(BPF_LD_W_ABS, offset_arg_low(1))]
        for cmd in ioctls:
            prog += [jump(BPF_JMP_JEQ_K, cmd, 0, 1), stmt(BPF_RET_K, deny_eperm)]
        prog += [stmt(BPF_RET_K, allow)]
    # setsockopt(fd, SOL_SOCKET, SO_*BUF*): a socket keeps the default buffer (kernel memory that no
    # rlimit counts); fcntl(fd, F_SETPIPE_SZ): a pipe keeps its 64 KiB
    prog += [
        jump(BPF_JMP_JEQ_K, nrs["setsockopt"], 0, 9),
        stmt(BPF_LD_W_ABS, offset_arg_low(1)),
        jump(BPF_JMP_JEQ_K, SOL_SOCKET, 0, 6),
        stmt(BPF_LD_W_ABS, offset_arg_low(2)),
        jump(BPF_JMP_JEQ_K, BUFFER_OPTIONS[0], 3, 0),
        jump(BPF_JMP_JEQ_K, BUFFER_OPTIONS[1], 2, 0),
        jump(BPF_JMP_JEQ_K, BUFFER_OPTIONS[2], 1, 0),
        jump(BPF_JMP_JEQ_K, BUFFER_OPTIONS[3], 0, 1),
        stmt(BPF_RET_K, deny_eperm),
        stmt(BPF_RET_K, allow),
        jump(BPF_JMP_JEQ_K, nrs["fcntl"], 0, 4),
        stmt(BPF_LD_W_ABS, offset_arg_low(1)),
        jump(BPF_JMP_JEQ_K, F_SETPIPE_SZ, 0, 1),
        stmt(BPF_RET_K, deny_eperm),
        stmt(BPF_RET_K, allow),
    ]
    prog += [  # clone(flags, ...): no new namespaces
        jump(BPF_JMP_JEQ_K, nrs["clone"], 0, 4),
        stmt(BPF_LD_W_ABS, offset_arg_low(0)),
        jump(BPF_JMP_JSET_K, CLONE_NEW_MASK, 0, 1),
        stmt(BPF_RET_K, deny_eperm),
        stmt(BPF_RET_K, allow),
        stmt(BPF_RET_K, allow),
    ]
    return prog


def encode_program(prog: list[tuple[int, int, int, int]]) -> bytes:
    """struct sock_filter[]: u16 code, u8 jt, u8 jf, u32 k."""
    return b"".join(struct.pack("=HBBI", code, jt, jf, k) for code, jt, jf, k in prog)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


PR_SET_SECCOMP = 22
PR_GET_SECCOMP = 21
SECCOMP_MODE_FILTER = 2


def filter_support() -> str | None:
    """None when seccomp filters are available; else why not. Installs nothing: a NULL program
    answers EFAULT when filters exist, EINVAL when the kernel lacks them."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0:
        return f"prctl(PR_GET_SECCOMP) failed: {errno.errorcode.get(ctypes.get_errno(), '?')}"
    rc = libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, None, 0, 0)
    err = ctypes.get_errno()
    if rc == 0:
        return "seccomp probe installed a filter unexpectedly"
    if err == errno.EFAULT:
        return None
    return f"seccomp filters unsupported ({errno.errorcode.get(err, err)})"


def install_filter(profile: Profile = Profile(), arch: str | None = None) -> None:
    """Install the filter on the calling thread's process. Needs PR_SET_NO_NEW_PRIVS first."""
    arch = arch or host_arch()
    blob = encode_program(build_program(arch, profile))
    buf = ctypes.create_string_buffer(blob, len(blob))
    fprog = SockFprog(len(blob) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP) failed: {errno.errorcode.get(err, err)}")
