"""Sandbox contract: how the tool layer asks for code to run, and what it gets back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence


@dataclass(frozen=True)
class SandboxLimits:
    wall_s: float = 20.0
    cpu_s: int = 15
    memory_bytes: int = 512 << 20  # address space per process; a run holds at most processes x this
    output_bytes: int = 64 << 10
    file_bytes: int = 16 << 20  # largest single file the child may write
    disk_bytes: int = 64 << 20  # whole workspace
    processes: int = 32  # tasks (processes and threads) at once; fewer where memory_bytes x 32 does not fit
    files: int = 4096  # entries (files, directories, links) in the whole workspace

    def __post_init__(self) -> None:
        if self.wall_s <= 0 or self.cpu_s <= 0 or self.output_bytes <= 0:
            raise ValueError("sandbox limits must be positive")


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None  # None when killed
    output: str  # stdout and stderr interleaved, capped at output_bytes, undecodable bytes escaped
    timed_out: bool
    truncated: bool
    duration_s: float
    note: str | None = None  # why it was killed or limited, in words for the model and the page


class Sandbox(Protocol):
    """Runs a command inside a workspace with bounds and isolation."""

    available: bool  # False: code-running tools must be disabled; `reason` says why
    reason: str  # what isolation is in force, or why none is

    def run(self, argv: Sequence[str], workspace: Path, limits: SandboxLimits = SandboxLimits(), *,
            should_stop: Callable[[], bool] | None = None) -> ExecResult:
        """argv[0] must be "python" (the isolated interpreter). should_stop is polled about every 0.1 s;
        when it returns True every process of the run is killed and the result says so."""
        ...
