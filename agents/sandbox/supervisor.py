"""Parent side of the sandbox: decides the isolation in force, starts the launcher, watches the run
(watch.py) and makes sure no process of the run survives it.

Knows the launcher's spec format; the child-side confinement itself lives in launcher.py and view.py.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

from . import policy, procs, seccomp, workspace as ws
from .api import ExecResult, SandboxLimits
from .probe import IsolationProbe, probe_isolation
from .watch import Watch, disk_note, measure_disk

log = logging.getLogger(__name__)
LAUNCHER = Path(__file__).with_name("launcher.py")
SHM_BYTES = 16 << 20  # private /dev/shm per run (with namespaces)
LAUNCHER_TASKS = {"root": 1, "user": 2, None: 0}  # init (+ the waiting launcher, inside a user namespace)
PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
FIX_HINT = ("run `python -m agents.sandbox` to see the probe and the self-test; "
            "docs/SECURITY.md lists what each layer needs")


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
    namespaces: str | None = None  # "root" | "user": private root, PID, network, IPC namespaces per run
    memory_budget_bytes: int = 1 << 62  # what one run may hold at most (half the machine)
    socket_buffer_bytes: int = 212992  # the most a unix socket can queue (net.core.wmem_max)

    @property
    def private_mounts(self) -> bool:
        return self.namespaces is not None

    @property
    def seccomp_profile(self) -> seccomp.Profile:
        """Without a private root nothing hides the machine's sockets and files: refuse unix sockets and
        metadata changes (Landlock does not cover them; with a uid of its own a child could still touch
        or tag any world-writable file)."""
        if self.namespaces:
            return seccomp.Profile()
        return seccomp.Profile(unix_sockets=False, metadata=False)

    def bounds(self, limits: SandboxLimits) -> policy.RunBounds:
        shm = SHM_BYTES if self.namespaces else 0
        return policy.run_bounds(limits, self.memory_budget_bytes, shm, self.socket_buffer_bytes)


@dataclass
class LocalSandbox:
    available: bool
    reason: str
    isolation: Isolation | None
    failure: Literal["platform", "setup"] | None = None  # why unavailable: the kernel/host, or this install
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


def describe(iso: Isolation, probe: IsolationProbe) -> str:
    """The reason text of an isolated sandbox: the layers in force, in words."""
    abi = iso.landlock_abi
    if iso.drop_uid:
        who = "a uid of its own per workspace"
    elif iso.namespaces:
        who = f"the server's uid {probe.uid} inside a user namespace of its own"
    else:
        who = f"the server's uid {probe.uid} (process bound: RLIMIT_NPROC over all of that uid's tasks)"
    if iso.namespaces:
        layers = ("private root (system and interpreter read-only, the workspace the only writable folder; no "
                  "other socket or file of the machine exists there), own PID, network and IPC namespaces")
    else:
        blocked = "unix sockets and metadata changes (chmod, chown, utime, xattrs) even in the workspace"
        layers = f"no private root (namespaces unavailable: {probe.namespaces_error}); seccomp refuses {blocked}"
    scope = ("signals and abstract sockets scoped by Landlock" if abi >= 6 else
             "signals NOT scoped by Landlock (ABI < 6): " + ("the PID namespace hides the server" if iso.namespaces
                                                            else "a different uid protects the server"))
    b = iso.bounds(SandboxLimits())
    return (f"isolated: {layers}; Landlock ABI {abi} (read-only system and interpreter, read-write workspace), "
            f"seccomp filter, {'TCP blocked by Landlock and seccomp' if abi >= 4 else 'IP sockets blocked by seccomp'}"
            f"; {scope}; runs as {who}; memory per run at most {b.bound_bytes / (1 << 30):.1f} GiB "
            f"({b.tasks} tasks x {b.as_bytes >> 20} MiB address space); rlimits (CPU, memory, file size, "
            "processes, open files), environment allowlist, wall-clock, output and disk caps")


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
    if not probe.is_root and probe.landlock_abi and probe.landlock_abi < 6 and not probe.namespaces:
        missing.append(f"Landlock ABI {probe.landlock_abi} does not scope signals (6 does, Linux 6.12) and no PID "
                       f"namespace is possible ({probe.namespaces_error}), so a child of the server's uid could "
                       "stop the server: use a newer kernel or allow unprivileged user namespaces")
    drop = probe.is_root and probe.can_switch_uid
    budget = probe.memory_bytes // 2 if probe.memory_bytes else 1 << 62
    iso = Isolation(probe.landlock_abi, probe.seccomp_available, drop, probe.namespaces if probe.platform == "Linux"
                    else None, budget, policy.socket_buffer_bytes())
    if not missing:
        return iso, describe(iso, probe)
    if not allow_unisolated or probe.platform != "Linux":
        return None, "; ".join(missing)
    return iso, (
        "unisolated (PLAYGROUND_ALLOW_UNSANDBOXED=1): " + "; ".join(missing) + ". Still applied: rlimits, "
        "environment allowlist, wall-clock/output/disk caps" + (", uid drop" if drop else "")
        + (", private root and namespaces" if iso.namespaces else "")
        + (", seccomp" if probe.seccomp_available else "") + (", Landlock" if probe.landlock_abi else ""))


def setup_problem(probe: IsolationProbe, dirs: Sequence[str]) -> str | None:
    """Why this installation cannot run sandboxed code although the kernel could, with what to do."""
    if not (probe.is_root and probe.can_switch_uid) or probe.namespaces:
        return None  # same uid as the server, or a private root that binds the interpreter in anyway
    for d in dirs:
        blocker = policy.blocking_ancestor(d)
        if blocker is None:
            continue
        fix = ("set TMPDIR to a world-traversable folder (e.g. /tmp)" if policy.is_under(d, str(ws.workspace_root()))
               else "install Python and the virtual environment under a world-readable folder (e.g. /opt/playground)")
        return (f"the sandbox uid cannot reach {d}: {blocker} is not world-traversable, and the server cannot build "
                f"a private root ({probe.namespaces_error}). Either {fix}, or start the server with CAP_SYS_ADMIN, "
                "or run it as a non-root user")
    return None


SELF_TEST = r"""
import os, socket, sys
try:
    open(sys.argv[1], "rb").close(); print("FAIL read outside workspace")
