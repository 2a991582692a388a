"""Parent side of the sandbox: decides the isolation in force, starts the launcher, watches the run
(wall clock, output, disk, Stop button) and makes sure no process of the run survives it.

Knows the launcher's spec format; the child-side confinement itself lives in launcher.py.
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from . import policy, procs, workspace as ws
from .api import ExecResult, SandboxLimits
from .probe import IsolationProbe, probe_isolation

log = logging.getLogger(__name__)
LAUNCHER = Path(__file__).with_name("launcher.py")
POLL_S = 0.1
DISK_EVERY_S = 0.25
AFTER_CAP_GRACE_S = 1.0
SHM_BYTES = 16 << 20  # private /dev/shm per run (root only: it needs a mount namespace)
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36


def harden_server_process() -> None:
    """Make the server non-dumpable (no ptrace, /proc/<pid>/environ becomes root's) and a child
    subreaper (orphaned sandbox processes come back to it, not to init). Idempotent."""
    if sys.platform != "linux":
        log.warning("harden_server_process: not Linux (%s); the server process is not hardened", sys.platform)
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for option, value, what in ((PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE"),
                                (PR_SET_CHILD_SUBREAPER, 1, "PR_SET_CHILD_SUBREAPER")):
        if libc.prctl(option, value, 0, 0, 0) != 0:
            log.warning("harden_server_process: prctl(%s) failed: %s", what, os.strerror(ctypes.get_errno()))


@dataclass(frozen=True)
class Isolation:
    """The layers a run applies, decided once from the probe."""

    landlock_abi: int
    seccomp: bool
    drop_uid: bool  # root: each workspace's own uid; else children share the server's uid
    private_mounts: bool = False  # CAP_SYS_ADMIN: private /dev/shm, cover dirs the sandbox uid cannot traverse


@dataclass
class LocalSandbox:
    available: bool
    reason: str
    isolation: Isolation | None
    _locks: dict[str, threading.Lock] = field(default_factory=dict, repr=False)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def run(self, argv: Sequence[str], workspace: Path, limits: SandboxLimits = SandboxLimits(), *,
            should_stop: Callable[[], bool] | None = None) -> ExecResult:
        if not self.available or self.isolation is None:
            return refused(f"code execution is disabled: {self.reason}")
        if not argv or argv[0] != "python":
            return refused(f"only the sandboxed interpreter may run (argv[0] must be 'python', got "
                           f"{argv[0] if argv else 'nothing'!r}); use `python -m pytest -q` or `python script.py`")
        workspace = Path(workspace).resolve()
        if not workspace.is_dir():
            return refused(f"workspace {workspace} does not exist; create it with make_workspace()")
        lock = self._lock_for(workspace)
        if not lock.acquire(blocking=False):
            return refused("another command is still running in this workspace; wait for it to finish")
        try:
            return supervise(list(argv[1:]), workspace, limits, self.isolation, should_stop)
        finally:
            lock.release()

    def _lock_for(self, workspace: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(str(workspace), threading.Lock())


def refused(note: str) -> ExecResult:
    return ExecResult(exit_code=None, output="", timed_out=False, truncated=False, duration_s=0.0, note=note)


def decide(probe: IsolationProbe, allow_unisolated: bool) -> tuple[Isolation | None, str]:
    """The isolation in force and the reason text; (None, why) when failing closed."""
    missing = []
    if probe.platform != "Linux":
        missing.append(f"not Linux ({probe.platform}): no Landlock, seccomp or rlimit process bound")
    if not probe.landlock_abi:
        missing.append(f"Landlock is unavailable ({probe.landlock_error}), so file access cannot be confined")
    if not probe.seccomp_available:
        missing.append(f"seccomp is unavailable ({probe.seccomp_error}), so sockets and ptrace cannot be blocked")
    if probe.is_root and not probe.can_switch_uid:
        missing.append("the server is root without CAP_SETUID/CAP_SETGID, so children would run as root")
    drop = probe.is_root and probe.can_switch_uid
    if not missing:
        who = ("a uid of its own per workspace (RLIMIT_NPROC binds exactly)" if drop else
               f"the server's uid {probe.uid} (process bound: RLIMIT_NPROC over all of that uid's tasks)")
        abi = probe.landlock_abi
        net = "TCP blocked by Landlock and seccomp" if abi >= 4 else "non-unix sockets blocked by seccomp"
        scope = ("; signals and abstract sockets scoped" if abi >= 6 else
                 "; signals NOT scoped (Landlock ABI < 6)")
        return Isolation(abi, True, drop, drop and probe.can_mount), (
            f"isolated: Landlock ABI {abi} (read-only system and interpreter, read-write workspace), "
            f"seccomp filter, {net}{scope}; runs as {who}; rlimits (CPU, memory, file size, processes, "
            "open files), environment allowlist, wall-clock, output and disk caps")
    if not allow_unisolated or probe.platform != "Linux":
        return None, "; ".join(missing)
    return Isolation(probe.landlock_abi, probe.seccomp_available, drop, drop and probe.can_mount), (
        "unisolated (PLAYGROUND_ALLOW_UNSANDBOXED=1): " + "; ".join(missing) + ". Still applied: rlimits, "
        "environment allowlist, wall-clock/output/disk caps" + (", uid drop" if drop else "")
        + (", seccomp" if probe.seccomp_available else "") + (", Landlock" if probe.landlock_abi else ""))


SELF_TEST = r"""
import os, socket, sys
try:
    open(sys.argv[1], "rb").close(); print("FAIL read outside workspace")
except PermissionError:
    print("ok read")
try:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM); print("FAIL inet socket")
except PermissionError:
    print("ok socket")
