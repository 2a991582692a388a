"""Seccomp BPF filter for sandboxed children: builds the program (pure) and installs it (ctypes).

Standard library only and no relative imports: the launcher loads this file by path inside the child
before it execs the interpreter. It knows nothing about Landlock, workspaces or limits.

The filter is a deny list on top of Landlock, rlimits and the uid drop: it refuses the syscalls that
reach other processes (ptrace, process_vm_*), escape the process group (setsid, setpgid), change
namespaces or mounts, talk to the kernel's large attack surfaces (bpf, perf, io_uring, keyrings,
userfaultfd, modules, kexec) and open any socket that is not AF_UNIX. clone3 answers ENOSYS so libc
falls back to clone, whose flags BPF can inspect (clone3 passes them in memory).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little endian hosts).
OFFSET_NR = 0
OFFSET_ARCH = 4


def offset_arg_low(index: int) -> int:
    return 16 + 8 * index


# BPF opcodes (linux/filter.h).
BPF_LD_W_ABS = 0x20
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
        iopl=172, ioperm=173,
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


def build_program(arch: str) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions. Every branch ends in its own RET, so no jump
    is longer than 2 and the list can grow without hitting BPF's 8-bit jump offsets."""
    if arch not in SYSCALLS:
        raise ValueError(f"no seccomp syscall table for {arch!r}; supported: {', '.join(SYSCALLS)}")
    nrs = SYSCALLS[arch]
    deny_eperm = errno_action(errno.EPERM)
    prog = [
        stmt(BPF_LD_W_ABS, OFFSET_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH[arch], 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),  # foreign ABI (e.g. i386 int 0x80): kill
        stmt(BPF_LD_W_ABS, OFFSET_NR),
    ]
    if arch == "x86_64":  # x32 syscalls share the arch value; refuse them all
        prog += [jump(BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1), stmt(BPF_RET_K, deny_eperm)]
    for name in DENIED:
        if name in nrs:
            prog += [jump(BPF_JMP_JEQ_K, nrs[name], 0, 1), stmt(BPF_RET_K, deny_eperm)]
    prog += [jump(BPF_JMP_JEQ_K, nrs["clone3"], 0, 1), stmt(BPF_RET_K, errno_action(errno.ENOSYS))]
    for name in ("socket", "socketpair"):  # domain is arg 0: only AF_UNIX
        prog += [
            jump(BPF_JMP_JEQ_K, nrs[name], 0, 4),
            stmt(BPF_LD_W_ABS, offset_arg_low(0)),
            jump(BPF_JMP_JEQ_K, AF_UNIX, 0, 1),
            stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
            stmt(BPF_RET_K, deny_eperm),
        ]
    prog += [  # clone(flags, ...): no new namespaces
        jump(BPF_JMP_JEQ_K, nrs["clone"], 0, 4),
        stmt(BPF_LD_W_ABS, offset_arg_low(0)),
        jump(BPF_JMP_JSET_K, CLONE_NEW_MASK, 0, 1),
        stmt(BPF_RET_K, deny_eperm),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
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


def install_filter(arch: str | None = None) -> None:
    """Install the filter on the calling thread's process. Needs PR_SET_NO_NEW_PRIVS first."""
    arch = arch or host_arch()
    blob = encode_program(build_program(arch))
    buf = ctypes.create_string_buffer(blob, len(blob))
    fprog = SockFprog(len(blob) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_SECCOMP) failed: {errno.errorcode.get(err, err)}")