except (PermissionError, FileNotFoundError):
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
    bait = workspace.parent / f".self-test-{os.getpid()}-{threading.get_ident()}"
    try:
        bait.write_text("outside the workspace")
        bait.chmod(0o644)  # readable to anyone who can reach it: only the sandbox stands in the way
        result = sandbox.run(["python", "-c", SELF_TEST, str(bait)], workspace, SandboxLimits(wall_s=15, cpu_s=10))
    finally:
        bait.unlink(missing_ok=True)
        ws.remove_workspace(workspace)
    if result.output.split() == ["ok", "read", "ok", "socket", "ok", "env"] and result.exit_code == 0:
        return None
    return f"self-test failed (exit {result.exit_code}, {result.note}): {result.output[-400:]!r}"


def open_sandbox(allow_unisolated: bool = False, probe: IsolationProbe | None = None) -> LocalSandbox:
    """The sandbox this kernel allows, decided from `probe` (taken now if not given) and a self-test run."""
    probe = probe or probe_isolation()
    problem = setup_problem(probe, [*policy.interpreter_dirs(), str(ws.workspace_root())])
    if problem is not None:
        log.warning("sandbox unavailable: %s", problem)
        return LocalSandbox(False, problem, None, failure="setup")
    isolation, reason = decide(probe, allow_unisolated)
    if isolation is None:
        log.warning("sandbox unavailable: %s", reason)
        return LocalSandbox(False, reason, None, failure="platform")
    sandbox = LocalSandbox(True, reason, isolation)
    if not (isolation.landlock_abi and isolation.seccomp):
        return sandbox
    failure = self_test(sandbox)
    if failure is not None and isolation.namespaces:
        # The probe's namespaces did not survive the full setup (an LSM, a missing path): try without.
        log.warning("sandbox self-test failed with namespaces, trying without: %s", failure)
        fallback = dataclasses.replace(probe, namespaces=None,
                                       namespaces_error=f"the private root failed its self-test ({failure[:200]})")
        if setup_problem(fallback, [*policy.interpreter_dirs(), str(ws.workspace_root())]) is None:
            isolation, reason = decide(fallback, allow_unisolated)
            if isolation is not None:
                sandbox = LocalSandbox(True, reason, isolation)
                failure = self_test(sandbox)
    if failure is not None:
        log.error("sandbox self-test failed: %s", failure)
        if not allow_unisolated:
            return LocalSandbox(False, f"isolation probe passed but the {failure}; {FIX_HINT}", None,
                                failure="setup")
        sandbox.reason = f"unisolated (PLAYGROUND_ALLOW_UNSANDBOXED=1): the {failure}"
    return sandbox


