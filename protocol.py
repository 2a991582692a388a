"""Model protocol: what the agent asks of a model and what one model call returns.

Pure Python on purpose. `agents/` imports this, `inference/` implements it, and neither imports the
other: no torch, transformers, langgraph or gradio here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol, Sequence

# A chat-template message: {"role": "system"|"user"|"assistant"|"tool", "content": str, optional
# "reasoning": str, "tool_calls": [{"id", "type": "function", "function": {"name", "arguments": dict}}],
# and for role "tool": "name", "tool_call_id"}.
Message = dict[str, Any]
# An OpenAI-style tool declaration: {"type": "function", "function": {"name", "description", "parameters"}}.
ToolSpec = dict[str, Any]
StopReason = Literal["eos", "max_new_tokens", "stopped"]


class ModelError(Exception):
    """A model call or load failed; the message says the cause and what to do."""


class InputError(ModelError, ValueError):
    """The request was rejected before any model call; the message says what to change."""


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate. temperature 0 means greedy."""

    max_new_tokens: int = 512
    draft_tokens: int = 6  # k: tokens the drafter proposes per verification round
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    enable_thinking: bool = False

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")
        if not 1 <= self.draft_tokens <= 32:
            raise InputError(f"draft_tokens (k) must be between 1 and 32, got {self.draft_tokens}.")
        if self.temperature < 0:
            raise InputError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise InputError(f"top_p must be in (0, 1], got {self.top_p}.")

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class DrafterStats:
    """What the drafter did in one generation."""

    draft_tokens: int  # k in force
    rounds: int  # verification rounds = target forward passes after prefill
    drafted_tokens: int
    accepted_tokens: int
    accepted_by_position: tuple[float, ...]  # P(draft token i accepted | drafted), i = 0..k-1
    draft_s: float  # time in the drafter
    verify_s: float  # time in target verification passes

    @property
    def acceptance_rate(self) -> float:
        return self.accepted_tokens / self.drafted_tokens if self.drafted_tokens else 0.0

    @property
    def mean_accepted_length(self) -> float:
        """Accepted draft tokens per round (the target adds one of its own each round)."""
        return self.accepted_tokens / self.rounds if self.rounds else 0.0


@dataclass(frozen=True)
class GenerationStats:
    """Timings and counts of one generation, measured on the server with device syncs."""

    used_drafter: bool
    prompt_tokens: int
    new_tokens: int
    prefill_s: float  # time to first token
    decode_s: float
    wall_s: float
    peak_mem_bytes: int | None  # None on CPU
    drafter: DrafterStats | None = None

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.wall_s if self.wall_s > 0 else 0.0


@dataclass(frozen=True)
class GenerationResult:
    """One model call. `text` keeps Gemma 4's special tokens (parsers need them) minus the stop token."""

    text: str
    token_ids: tuple[int, ...]
    token_texts: tuple[str, ...]  # one decoded piece per new token
    stop_reason: StopReason
    stats: GenerationStats
    # Per new token: True = a drafter token the target accepted, False = the target's own. None without drafter.
    provenance: tuple[bool, ...] | None = None
    # Per new token: True where the target's own token replaced a rejected draft (a draft was tried at this
    # position and refused). provenance False and draft_rejected False: no draft was tried there (the first
    # token, the bonus token after a fully accepted round). None without drafter.
    draft_rejected: tuple[bool, ...] | None = None


@dataclass(frozen=True)
class Comparison:
    """The identical prompt generated without and with the drafter."""

    baseline: GenerationResult
    drafter: GenerationResult
    first_run: Literal["baseline", "drafter"]
    first_divergence: int | None  # index of the first differing new token; None when identical

    @property
    def identical(self) -> bool:
        return self.first_divergence is None

    @property
    def speedup(self) -> float:
        d = self.drafter.stats.wall_s
        return self.baseline.stats.wall_s / d if d > 0 else 0.0


TextCallback = Callable[[str, int], None]  # (decoded text delta, how many generated tokens it completes)
StopCheck = Callable[[], bool]


class ChatModel(Protocol):
    """A chat model with an optional MTP drafter. `inference.Engine` satisfies it; tests use doubles."""

    model_id: str
    drafter_id: str | None

    def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        *,
        use_drafter: bool,
        settings: GenerationSettings = GenerationSettings(),
        on_text: TextCallback | None = None,
        should_stop: StopCheck | None = None,
    ) -> GenerationResult:
        """Generate one assistant turn. on_text gets decoded text deltas as tokens arrive,
        each with the number of tokens it completes; should_stop
        is polled between rounds and ends the call early (stop_reason "stopped")."""
        ...

    def compare(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] | None = None,
        *,
        settings: GenerationSettings = GenerationSettings(),
        on_text: TextCallback | None = None,
        on_run: Callable[[Literal["baseline", "drafter"]], None] | None = None,
        should_stop: StopCheck | None = None,
    ) -> Comparison:
        """Run both ways, alternating which goes first call to call. on_run announces each run before
        its text streams through on_text."""
        ...

    def describe(self) -> dict[str, Any]:
        """Model ids, device, dtype, torch and transformers versions: for exports."""
        ...


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    """Index of the first position where two token sequences differ (length counts), or None."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


__all__ = [
    "ChatModel", "Comparison", "DrafterStats", "GenerationResult", "GenerationSettings",
    "GenerationStats", "InputError", "Message", "ModelError", "StopReason", "ToolSpec", "first_divergence",
]