print("ok env" if "HF_TOKEN" not in os.environ else "FAIL env")
"""


def self_test(sandbox: LocalSandbox) -> str | None:
    """Run a probe child through the real pipeline; None when every layer held, else what failed."""
    workspace = ws.make_workspace()
    try:
        result = sandbox.run(["python", "-c", SELF_TEST, str(LAUNCHER)], workspace,
                             SandboxLimits(wall_s=15, cpu_s=10))
    finally:
        ws.remove_workspace(workspace)
    if result.output.split() == ["ok", "read", "ok", "socket", "ok", "env"] and result.exit_code == 0:
        return None
    return f"self-test failed (exit {result.exit_code}, {result.note}): {result.output[-400:]!r}"


def open_sandbox(allow_unisolated: bool = False, probe: IsolationProbe | None = None) -> LocalSandbox:
    """The sandbox this kernel allows, decided from `probe` (taken now if not given) and a self-test run."""
    probe = probe or probe_isolation()
    isolation, reason = decide(probe, allow_unisolated)
    if isolation is None:
        log.warning("sandbox unavailable: %s", reason)
        return LocalSandbox(False, reason, None)
    sandbox = LocalSandbox(True, reason, isolation)
    if isolation.landlock_abi and isolation.seccomp:
        failure = self_test(sandbox)
        if failure is not None:
            log.error("sandbox self-test failed: %s", failure)
            if not allow_unisolated:
                return LocalSandbox(False, f"isolation probe passed but the {failure}", None)
            sandbox.reason = f"unisolated (PLAYGROUND_ALLOW_UNSANDBOXED=1): the {failure}"
    return sandbox


def build_spec(args: list[str], workspace: Path, limits: SandboxLimits, iso: Isolation) -> tuple[dict, int | None]:
    uid = None
    if iso.drop_uid:
        st = workspace.stat()
        uid = st.st_uid if ws.is_sandbox_uid(st.st_uid) else None
        if uid is None:
            uid = ws.allocate_uid(workspace.parent, ws.running_uids())
        ws.hand_over(workspace, uid)
    nproc = limits.processes if uid is not None else procs.count_tasks_of_uid(os.getuid()) + limits.processes
    mounts = uid is not None and iso.private_mounts
    covers = policy.covers_for(sorted(set(policy.interpreter_dirs() + [str(workspace)]))) if mounts else []
    spec = {"python": sys.executable, "args": args, "workspace": str(workspace), "uid": uid, "gid": uid,
            "rlimits": policy.rlimits(limits, nproc), "covers": covers, "seccomp": iso.seccomp,
            "landlock_abi": iso.landlock_abi, "shm_bytes": SHM_BYTES if mounts else 0,
            "landlock_rules": policy.landlock_rules(workspace, private_shm=mounts) if iso.landlock_abi else []}
    return spec, uid


def supervise(args: list[str], workspace: Path, limits: SandboxLimits, iso: Isolation,
              should_stop: Callable[[], bool] | None) -> ExecResult:
    spec, uid = build_spec(args, workspace, limits, iso)
    start = time.monotonic()
    start_usage = ws.measure(workspace, limits.files)
    proc = subprocess.Popen([sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=policy.child_environment(workspace), cwd=str(workspace), close_fds=True,
                            start_new_session=True)
    run = procs.RunProcesses(leader=proc.pid, uid=uid, seen={})
    watch = Watch(limits, start, start_usage, workspace, should_stop)
    try:
        watch.pump(proc, run)
    finally:
        leftovers = [p for p in run.members() if p.pid != proc.pid and p.state not in ("Z", "X")]
        survivors = run.kill_all()
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        watch.drain(proc)
        proc.stdout.close()
        survivors = [p for p in run.kill_all() if p.pid != proc.pid] or survivors
    if leftovers and not watch.killed_for:
        watch.notes.append(f"{len(leftovers)} background processes were still running when it exited; "
                           "they were killed")
    if survivors:
        log.error("sandbox: %d processes survived the kill: %s", len(survivors), [p.pid for p in survivors])
        watch.notes.append(f"{len(survivors)} processes could not be killed")
    usage = ws.measure(workspace, limits.files)
    if watch.over_disk(usage) and not watch.killed_for:
        watch.notes.append(disk_note(usage, limits))
    return watch.result(code, time.monotonic() - start)


def disk_note(usage: ws.Usage, limits: SandboxLimits) -> str:
    return (f"workspace over its cap ({usage.bytes >> 20} MiB / {usage.files} files; caps "
            f"{limits.disk_bytes >> 20} MiB, {limits.files} files): delete files before writing more")


@dataclass
class Watch:
    limits: SandboxLimits
    start: float
    start_usage: ws.Usage
    workspace: Path
    should_stop: Callable[[], bool] | None
    chunks: list[bytes] = field(default_factory=list)
    kept: int = 0
    dropped: int = 0
    cap_hit_at: float | None = None
    killed_for: str | None = None
    timed_out: bool = False
    notes: list[str] = field(default_factory=list)

    def pump(self, proc: subprocess.Popen, run: procs.RunProcesses) -> None:
        """Read output and enforce limits until the launched process exits or a limit kills it."""
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        last_disk, last_track, open_pipe = 0.0, 0.0, True
        try:
            while proc.poll() is None:
                if open_pipe and sel.select(POLL_S):
                    open_pipe = self.read_some(fd)
                elif not open_pipe:
                    time.sleep(POLL_S)
                now = time.monotonic()
                if now - last_track >= POLL_S:
                    last_track = now
                    run.track()
                if now - last_disk >= DISK_EVERY_S:
                    last_disk = now
                    usage = ws.measure(self.workspace, self.limits.files)
                    if self.over_disk(usage):
                        self.kill(disk_note(usage, self.limits))
                if self.killed_for is None:
                    self.check_limits(now)
                if self.killed_for is not None:
                    return
        finally:
            sel.close()

    def check_limits(self, now: float) -> None:
        if self.should_stop is not None and self.should_stop():
            self.kill("stopped by the user")
        elif now - self.start > self.limits.wall_s:
            self.timed_out = True
            self.kill(f"wall-clock limit of {self.limits.wall_s:g} s reached; all its processes were killed")
        elif self.cap_hit_at is not None and (now - self.cap_hit_at > AFTER_CAP_GRACE_S
                                              or self.dropped > self.limits.output_bytes):
            self.kill(f"output passed the {self.limits.output_bytes} byte cap and kept coming; killed")

    def kill(self, why: str) -> None:
        self.killed_for = why

    def over_disk(self, usage: ws.Usage) -> bool:
        grew = usage.bytes > self.start_usage.bytes or usage.files > self.start_usage.files
        return grew and (usage.bytes > self.limits.disk_bytes or usage.files > self.limits.files)

    def read_some(self, fd: int) -> bool:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        if not data:
            return False
        room = self.limits.output_bytes - self.kept
        if room > 0:
            self.chunks.append(data[:room])
            self.kept += min(room, len(data))
        if len(data) > max(room, 0):
            self.dropped += len(data) - max(room, 0)
            if self.cap_hit_at is None:
                self.cap_hit_at = time.monotonic()
        return True

    def drain(self, proc: subprocess.Popen, limit_s: float = 1.0) -> None:
        """After every writer is dead the pipe ends; keep what fits under the cap."""
        fd = proc.stdout.fileno()
        end = time.monotonic() + limit_s
        sel = selectors.DefaultSelector()
        sel.register(fd, selectors.EVENT_READ)
        try:
            while time.monotonic() < end and sel.select(0.05):
                if not self.read_some(fd):
                    break
        finally:
            sel.close()

    def result(self, code: int, duration_s: float) -> ExecResult:
        output = b"".join(self.chunks).decode("utf-8", "backslashreplace")
        notes = [self.killed_for] if self.killed_for else []
        exit_code: int | None = code
        if self.killed_for or code < 0:
            exit_code = None
        if code < 0 and not self.killed_for:
            notes.append(signal_note(-code, self.limits))
        if code == 125 and output.startswith("playground-sandbox: setup failed:"):
            exit_code = None
            notes.append("the sandbox could not be set up; nothing ran")
        if self.dropped:
            notes.append(f"output truncated at {self.limits.output_bytes} bytes ({self.dropped} more dropped)")
        return ExecResult(exit_code=exit_code, output=output, timed_out=self.timed_out,
                          truncated=self.dropped > 0, duration_s=duration_s,
                          note="; ".join(notes + self.notes) or None)


def signal_note(signum: int, limits: SandboxLimits) -> str:
    if signum == signal.SIGXCPU:
        return f"CPU time limit of {limits.cpu_s} s reached"
    if signum == signal.SIGXFSZ:
        return f"file size limit of {limits.file_bytes} bytes reached"
    if signum == signal.SIGKILL:
        return (f"killed by SIGKILL (CPU limit {limits.cpu_s} s hard stop, or out of memory under the "
                f"{limits.memory_bytes >> 20} MiB limit)")
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = str(signum)
    return f"killed by signal {name}"