def build_spec(args: list[str], workspace: Path, limits: SandboxLimits, iso: Isolation,
               status_fd: int | None = None) -> tuple[dict, int | None]:
    uid = None
    if iso.drop_uid:
        st = workspace.stat()
        uid = st.st_uid if ws.is_sandbox_uid(st.st_uid) else ws.allocate_uid(workspace)
        ws.hand_over(workspace, uid)
    bounds = iso.bounds(limits)
    if uid is not None or iso.namespaces == "user":  # RLIMIT_NPROC counts only this run's tasks
        nproc = bounds.tasks + LAUNCHER_TASKS[iso.namespaces]
    else:
        nproc = procs.count_tasks_of_uid(os.getuid()) + bounds.tasks
    ns = iso.namespaces
    spec = {"python": sys.executable, "args": args, "workspace": str(workspace), "uid": uid, "gid": uid,
            "rlimits": policy.rlimits(limits, nproc, bounds.as_bytes), "seccomp": iso.seccomp,
            "seccomp_profile": iso.seccomp_profile.to_json(), "namespaces": ns, "status_fd": status_fd,
            "view": policy.private_view(workspace, SHM_BYTES) if ns else None,
            "landlock_abi": iso.landlock_abi,
            "landlock_rules": policy.landlock_rules(workspace, private_shm=bool(ns)) if iso.landlock_abi else []}
    return spec, uid


def read_status(fd: int) -> dict | None:
    """What the run's init wrote to the status pipe, if anything."""
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 4096)
        return json.loads(data) if data else None
    except (BlockingIOError, ValueError):
        return None


def supervise(args: list[str], workspace: Path, limits: SandboxLimits, iso: Isolation,
              should_stop: Callable[[], bool] | None) -> ExecResult:
    status_r, status_w = os.pipe()  # the run's init reports how the program ended (with namespaces)
    try:
        spec, uid = build_spec(args, workspace, limits, iso, status_w)
        start = time.monotonic()
        start_usage = measure_disk(workspace, limits, None)
        proc = subprocess.Popen([sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(spec)],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=policy.child_environment(workspace), cwd=str(workspace), close_fds=True,
                                pass_fds=(status_w,), start_new_session=True)
    except BaseException:
        os.close(status_r)
        raise
    finally:
        os.close(status_w)
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
        status = read_status(status_r)
        os.close(status_r)
    if status and status.get("leftovers"):
        leftovers = [None] * status["leftovers"]
    if leftovers and not watch.killed_for:
        watch.notes.append(f"{len(leftovers)} background processes were still running when it exited; "
                           "they were killed")
    if survivors:
        log.error("sandbox: %d processes survived the kill: %s", len(survivors), [p.pid for p in survivors])
        watch.notes.append(f"{len(survivors)} processes could not be killed")
    usage = measure_disk(workspace, limits, None)
    if watch.over_disk(usage) and not watch.killed_for:
        watch.notes.append(disk_note(usage, limits))
    return watch.result(code, time.monotonic() - start, status)
