"""What isolation this kernel and process offer: Landlock ABI, seccomp, user namespaces, uid switching.

Reads and probes only; installs nothing. The summary is what the page's isolation panel shows.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

from . import landlock, seccomp

CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN = 6, 7, 21


@dataclass(frozen=True)
class IsolationProbe:
    platform: str
    kernel: str
    arch: str
    landlock_abi: int  # 0 = unavailable
    landlock_error: str | None
    seccomp_error: str | None  # None = seccomp filters available for this arch
    seccomp_mode: int | None  # the server's own mode from /proc/self/status (0 = none)
    user_namespaces: str
    is_root: bool
    can_switch_uid: bool  # CAP_SETUID and CAP_SETGID in the effective set
    can_mount: bool  # CAP_SYS_ADMIN: may cover /root-like directories in a private mount namespace
    uid: int

    @property
    def seccomp_available(self) -> bool:
        return self.seccomp_error is None

    def summary(self) -> str:
        ll = (f"ABI {self.landlock_abi} ({landlock_features(self.landlock_abi)})" if self.landlock_abi
              else f"unavailable: {self.landlock_error}")
        sc = "available (filter mode)" if self.seccomp_available else f"unavailable: {self.seccomp_error}"
        if self.is_root and self.can_switch_uid:
            who = "root; children drop to a per-workspace uid (62000+)"
        elif self.is_root:
            who = "root WITHOUT CAP_SETUID/CAP_SETGID: cannot drop children to another uid"
        else:
            who = (f"uid {self.uid} (not root): children share this uid; the process bound is RLIMIT_NPROC "
                   "counted over every task of this uid")
        return "\n".join([
            f"Kernel: {self.platform} {self.kernel} ({self.arch})",
            f"Landlock: {ll}",
            f"Seccomp: {sc}; server's own seccomp mode: {self.seccomp_mode}",
            f"User namespaces: {self.user_namespaces}",
            f"Server user: {who}",
        ])


def landlock_features(abi: int) -> str:
    parts = ["files"]
    if abi >= 4:
        parts.append("TCP bind/connect")
    if abi >= 6:
        parts.append("signal and abstract-socket scopes")
    return ", ".join(parts)


def parse_status_field(text: str, field: str) -> str | None:
    """Value of `Field:` in /proc/<pid>/status text, or None."""
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == field:
            return value.strip()
    return None


def parse_capabilities(hex_mask: str | None) -> set[int]:
    if not hex_mask:
        return set()
    try:
        mask = int(hex_mask, 16)
    except ValueError:
        return set()
    return {bit for bit in range(64) if mask >> bit & 1}


def describe_user_namespaces(max_namespaces: str | None, unprivileged_clone: str | None) -> str:
    if max_namespaces is None:
        return "unknown (no /proc/sys/user/max_user_namespaces)"
    if max_namespaces.strip() == "0":
        return "disabled (max_user_namespaces=0)"
    text = f"enabled (max_user_namespaces={max_namespaces.strip()})"
    if unprivileged_clone is not None and unprivileged_clone.strip() == "0":
        text += ", unprivileged creation disabled"
    return text + "; not used by this sandbox, and children may not create them (seccomp)"


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def probe_isolation() -> IsolationProbe:
    system = platform.system()
    status = read_text("/proc/self/status") or ""
    caps = parse_capabilities(parse_status_field(status, "CapEff"))
    mode = parse_status_field(status, "Seccomp")
    arch = seccomp.host_arch()
    abi, ll_error = landlock.abi_version()
    if system != "Linux":
        sc_error = f"seccomp is Linux-only (this is {system})"
    elif not seccomp.supported_arch(arch):
        sc_error = f"no syscall table for {arch}"
    else:
        sc_error = seccomp.filter_support()
    return IsolationProbe(
        platform=system, kernel=platform.release(), arch=arch, landlock_abi=abi, landlock_error=ll_error,
        seccomp_error=sc_error, seccomp_mode=int(mode) if mode and mode.isdigit() else None,
        user_namespaces=describe_user_namespaces(read_text("/proc/sys/user/max_user_namespaces"),
                                                 read_text("/proc/sys/kernel/unprivileged_userns_clone")),
        is_root=hasattr(os, "geteuid") and os.geteuid() == 0,
        can_switch_uid={CAP_SETUID, CAP_SETGID} <= caps, can_mount=CAP_SYS_ADMIN in caps,
        uid=os.getuid() if hasattr(os, "getuid") else -1,
    )
