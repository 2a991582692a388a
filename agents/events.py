"""Agent run records and the events a run streams: what a page or CLI needs to render a run.

Pure data. Nothing here imports langgraph; `protocol` supplies the model-side types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

from protocol import Comparison, GenerationResult, GenerationSettings, Message, StopReason, ToolSpec

Mode = Literal["compare", "drafter", "baseline"]
# What a model reply led to. tool_call: calls were run. final_answer: the model stopped by itself with an
# answer. cut_off: the reply hit max_new_tokens (the model is told and goes on). format_error: nothing could
# be run or shown as an answer (an unreadable call, a foreign call format, an empty reply; the model is told).
# stopped: Stop cut the generation.
StepKind = Literal["tool_call", "final_answer", "cut_off", "format_error", "stopped"]
# repeating: a reply ran to the token limit repeating one short piece of text (turns.repeating_tail); told to go
# on, greedy decoding would repeat it again, so the run ends there.
EndReason = Literal["answered", "step_limit", "repeating", "stopped", "error"]
MAX_TASK_CHARS = 20_000  # a longer task is refused before any model call (the page checks the same number)
DEFAULT_MAX_STEPS = 12


@dataclass(frozen=True)
class AgentConfig:
    """How the agent runs."""

    mode: Mode = "compare"
    max_steps: int = DEFAULT_MAX_STEPS  # the page and the CLI default to this too
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
    parse_error: str | None = None  # why a tool call in the reply could not be read (from the parser)
    feedback: str | None = None  # what the agent told the model about this reply (unreadable, cut off, empty)

    @property
    def stop_reason(self) -> StopReason:
        """Why the generation the agent continued with ended."""
        return self.result.stop_reason

    @property
    def stop_reasons(self) -> dict[str, StopReason]:
        """Why each generation of the step ended: {"baseline": ..., "drafter": ...} for the runs made."""
        if self.comparison is not None:
            return {"baseline": self.comparison.baseline.stop_reason, "drafter": self.comparison.drafter.stop_reason}
        return {"drafter" if self.result.stats.used_drafter else "baseline": self.result.stop_reason}

    @property
    def stopped(self) -> bool:
        """Stop cut one of the step's generations short: its timings are partial."""
        return "stopped" in self.stop_reasons.values()


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
    tokens: int = 0  # generated tokens this text completes (the live view counts them)


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
    """The last event of every run. `messages` is the whole conversation afterwards, plain picklable data:
    pass it back as run_agent(..., history=messages) to follow up."""

    reason: EndReason
    final_answer: str
    steps: tuple[Step, ...]
    error: str | None = None
    messages: tuple[Message, ...] = ()
    task: str = ""
    system_prompt: str = ""
    tool_specs: tuple[ToolSpec, ...] = ()
    started_at: str = ""  # ISO 8601, UTC


AgentEvent = Union[StepStarted, RunPhase, TextDelta, ModelDone, ToolStarted, StepDone, RunDone]
