"""Child-side launcher: turns a fresh process into a confined one, then execs the isolated Python.

Run by the supervisor as `python -I -S launcher.py '<json spec>'` in a new session with the
allowlisted environment already in place (the server's environment never reaches this process).
Standard library only; it loads its siblings (landlock.py, seccomp.py, view.py) by path, before any
privilege is dropped, so it runs wherever the project lives. Order matters:

  1. with namespaces (spec "namespaces": "root", or "user" for a non-root server): new mount, PID,
     network and IPC namespaces (view.unshare), then fork: the child is PID 1 of the new PID
     namespace ("init"), this process only waits and passes on its exit status;
     init builds the private root (view.build) and pivots into it;
  2. rlimits (CPU, AS, FSIZE, NPROC, NOFILE, CORE=0), after the user namespace so that RLIMIT_NPROC
     counts the run's own tasks;
  3. chdir to the workspace, drop to the workspace's uid/gid (root only), with no supplementary groups;
  4. PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE 0;
  5. Landlock; 6. seccomp (last: it forbids setsid, mount and unshare that the steps above use);
  7. execve(python -E -s -B ...): isolated mode minus -P, so the workspace stays importable. With
     namespaces, init forks the program first and stays to reap; when the program exits, init kills
     what it left behind (and the kernel kills the rest of the namespace with init), then writes
     {"exit" | "signal": n, "leftovers": n} to the status pipe.

Any failure exits 125 with a line starting "playground-sandbox: setup failed:" and runs nothing.
"""

import ctypes
import json
import os
import resource
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import landlock  # noqa: E402  (sibling files, loaded by path)
import seccomp  # noqa: E402
import view  # noqa: E402

SETUP_FAILED = "playground-sandbox: setup failed:"
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
RLIMITS = {"cpu": resource.RLIMIT_CPU, "as": resource.RLIMIT_AS, "fsize": resource.RLIMIT_FSIZE,
           "nproc": resource.RLIMIT_NPROC, "nofile": resource.RLIMIT_NOFILE, "core": resource.RLIMIT_CORE}

libc = ctypes.CDLL(None, use_errno=True)


def fail(message: str) -> None:
    os.write(2, f"{SETUP_FAILED} {message}\n".encode("utf-8", "backslashreplace"))
    os._exit(125)


def describe(exc: BaseException) -> str:
    """The error and the launcher line it came from, for the setup-failed message."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" (at {os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno})" if tb else ""
    return f"{type(exc).__name__}: {exc}{where}"


def check(rc: int, what: str) -> None:
    if rc != 0:
        fail(f"{what}: {os.strerror(ctypes.get_errno())}")


def apply_rlimits(limits: dict) -> None:
    for name, (soft, hard) in limits.items():
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


def confine(spec: dict) -> None:
    """Steps 2-6, in this process."""
    apply_rlimits(spec["rlimits"])
    os.chdir(spec["workspace"])
    if spec.get("uid") is not None:
        drop_uid(spec["uid"], spec["gid"])
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "PR_SET_DUMPABLE")
    if spec.get("landlock_abi"):
        landlock.restrict_self([(p, r) for p, r in spec["landlock_rules"]], spec["landlock_abi"])
    if spec.get("seccomp"):
        seccomp.install_filter(seccomp.Profile(**spec["seccomp_profile"]))


def exec_python(spec: dict) -> None:
    python = spec["python"]
    # -E -s is -I without -P: no PYTHONPATH or user site, but the script's folder (the workspace) stays
    # importable so `python main.py` can import its neighbours.
    os.execve(python, [python, "-E", "-s", "-B", *spec["args"]], dict(os.environ))


def init(spec: dict) -> None:
    """PID 1 of the run's namespace: build the view, confine itself, fork the program, reap."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # PID 1 ignores signals left at their default
    status_fd = spec.get("status_fd")
    view.build(spec["view"], seccomp.host_arch())
    confine(spec)
    program = os.fork()
    if program == 0:
        if status_fd is not None:
            os.close(status_fd)
        exec_python(spec)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == program:
            break
    leftovers = 0
    try:
        os.kill(-1, signal.SIGKILL)  # from PID 1: every other process of the namespace
    except ProcessLookupError:
        pass  # nothing left
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            break
        leftovers += 1
    result = {"leftovers": leftovers}
    if os.WIFSIGNALED(status):
        result["signal"] = os.WTERMSIG(status)
    else:
        result["exit"] = os.waitstatus_to_exitcode(status)
    if status_fd is not None:
        os.write(status_fd, json.dumps(result).encode())
    os._exit(result.get("exit", 128 + result.get("signal", 0)))


def wait_for_init(pid: int) -> None:
    """Outside the new PID namespace: pass init's end on as this process's own."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


def main() -> None:
    spec = json.loads(sys.argv[1])
    os.umask(0o022)
    if os.getsid(0) != os.getpid():
        os.setsid()
    if spec.get("namespaces"):
        view.unshare(spec["namespaces"])
        pid = os.fork()
        if pid == 0:
            try:
                init(spec)
            except BaseException as exc:  # noqa: BLE001 - a setup error must stop the run
                fail(describe(exc))
        if spec.get("status_fd") is not None:
            os.close(spec["status_fd"])
        wait_for_init(pid)
    status_fd = spec.get("status_fd")
    if status_fd is not None:
        os.close(status_fd)
    confine(spec)
    exec_python(spec)


if __name__ == "__main__":
    try:
        main()
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - any setup error must stop the run, not leak through
        fail(describe(exc))
