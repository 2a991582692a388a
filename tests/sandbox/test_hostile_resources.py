"""Hostile programs against the bounds that hold per run rather than per process: trees too deep for
recursion, files deleted while still open, memory spread over many processes."""

from __future__ import annotations

import os
import threading
import time
import uuid

from agents.sandbox import SandboxLimits, make_workspace, remove_workspace, uids
from agents.sandbox.workspace import hand_over, is_sandbox_uid, measure

from .conftest import cmdline, run_code, skip_or_fail
from .test_limits import bounds_in_place, process_bound_in_place

DEEP_TREE = """
import os
os.makedirs("top")
os.chdir("top")
for level in range(1500):
    os.mkdir("d")
    os.chdir("d")
open("bottom.txt", "w").write("deep")
os.mkfifo("fifo")
try:
    os.chmod(".", 0o500)  # a read-only folder at the bottom, where the mode allows it
except PermissionError:
    pass
print("built")
"""


def test_deep_tree_never_breaks_hand_over_or_removal(isolated, intact):
    workspace = make_workspace()
    uid = workspace.stat().st_uid
    removed = False
    try:
        result = run_code(isolated, workspace, DEEP_TREE)
        assert result.output.strip() == "built", result
        assert measure(workspace).files >= 1500
        (workspace / "from-the-server.txt").write_text("written by a server tool")
        again = run_code(isolated, workspace, "import os\nos.chdir('top' + '/d' * 1500)\n"
                                               "print(open('bottom.txt').read())\n"
                                               "for _ in range(1501):\n    os.chdir('..')\n"
                                               "print(open('from-the-server.txt').read())")
        assert again.output.split("\n")[:2] == ["deep", "written by a server tool"], again
        remove_workspace(workspace)
        removed = True
        assert not workspace.exists()
        if is_sandbox_uid(uid):
            assert not (uids.REGISTRY / str(uid)).exists(), "the uid claim outlived its workspace"
    finally:
        if not removed:
            remove_workspace(workspace)


def test_trees_deeper_than_any_stack_are_walked_and_removed():
    workspace = make_workspace()
    try:
        folder = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(2000):  # beyond both the recursion limit and PATH_MAX
            os.mkdir("d", dir_fd=folder)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = child
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=folder))
        os.fchmod(folder, 0o500)
        os.close(folder)
        assert measure(workspace).files == 2001
        if os.geteuid() == 0:
            hand_over(workspace, workspace.stat().st_uid)
    finally:
        remove_workspace(workspace)
    assert not workspace.exists()


HOLD_DELETED = """
import mmap, os, sys, time
held = []
for i in range(40):
    with open(f"f{i}", "wb") as f:
        f.write(b"x" * (1 << 20))
    fd = os.open(f"f{i}", os.O_RDWR)
    if MAP:  # keep it alive through one mapped page only, with no descriptor left
        held.append(mmap.mmap(fd, 4096))
        os.close(fd)
    else:
        held.append(fd)
    os.unlink(f"f{i}")
    print(i, flush=True)
    time.sleep(0.05)
print("wrote 40 MiB")
"""


def test_files_deleted_while_open_count_against_the_disk_cap(isolated, workspace, intact):
    limits = SandboxLimits(wall_s=15, cpu_s=10, file_bytes=1 << 20, disk_bytes=4 << 20)
    for use_mmap in (False, True):
        result = run_code(isolated, workspace, f"MAP = {use_mmap}\n{HOLD_DELETED}", limits)
        written = len(result.output.split())
        assert "wrote 40 MiB" not in result.output and result.exit_code is None, result
        assert "workspace over its cap" in result.note and "deleted files still held open" in result.note
        # the bound: the cap, plus what it writes between two 0.25 s scans (about 5 x 1 MiB here, more on a
        # loaded machine), far from the 40 MiB it tries
        assert written <= 4 + 12, f"{written} MiB written before the kill"
        assert measure(workspace).bytes < limits.disk_bytes
        print(f"\ndisk cap 4 MiB, files held {'mapped' if use_mmap else 'open'} after unlink: killed after "
              f"{written} MiB")


