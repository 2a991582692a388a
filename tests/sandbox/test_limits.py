"""Resource bombs and runaway programs: each is stopped by its bound, quickly, with nothing left alive."""

from __future__ import annotations

import os
import threading
import time

from agents.sandbox import SandboxLimits, procs
from agents.sandbox.supervisor import LAUNCHER_TASKS

from .conftest import run_code, skip_or_fail


def bounds_in_place(sandbox, workspace, limits: SandboxLimits) -> dict:
    """Ask a child what uid and rlimits it really runs under."""
    code = """
import os, resource
print("uid", os.getuid())
print("nproc", resource.getrlimit(resource.RLIMIT_NPROC)[0])
print("as", resource.getrlimit(resource.RLIMIT_AS)[0])
"""
    result = run_code(sandbox, workspace, code, limits)
    return {k: int(v) for k, v in (line.split() for line in result.output.splitlines())}


def test_infinite_loop_is_stopped_by_cpu_limit(isolated, workspace):
    started = time.monotonic()
    result = run_code(isolated, workspace, "while True: pass", SandboxLimits(wall_s=10, cpu_s=1))
    assert result.exit_code is None and not result.timed_out
    assert "CPU" in result.note
    assert time.monotonic() - started < 6


def test_sleep_forever_hits_wall_timeout(isolated, workspace):
    result = run_code(isolated, workspace, "import time\nwhile True: time.sleep(1)", SandboxLimits(wall_s=1, cpu_s=5))
    assert result.timed_out and result.exit_code is None
    assert "wall-clock" in result.note
    assert result.duration_s < 3


def process_bound_in_place(sandbox, workspace, limits: SandboxLimits) -> int:
    """RLIMIT_NPROC as the child sees it, checked against what this mode promises; fails (never
    runs a bomb) when it is not in place."""
    iso = sandbox.isolation
    tasks = iso.bounds(limits).tasks
    bounds = bounds_in_place(sandbox, workspace, limits)
    if iso.drop_uid or iso.namespaces == "user":  # counts only the run's own tasks
        expected = tasks + LAUNCHER_TASKS[iso.namespaces]
        ok = bounds["nproc"] == expected
    else:  # shared uid: every task of the server's uid counts, plus the run's
        expected = procs.count_tasks_of_uid(os.getuid()) + tasks
        ok = bounds["nproc"] <= expected + 8
    if bounds["uid"] == 0 or not ok:
        skip_or_fail(f"process bound not verified in place (uid {bounds['uid']}, RLIMIT_NPROC {bounds['nproc']}, "
                     f"expected {expected}): not running the bomb")
    return bounds["nproc"]


def test_fork_bomb_leaves_no_process_behind(isolated, workspace):
    limits = SandboxLimits(wall_s=3, cpu_s=3, processes=16)
    process_bound_in_place(isolated, workspace, limits)
    code = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""
    result = run_code(isolated, workspace, code, limits)
    assert result.exit_code is None
    assert result.duration_s < 8


def test_setsid_daemon_that_outlives_its_parent_is_killed(isolated, workspace):
    code = """
import os, time
if os.fork() == 0:
    try:
        os.setsid()
    except OSError as exc:
        print("setsid refused", exc.errno, flush=True)
    if os.fork() == 0:
        time.sleep(60)
        open("daemon-was-here", "w").write("x")
    os._exit(0)
time.sleep(0.3)
print("parent done", flush=True)
"""
    result = run_code(isolated, workspace, code)
    assert result.exit_code == 0 and "parent done" in result.output
    assert "setsid refused 1" in result.output
    assert "background processes" in result.note
    assert not (workspace / "daemon-was-here").exists()


def test_memory_bomb_is_refused_by_address_space_limit(isolated, workspace):
    limits = SandboxLimits(wall_s=10, cpu_s=5, memory_bytes=512 << 20)
    if bounds_in_place(isolated, workspace, limits)["as"] != isolated.isolation.bounds(limits).as_bytes:
        skip_or_fail("RLIMIT_AS not verified in place: not running the bomb")
    code = """
chunks = []
while True:
    chunks.append(bytearray(64 << 20))
"""
    result = run_code(isolated, workspace, code, limits)
    assert result.exit_code != 0
    assert "MemoryError" in result.output


def test_output_flood_is_capped_and_fast(isolated, workspace):
    limits = SandboxLimits(wall_s=10, cpu_s=5, output_bytes=4096)
    result = run_code(isolated, workspace, "import sys\nwhile True: sys.stdout.write('x' * 65536)", limits)
    assert result.truncated
    assert len(result.output.encode()) <= 4096
    assert result.duration_s < 4
    assert "output" in result.note


def test_huge_file_is_cut_by_file_size_limit(isolated, workspace):
    limits = SandboxLimits(wall_s=10, cpu_s=5, file_bytes=1 << 20)
    code = "open('big', 'wb').write(b'x' * (4 << 20))"
    result = run_code(isolated, workspace, code, limits)
    assert result.exit_code != 0
    assert "File too large" in result.output
    assert (workspace / "big").stat().st_size <= 1 << 20


def test_many_files_hit_the_workspace_cap(isolated, workspace):
    limits = SandboxLimits(wall_s=10, cpu_s=8, files=300)
    code = """
import itertools
for i in itertools.count():
    open(f"f{i}", "w").write("x")
"""
    result = run_code(isolated, workspace, code, limits)
    assert result.exit_code is None
    assert "workspace over its cap" in result.note
    assert result.duration_s < 5


def test_disk_bytes_cap_kills_a_writer(isolated, workspace):
    limits = SandboxLimits(wall_s=10, cpu_s=8, file_bytes=1 << 20, disk_bytes=4 << 20)
    code = """
import itertools, time
for i in itertools.count():
    open(f"f{i}", "wb").write(b"x" * (512 << 10))
    time.sleep(0.01)
"""
    result = run_code(isolated, workspace, code, limits)
    assert result.exit_code is None and "workspace over its cap" in result.note


def test_should_stop_ends_a_sleeping_child_within_two_seconds(isolated, workspace):
    flag = threading.Event()
    threading.Timer(0.5, flag.set).start()
    result = run_code(isolated, workspace, "import time\ntime.sleep(60)", should_stop=flag.is_set)
    assert result.exit_code is None and "stopped" in result.note
    assert result.duration_s < 2.5


def test_invalid_utf8_output_is_escaped(isolated, workspace):
    result = run_code(isolated, workspace, "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe end')")
    assert result.output == "ok \\xff\\xfe end"
    assert not result.truncated


def test_stderr_and_stdout_are_interleaved(isolated, workspace):
    code = "import sys\nprint('one', flush=True)\nprint('two', file=sys.stderr, flush=True)\nprint('three')"
    result = run_code(isolated, workspace, code)
    assert result.output.split() == ["one", "two", "three"]
    assert result.exit_code == 0
