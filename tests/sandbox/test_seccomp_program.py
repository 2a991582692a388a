"""The seccomp program, run through a small BPF interpreter: which syscalls it allows and refuses."""

from __future__ import annotations

import errno
import struct

import pytest

from agents.sandbox import seccomp as sc


def run_bpf(prog, nr: int, arch: int, args=(0, 0, 0, 0, 0, 0)) -> int:
    data = struct.pack("=iIQ6Q", nr, arch, 0, *args)
    acc, pc = 0, 0
    while True:
        code, jt, jf, k = prog[pc]
        if code == sc.BPF_LD_W_ABS:
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code == sc.BPF_ALU_AND_K:
            acc &= k
            pc += 1
        elif code == sc.BPF_RET_K:
            return k
        elif code in (sc.BPF_JMP_JEQ_K, sc.BPF_JMP_JGE_K, sc.BPF_JMP_JSET_K):
            hit = {sc.BPF_JMP_JEQ_K: acc == k, sc.BPF_JMP_JGE_K: acc >= k, sc.BPF_JMP_JSET_K: acc & k != 0}[code]
            pc += 1 + (jt if hit else jf)
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


EPERM = sc.errno_action(errno.EPERM)
ENOSYS = sc.errno_action(errno.ENOSYS)
ALLOW = sc.SECCOMP_RET_ALLOW
X86 = sc.SYSCALLS["x86_64"]
ARM = sc.SYSCALLS["aarch64"]


@pytest.mark.parametrize("arch,nr,args,expected", [
    ("x86_64", 0, (), ALLOW),  # read
    ("x86_64", 1, (), ALLOW),  # write
    ("x86_64", 59, (), ALLOW),  # execve
    ("x86_64", X86["ptrace"], (), EPERM),
    ("x86_64", X86["process_vm_readv"], (), EPERM),
    ("x86_64", X86["setsid"], (), EPERM),
    ("x86_64", X86["setpgid"], (), EPERM),
    ("x86_64", X86["unshare"], (), EPERM),
    ("x86_64", X86["mount"], (), EPERM),
    ("x86_64", X86["bpf"], (), EPERM),
    ("x86_64", X86["io_uring_setup"], (), EPERM),
    ("x86_64", X86["keyctl"], (), EPERM),
    ("x86_64", X86["clone3"], (), ENOSYS),
    ("x86_64", X86["socket"], (1, 1), ALLOW),  # AF_UNIX
    ("x86_64", X86["socket"], (2, 1), EPERM),  # AF_INET
    ("x86_64", X86["socket"], (10, 2), EPERM),  # AF_INET6
    ("x86_64", X86["socket"], (16, 3), EPERM),  # AF_NETLINK
    ("x86_64", X86["socketpair"], (1, 1), ALLOW),
    ("x86_64", X86["clone"], (0x01200011,), ALLOW),  # fork-like: CLONE_CHILD_SETTID|CLEARTID|SIGCHLD
    ("x86_64", X86["clone"], (0x003D0F00,), ALLOW),  # pthread_create flags
    ("x86_64", X86["clone"], (0x10000000 | 17,), EPERM),  # CLONE_NEWUSER
    ("x86_64", X86["clone"], (0x40000000 | 17,), EPERM),  # CLONE_NEWNET
    ("x86_64", 0x40000000 + 1, (), EPERM),  # x32 ABI write
    ("aarch64", ARM["ptrace"], (), EPERM),
    ("aarch64", ARM["socket"], (2, 1), EPERM),
    ("aarch64", ARM["socket"], (1, 1), ALLOW),
    ("aarch64", ARM["clone3"], (), ENOSYS),
    ("aarch64", 63, (), ALLOW),  # read
])
def test_filter_decides_each_syscall(arch, nr, args, expected):
    prog = sc.build_program(arch)
    padded = tuple(args) + (0,) * (6 - len(args))
    assert run_bpf(prog, nr, sc.AUDIT_ARCH[arch], padded) == expected


STRICT = sc.Profile(unix_sockets=False, metadata=False)
SOCK_CLOEXEC, SOCK_DGRAM, SOCK_SEQPACKET = 0x80000, 2, 5