BOMB = """
import os, time
chunks = []
def hog():
    while True:
        try:
            chunks.append(bytearray(16 << 20))  # touched: really resident
        except MemoryError:
            break
    print("full", os.getpid(), flush=True)
    time.sleep(1.5)
for _ in range(64):
    try:
        if os.fork() == 0:
            hog()
            os._exit(0)
    except OSError:
        break
hog()
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"""


def rss_of(marker: str) -> tuple[int, int]:
    """(resident bytes, processes) of every live process whose command line holds `marker`."""
    total, count = 0, 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or marker.encode() not in cmdline(int(name)):
            continue
        try:
            with open(f"/proc/{name}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            count += 1
        except (OSError, ValueError, IndexError):
            continue
    return total, count


def test_memory_of_a_run_is_bounded_as_a_whole(isolated, workspace, intact):
    """Many processes each filling their address-space limit: the run as a whole stays under
    tasks x RLIMIT_AS (measured here by summing the resident memory of its processes)."""
    limits = SandboxLimits(wall_s=10, cpu_s=5, processes=4, memory_bytes=128 << 20)
    bounds = isolated.isolation.bounds(limits)
    process_bound_in_place(isolated, workspace, limits)
    if bounds_in_place(isolated, workspace, limits)["as"] != bounds.as_bytes:
        skip_or_fail("RLIMIT_AS not verified in place: not running the bomb")
    marker = f"marker-{uuid.uuid4().hex}"
    peak = {"bytes": 0, "processes": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            used, count = rss_of(marker)
            peak["bytes"], peak["processes"] = max(peak["bytes"], used), max(peak["processes"], count)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = run_code(isolated, workspace, BOMB, limits, marker=marker)
    finally:
        done.set()
        sampler.join()
    assert result.output.count("full") >= 2, result  # several processes really filled their limit
    assert peak["processes"] <= bounds.tasks + 2  # + the launcher and the init of the run's namespace
    assert peak["bytes"] <= bounds.tasks * bounds.as_bytes + (64 << 20), peak
    print(f"\nrun memory: peak {peak['bytes'] >> 20} MiB resident in {peak['processes']} processes; "
          f"bound {bounds.tasks} tasks x {bounds.as_bytes >> 20} MiB = {(bounds.tasks * bounds.as_bytes) >> 20} MiB")


def test_disk_scan_stops_at_the_files_cap_whatever_the_depth():
    workspace = make_workspace()
    try:
        folder = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY)
        for _ in range(400):  # deeper than the cap: a scan that followed depth first would not stop
            os.mkdir("d", dir_fd=folder)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=folder)
            os.close(folder)
            folder = child
        os.close(folder)
        started = time.monotonic()
        assert measure(workspace, stop_after_files=100).files == 101
        assert time.monotonic() - started < 1
    finally:
        remove_workspace(workspace)


KERNEL_MEMORY = """
import ctypes, fcntl, os, socket
libc = ctypes.CDLL(None, use_errno=True)
a, b = socket.socketpair()
r, w = os.pipe()
attempts = {
    "SO_SNDBUF": lambda: a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20),
    "SO_RCVBUF": lambda: a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20),
    "F_SETPIPE_SZ": lambda: fcntl.fcntl(w, 1031, 1 << 20),
    "memfd_create": lambda: os.memfd_create("hoard"),
    "shmget": lambda: (_ for _ in ()).throw(OSError(ctypes.get_errno(), "shmget"))
                      if libc.shmget(0, 64 << 20, 0o1600) < 0 else None,
}
for name, attempt in attempts.items():
    try:
        attempt(); print("GOT", name)
    except OSError as exc:
        print("refused", name, exc.errno)
"""


def test_kernel_memory_outside_rlimits_cannot_be_hoarded(isolated, workspace):
    """Socket and pipe buffers stay at their defaults and no memfd or SysV segment exists, so
    tasks x (RLIMIT_AS + NOFILE x the default socket buffer) bounds the run."""
    result = run_code(isolated, workspace, KERNEL_MEMORY)
    assert "GOT" not in result.output and result.output.count("refused") == 5, result
