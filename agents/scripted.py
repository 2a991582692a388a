"""ScriptedModel: a protocol.ChatModel test double that replays scripted Gemma 4 turns.

No weights, no torch. Each call returns the next scripted text (special tokens and all, as the engine
returns them) split into token pieces, with self-consistent stats: counts, drafter rounds, acceptance
provenance and draft_rejected agree with each other, so report math tested on it is real math. It streams through
on_text, honours should_stop, and records every request it gets.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

from protocol import (
    Comparison, DrafterStats, GenerationResult, GenerationSettings, GenerationStats, Message, ModelError,
    StopCheck, TextCallback, ToolSpec, first_divergence,
)

# Special tokens stay whole; other text splits into words with their leading space, or single symbols.
_PIECES = re.compile(r"<\|[^|<>]*\|>|<\|[a-z_]+>|<[a-z_]+\|>| ?\w+|\s+|.", re.DOTALL)


def split_pieces(text: str) -> list[str]:
    """Token pieces of `text`; joined they give `text` back."""
    return _PIECES.findall(text)


@dataclass(frozen=True)
class Turn:
    """One scripted model turn. `drafter_text` makes the drafter run differ (for divergence tests)."""

    text: str
    drafter_text: str | None = None


Script = str | Turn | Exception | Callable[[Sequence[Message]], "str | Turn"]


@dataclass
class Call:
    """What one generate/compare call asked for."""

    kind: Literal["generate", "compare"]
    messages: list[Message]
    tools: list[ToolSpec] | None
    settings: GenerationSettings
    use_drafter: bool | None


class ScriptedModel:
    """Replays `turns` in order; an Exception in the script is raised at that call."""

    model_id = "scripted/target"
    drafter_id: str | None = "scripted/drafter"

    def __init__(self, turns: Sequence[Script], *, repeat_last: bool = False, token_s: float = 0.02,
                 accept_pattern: Sequence[int] = (3, 1, 4, 0, 2), stop_after_pieces: int | None = None,
                 reports_rejections: bool = True) -> None:
        self.turns, self.repeat_last = list(turns), repeat_last
        self.token_s = token_s  # simulated target time per forward pass
        self.accept_pattern = tuple(accept_pattern)  # accepted drafts per verification round, cycled
        self.stop_after_pieces = stop_after_pieces
        self.reports_rejections = reports_rejections  # False: like an older engine, draft_rejected is None
        self.calls: list[Call] = []
        self._next = 0
        self._compares = 0

    # ---- protocol.ChatModel ----

    def generate(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None, *, use_drafter: bool,
                 settings: GenerationSettings = GenerationSettings(), on_text: TextCallback | None = None,
                 should_stop: StopCheck | None = None) -> GenerationResult:
        self._record("generate", messages, tools, settings, use_drafter)
        turn = self._take(messages)
        text = turn.drafter_text if use_drafter and turn.drafter_text is not None else turn.text
        return self._result(text, messages, settings, use_drafter, on_text, should_stop)

    def compare(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None, *,
                settings: GenerationSettings = GenerationSettings(), on_text: TextCallback | None = None,
                on_run: Callable[[Literal["baseline", "drafter"]], None] | None = None,
                should_stop: StopCheck | None = None) -> Comparison:
        self._record("compare", messages, tools, settings, None)
        turn = self._take(messages)
        order: tuple[Literal["baseline", "drafter"], ...] = (
            ("baseline", "drafter") if self._compares % 2 == 0 else ("drafter", "baseline"))
        self._compares += 1
        runs = {}
        for run in order:
            if on_run:
                on_run(run)
            use_drafter = run == "drafter"
            text = turn.drafter_text if use_drafter and turn.drafter_text is not None else turn.text
            runs[run] = self._result(text, messages, settings, use_drafter, on_text, should_stop)
        base, draft = runs["baseline"], runs["drafter"]
        return Comparison(baseline=base, drafter=draft, first_run=order[0],
                          first_divergence=first_divergence(base.token_ids, draft.token_ids))

    def describe(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "drafter_id": self.drafter_id, "device": "none (scripted)"}

    def close(self) -> None:
        pass

    # ---- internals ----

    def _record(self, kind, messages, tools, settings, use_drafter) -> None:
        self.calls.append(Call(kind, copy.deepcopy(list(messages)), copy.deepcopy(list(tools)) if tools else None,
                               settings, use_drafter))

    def _take(self, messages: Sequence[Message]) -> Turn:
        if self._next >= len(self.turns):
            if not (self.repeat_last and self.turns):
                raise ModelError(f"ScriptedModel ran out of turns after {len(self.turns)} calls; "
                                 "script more turns or pass repeat_last=True.")
            self._next = len(self.turns) - 1
        item = self.turns[self._next]
        self._next += 1
        if isinstance(item, Exception):
            raise item
        if callable(item):
            item = item(messages)
        return Turn(item) if isinstance(item, str) else item

    def _result(self, text: str, messages: Sequence[Message], settings: GenerationSettings, use_drafter: bool,
                on_text: TextCallback | None, should_stop: StopCheck | None) -> GenerationResult:
        pieces = split_pieces(text)[: settings.max_new_tokens]
        stop_reason = "eos" if len(pieces) == len(split_pieces(text)) else "max_new_tokens"
        kept: list[str] = []
        for piece in pieces:
            if (should_stop and should_stop()) or (
                    self.stop_after_pieces is not None and len(kept) >= self.stop_after_pieces):
                stop_reason = "stopped"
                break
            kept.append(piece)
            if on_text:
                on_text(piece)
        ids = tuple(_piece_id(p) for p in kept)
        prompt_tokens = sum(len(split_pieces(str(m.get("content") or ""))) for m in messages) + 4 * len(messages)
        prefill_s = 0.001 * prompt_tokens + self.token_s
        if not use_drafter:
            stats = GenerationStats(False, prompt_tokens, len(kept), prefill_s, self.token_s * len(kept),
                                    prefill_s + self.token_s * len(kept), None)
            return GenerationResult("".join(kept), ids, tuple(kept), stop_reason, stats, None)
        provenance, rejected, drafter = self._drafter_run(len(kept), settings.draft_tokens)
        decode_s = drafter.draft_s + drafter.verify_s
        stats = GenerationStats(True, prompt_tokens, len(kept), prefill_s, decode_s, prefill_s + decode_s, None,
                                drafter)
        return GenerationResult("".join(kept), ids, tuple(kept), stop_reason, stats, provenance,
                                rejected if self.reports_rejections else None)

    def _drafter_run(self, n_tokens: int, k: int) -> tuple[tuple[bool, ...], tuple[bool, ...], DrafterStats]:
        """Provenance, draft_rejected and stats of speculative decoding over n tokens: the first token comes
        from the prefill (no draft); then each round accepts some drafts (from accept_pattern, at most k) and
        adds one target token, which replaced a rejected draft unless all k were accepted (a bonus token)."""
        provenance, rejected = [False], [False]
        accepted_at = [0] * k
        rounds = 0
        while len(provenance) < n_tokens:
            accepted = min(self.accept_pattern[rounds % len(self.accept_pattern)], k, n_tokens - len(provenance))
            for i in range(accepted):
                accepted_at[i] += 1
            provenance += [True] * accepted
            rejected += [False] * accepted
            if len(provenance) < n_tokens:
                provenance.append(False)
                rejected.append(accepted < k)
            rounds += 1
        provenance, rejected = provenance[:n_tokens], rejected[:n_tokens]
        drafter = DrafterStats(
            draft_tokens=k, rounds=rounds, drafted_tokens=rounds * k, accepted_tokens=sum(provenance),
            accepted_by_position=tuple(a / rounds if rounds else 0.0 for a in accepted_at),
            draft_s=rounds * k * self.token_s / 10, verify_s=rounds * self.token_s * 1.1)
        return tuple(provenance), tuple(rejected), drafter


def _piece_id(piece: str) -> int:
    """A stable fake token id (same piece, same id)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(piece)) % 262144
