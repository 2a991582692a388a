"""What isolation this kernel and process offer: Landlock ABI, seccomp, namespaces (tried for real in a
throwaway child), uid switching, and how much memory the machine (or the server's cgroup) has.

Reads and probes only; installs nothing. The summary is what the page's isolation panel shows.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import landlock, seccomp

VIEW = Path(__file__).with_name("view.py")

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
    namespaces: str | None = None  # "root" or "user": the kind of private namespaces a child can get
    namespaces_error: str | None = None  # why none, when namespaces is None
    memory_bytes: int = 0  # the machine's memory, or the server's cgroup limit when lower (0 = unknown)

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
        elif self.namespaces:
            who = (f"uid {self.uid} (not root): children keep this uid inside a user namespace of their own, "
                   "where RLIMIT_NPROC counts only the run's tasks")
        else:
            who = (f"uid {self.uid} (not root): children share this uid; the process bound is RLIMIT_NPROC "
                   "counted over every task of this uid")
        ns = (f"usable ({'a new user namespace' if self.namespaces == 'user' else 'as root'}): private "
              "root, PID, network and IPC namespaces per run" if self.namespaces
              else f"unavailable: {self.namespaces_error}")
        return "\n".join([
            f"Kernel: {self.platform} {self.kernel} ({self.arch})",
            f"Landlock: {ll}",
            f"Seccomp: {sc}; server's own seccomp mode: {self.seccomp_mode}",
            f"User namespaces: {self.user_namespaces}",
            f"Namespaces for children: {ns}",
            f"Server user: {who}",
            f"Memory: {self.memory_bytes / (1 << 30):.1f} GiB (machine, or the server's cgroup limit)",
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
    return text + "; sandboxed programs may not create their own (seccomp)"


def read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def probe_namespaces(is_root: bool, system: str) -> tuple[str | None, str | None]:
    """("root" | "user", None) when a throwaway child could build a private root, else (None, why)."""
    if system != "Linux":
        return None, f"Linux-only (this is {system})"
    kind = "root" if is_root else "user"
    try:
        done = subprocess.run([sys.executable, "-I", "-S", str(VIEW), kind], capture_output=True, text=True,
                              timeout=10, env={"PATH": "/usr/bin:/bin"}, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"the namespace probe could not run ({exc})"
    if done.returncode == 0:
        return kind, None
    why = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
    hint = ("the server lacks CAP_SYS_ADMIN" if is_root else
            "unprivileged user namespaces are disabled or blocked (container seccomp/AppArmor)")
    return None, f"{why}: {hint}"


def parse_meminfo_total(text: str) -> int:
    """MemTotal from /proc/meminfo text, in bytes (0 if absent)."""
    value = parse_status_field(text, "MemTotal")
    return int(value.split()[0]) * 1024 if value and value.split()[0].isdigit() else 0


def parse_cgroup_paths(text: str) -> dict[str, str]:
    """{"v2": path} and/or {"memory": path} from /proc/self/cgroup text."""
    paths = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":
            paths["v2"] = parts[2]
        elif "memory" in parts[1].split(","):
            paths["memory"] = parts[2]
    return paths


def cgroup_memory_limit() -> int | None:
    """The lowest memory limit on the server's cgroup or its ancestors (v2 memory.max or v1
    memory.limit_in_bytes), or None when there is none."""
    found = []
    paths = parse_cgroup_paths(read_text("/proc/self/cgroup") or "")
    for key, base, name in (("v2", "/sys/fs/cgroup", "memory.max"),
                            ("memory", "/sys/fs/cgroup/memory", "memory.limit_in_bytes")):
        if key not in paths:
            continue
        folder = Path(base + paths[key])
        for candidate in [folder, *folder.parents]:
            if not str(candidate).startswith(base):
                break
            text = (read_text(str(candidate / name)) or "").strip()
            if text.isdigit():
                found.append(int(text))
    return min(found) if found else None


def machine_memory_bytes() -> int:
    total = parse_meminfo_total(read_text("/proc/meminfo") or "")
    limit = cgroup_memory_limit()
    return min(total, limit) if total and limit else total or (limit or 0)


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
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    namespaces, ns_error = probe_namespaces(is_root, system)
    return IsolationProbe(
        platform=system, kernel=platform.release(), arch=arch, landlock_abi=abi, landlock_error=ll_error,
        seccomp_error=sc_error, seccomp_mode=int(mode) if mode and mode.isdigit() else None,
        user_namespaces=describe_user_namespaces(read_text("/proc/sys/user/max_user_namespaces"),
                                                 read_text("/proc/sys/kernel/unprivileged_userns_clone")),
        is_root=is_root, can_switch_uid={CAP_SETUID, CAP_SETGID} <= caps, can_mount=CAP_SYS_ADMIN in caps,
        uid=os.getuid() if hasattr(os, "getuid") else -1, namespaces=namespaces, namespaces_error=ns_error,
        memory_bytes=machine_memory_bytes() if system == "Linux" else 0,
    )
