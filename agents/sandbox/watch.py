"""Watching one run from the server: output (capped), wall clock, the Stop button, and the workspace's
disk use, counting files the child deleted while still holding them open or mapped. Turns what
happened into an ExecResult with a note in words.

Knows the output pipe and the workspace; process membership comes from procs, isolation from nobody.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import procs, workspace as ws
from .api import ExecResult, SandboxLimits

POLL_S = 0.1
DISK_EVERY_S = 0.25
AFTER_CAP_GRACE_S = 1.0
UNMEASURED_POLLS = 8  # 2 s of a workspace that keeps moving under the disk scan: kill
SETUP_FAILED = "playground-sandbox: setup failed:"


@dataclass(frozen=True)
class DiskUse:
    bytes: int  # allocated by files in the tree plus deleted files still held open or mapped
    files: int
    held_deleted_bytes: int = 0
    complete: bool = True


def measure_disk(workspace: Path, limits: SandboxLimits, run: procs.RunProcesses | None) -> DiskUse:
    usage = ws.measure(workspace, limits.files)
    held = 0
    if run is not None:
        members = [p.pid for p in run.members() if p.state not in ("Z", "X")]
        held = procs.deleted_file_bytes(members, os.stat(workspace).st_dev, str(workspace) + "/",
                                        limits.file_bytes)
    return DiskUse(usage.bytes + held, usage.files, held, usage.complete)


def disk_note(usage: DiskUse, limits: SandboxLimits) -> str:
    held = (f", {usage.held_deleted_bytes >> 20} MiB of it in deleted files still held open"
            if usage.held_deleted_bytes else "")
    return (f"workspace over its cap ({usage.bytes >> 20} MiB{held} / {usage.files} files; caps "
            f"{limits.disk_bytes >> 20} MiB, {limits.files} files): delete files before writing more")


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


@dataclass
class Watch:
    limits: SandboxLimits
    start: float
    start_usage: DiskUse
    workspace: Path
    should_stop: Callable[[], bool] | None
    chunks: list[bytes] = field(default_factory=list)
    kept: int = 0
    dropped: int = 0
    cap_hit_at: float | None = None
    killed_for: str | None = None
    timed_out: bool = False
    unmeasured: int = 0
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
                    self.check_disk(measure_disk(self.workspace, self.limits, run))
                if self.killed_for is None:
                    self.check_limits(now)
                if self.killed_for is not None:
                    return
        finally:
            sel.close()

    def check_disk(self, usage: DiskUse) -> None:
        self.unmeasured = 0 if usage.complete else self.unmeasured + 1
        if self.unmeasured >= UNMEASURED_POLLS:
            self.kill("the workspace kept changing under the disk-cap scan (or a folder stayed unreadable) "
                      "for 2 s; killed")
        elif self.over_disk(usage):
            self.kill(disk_note(usage, self.limits))

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

    def over_disk(self, usage: DiskUse) -> bool:
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

    def result(self, code: int, duration_s: float, status: dict | None = None) -> ExecResult:
        """code: the launched process's return code; status: what the run's init reported (with
        namespaces), which says how the program itself ended."""
        output = b"".join(self.chunks).decode("utf-8", "backslashreplace")
        notes = [self.killed_for] if self.killed_for else []
        if status is not None and not self.killed_for:
            code = -status["signal"] if "signal" in status else status.get("exit", code)
        exit_code: int | None = code
        if self.killed_for or code < 0:
            exit_code = None
        if code < 0 and not self.killed_for:
            notes.append(signal_note(-code, self.limits))
        if code == 125 and output.startswith(SETUP_FAILED):
            exit_code = None
            notes.append("the sandbox could not be set up; nothing ran")
        if self.dropped:
            notes.append(f"output truncated at {self.limits.output_bytes} bytes ({self.dropped} more dropped)")
        return ExecResult(exit_code=exit_code, output=output, timed_out=self.timed_out,
                          truncated=self.dropped > 0, duration_s=duration_s,
                          note="; ".join(notes + self.notes) or None)