@pytest.mark.parametrize("profile,nr,args,expected", [
    # always: memory no rlimit counts
    (sc.Profile(), X86["shmget"], (), EPERM),
    (sc.Profile(), X86["msgget"], (), EPERM),
    (sc.Profile(), X86["memfd_create"], (), EPERM),
    (sc.Profile(), X86["setsockopt"], (3, 1, 7), EPERM),  # fd, SOL_SOCKET, SO_SNDBUF
    (sc.Profile(), X86["setsockopt"], (3, 1, 8), EPERM),  # SO_RCVBUF
    (sc.Profile(), X86["setsockopt"], (3, 1, 32), EPERM),  # SO_SNDBUFFORCE
    (sc.Profile(), X86["setsockopt"], (3, 1, 33), EPERM),  # SO_RCVBUFFORCE
    (sc.Profile(), X86["setsockopt"], (3, 1, 2), ALLOW),  # SO_REUSEADDR
    (sc.Profile(), X86["setsockopt"], (3, 6, 7), ALLOW),  # another level, same number
    (sc.Profile(), X86["fcntl"], (3, 1031), EPERM),  # F_SETPIPE_SZ
    (sc.Profile(), X86["fcntl"], (3, 2), ALLOW),  # F_SETFD
    # a private root: unix sockets and metadata are left to the mount view
    (sc.Profile(), X86["socket"], (1, 1), ALLOW),
    (sc.Profile(), X86["socketpair"], (1, SOCK_DGRAM), ALLOW),
    (sc.Profile(), X86["chmod"], (), ALLOW),
    (sc.Profile(), X86["ioctl"], (3, 0x40086602), ALLOW),
    # no private root: no addressable unix socket, no metadata change
    (STRICT, X86["socket"], (1, 1), EPERM),
    (STRICT, X86["socket"], (2, 1), EPERM),
    (STRICT, X86["socketpair"], (1, 1), ALLOW),  # SOCK_STREAM pair: connected for good
    (STRICT, X86["socketpair"], (1, 1 | SOCK_CLOEXEC), ALLOW),
    (STRICT, X86["socketpair"], (1, SOCK_DGRAM), EPERM),  # could sendto() any path
    (STRICT, X86["socketpair"], (1, SOCK_SEQPACKET | SOCK_CLOEXEC), EPERM),
    (STRICT, X86["socketpair"], (2, 1), EPERM),
    *[(STRICT, X86[name], (), EPERM) for name in sc.METADATA],
    (STRICT, X86["ioctl"], (3, 0x40086602), EPERM),  # FS_IOC_SETFLAGS
    (STRICT, X86["ioctl"], (3, 0x401C5820), EPERM),  # FS_IOC_FSSETXATTR
    (STRICT, X86["ioctl"], (3, 0x5401), ALLOW),  # TCGETS
    (STRICT, 0, (), ALLOW),  # read
])
def test_profiles_decide_sockets_and_metadata(profile, nr, args, expected):
    padded = tuple(args) + (0,) * (6 - len(args))
    assert run_bpf(sc.build_program("x86_64", profile), nr, sc.AUDIT_ARCH_X86_64, padded) == expected


def test_every_metadata_name_has_a_number_on_both_architectures():
    assert set(sc.METADATA) <= set(X86)
    assert {"fchmod", "fchmodat", "fchownat", "utimensat", "setxattr", "truncate"} <= set(ARM)


@pytest.mark.parametrize("arch,foreign", [("x86_64", 0x40000003), ("aarch64", sc.AUDIT_ARCH_X86_64)])
def test_foreign_architecture_is_killed(arch, foreign):
    assert run_bpf(sc.build_program(arch), 0, foreign) == sc.SECCOMP_RET_KILL_PROCESS


def test_every_denied_name_has_a_number_on_x86_64():
    assert set(sc.DENIED) <= set(X86)


def test_high_argument_bits_do_not_bypass_the_socket_check():
    prog = sc.build_program("x86_64")
    assert run_bpf(prog, X86["socket"], sc.AUDIT_ARCH_X86_64, ((1 << 32) | 2, 1, 0, 0, 0, 0)) == EPERM


def test_unknown_architecture_is_refused_with_advice():
    with pytest.raises(ValueError, match="supported"):
        sc.build_program("riscv64")


@pytest.mark.parametrize("profile", [sc.Profile(), STRICT])
def test_program_encodes_to_eight_byte_instructions(profile):
    prog = sc.build_program("x86_64", profile)
    blob = sc.encode_program(prog)
    assert len(blob) == 8 * len(prog) and len(prog) < 4096
    assert all(jt <= 255 and jf <= 255 for _, jt, jf, _ in prog)
