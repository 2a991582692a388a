"""Agent run records and the events a run streams: what a page or CLI needs to render a run.

Pure data. Nothing here imports langgraph; `protocol` supplies the model-side types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

from protocol import Comparison, GenerationResult, GenerationSettings

Mode = Literal["compare", "drafter", "baseline"]
StepKind = Literal["tool_call", "final_answer"]
EndReason = Literal["answered", "step_limit", "stopped", "error"]


@dataclass(frozen=True)
class AgentConfig:
    """How the agent runs."""

    mode: Mode = "compare"
    max_steps: int = 12
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    # Each tool keeps its output within its own budget (agents.tools); this optional ceiling cuts every tool
    # result further, for models with a short context.
    tool_output_chars: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("compare", "drafter", "baseline"):
            raise ValueError(f"mode must be compare, drafter or baseline, got {self.mode!r}.")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}.")
        if self.tool_output_chars is not None and self.tool_output_chars < 200:
            raise ValueError(f"tool_output_chars must be at least 200 (or None), got {self.tool_output_chars}.")


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    id: str


@dataclass(frozen=True)
class ToolResult:
    call: ToolCall
    output: str  # as the model read it: within the tool's budget (and AgentConfig.tool_output_chars)
    is_error: bool  # refused, failed, or code that exited non-zero, timed out or was killed
    duration_s: float
    exit_code: int | None = None  # run_python / run_tests only; None when killed or not run
    timed_out: bool = False
    killed: bool = False


@dataclass(frozen=True)
class Step:
    """One reasoning step: one model call (two in compare mode) and the tools it called."""

    index: int  # 1-based
    kind: StepKind
    text: str  # the model's visible answer text, special tokens and thoughts removed
    thoughts: str
    tool_calls: tuple[ToolCall, ...]
    tool_results: tuple[ToolResult, ...]
    tool_s: float
    result: GenerationResult  # the run the agent continued with (drafter in compare mode)
    comparison: Comparison | None = None  # compare mode only
    parse_error: str | None = None  # malformed tool call fed back to the model as an error


# ---- events streamed while a run goes ----

@dataclass(frozen=True)
class StepStarted:
    index: int


@dataclass(frozen=True)
class RunPhase:
    """Which generation of the step is streaming (compare mode runs two)."""

    index: int
    run: Literal["baseline", "drafter"]


@dataclass(frozen=True)
class TextDelta:
    index: int
    text: str


@dataclass(frozen=True)
class ModelDone:
    """The model call(s) of a step are done; tools (if any) run next."""

    step: Step


@dataclass(frozen=True)
class ToolStarted:
    index: int
    call: ToolCall


@dataclass(frozen=True)
class StepDone:
    """The step with its tool results."""

    step: Step


@dataclass(frozen=True)
class RunDone:
    reason: EndReason
    final_answer: str
    steps: tuple[Step, ...]
    error: str | None = None


AgentEvent = Union[StepStarted, RunPhase, TextDelta, ModelDone, ToolStarted, StepDone, RunDone]
