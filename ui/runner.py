"""The GPU side of a run: a picklable job in, picklable updates out. This is what @spaces.GPU wraps.

On ZeroGPU, run_job runs in a forked worker with its arguments and every yielded value pickled across the
process boundary: it can read what the server process held when it forked (the engine loaded at start-up,
the sandbox) but nothing it changes reaches the server. So it takes a RunJob (plain data), yields agent
events plus one EngineInfo (plain data), and learns of Stop from a file the server touches, which a
forked worker sees as well as a thread does. On a dedicated GPU or a CPU the same function runs in-process.
Knows nothing of gradio.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Union

from agents import AgentConfig, RunDone, run_agent
from agents.events import AgentEvent

log = logging.getLogger("playground")


@dataclass(frozen=True)
class RunJob:
    """Everything one run needs, as plain picklable data."""

    task: str
    config: AgentConfig
    workspace: str
    stop_path: str
    history: tuple[dict[str, Any], ...] = ()  # earlier turns of the conversation (a follow-up)


@dataclass(frozen=True)
class EngineInfo:
    """Engine.describe() as seen where the run happens (on ZeroGPU: inside the worker, on the real GPU)."""

    info: dict[str, Any]


Update = Union[AgentEvent, EngineInfo]


class StopFlag:
    """A stop request as a file: visible to an in-process run and to a forked ZeroGPU worker alike."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def set(self) -> None:
        self.path.touch()

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)

    def is_set(self) -> bool:
        return self.path.exists()


@dataclass(frozen=True)
class GpuBudget:
    """How long a run may hold a ZeroGPU GPU, estimated from its settings (spaces.GPU(duration=...))."""

    tokens_per_s: float = 20.0  # a conservative floor for generation speed on the Space's GPU
    tool_s_per_step: float = 10.0
    overhead_s: float = 15.0  # worker start, moving weights, warm-up
    cap_s: int = 300

    def seconds(self, config: AgentConfig) -> int:
        runs = 2 if config.mode == "compare" else 1
        per_step_s = runs * config.settings.max_new_tokens / self.tokens_per_s + self.tool_s_per_step
        return int(min(self.cap_s, max(30.0, self.overhead_s + config.max_steps * per_step_s)))


@dataclass
class Served:
    """What the server process holds for runs; a forked worker inherits it as it was at the fork."""

    engine: Callable[[], Any] = lambda: None  # the loaded engine (protocol.ChatModel) or None
    sandbox: Any = None  # agents.sandbox.Sandbox when isolation is available, else None
    budget: GpuBudget = field(default_factory=GpuBudget)


SERVED = Served()


def estimate_gpu_s(job: RunJob) -> int:
    """ZeroGPU duration for this job: called with the GPU function's own arguments."""
    return SERVED.budget.seconds(job.config)


def describe_engine(engine: Any) -> dict[str, Any]:
    """engine.describe(), or {"describe_error": ...}: a description is for display and export only."""
    try:
        return dict(engine.describe())
    except Exception as e:  # noqa: BLE001 - never fail a run on it (ZeroGPU's main process has no GPU to name)
        return {"describe_error": f"{type(e).__name__}: {e}"}


def run_job(job: RunJob) -> Iterator[Update]:
    """Run the agent for `job`, yielding EngineInfo then its events; the last update is always a RunDone."""
    engine = SERVED.engine()
    if engine is None:
        yield RunDone(reason="error", final_answer="", steps=(), error="No model is loaded: wait for it or load one.")
        return
    yield EngineInfo(describe_engine(engine))
    stop = StopFlag(job.stop_path)
    try:
        yield from run_agent(engine, job.task, config=job.config, workspace=Path(job.workspace),
                             sandbox=SERVED.sandbox, should_stop=stop.is_set, history=job.history)
    except Exception as e:  # noqa: BLE001 - becomes a RunDone: an exception may not survive pickling
        log.exception("run failed")
        yield RunDone(reason="error", final_answer="", steps=(), error=f"Internal error ({type(e).__name__}): {e}")
