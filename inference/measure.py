"""What one generation did, watched from outside Transformers: rounds, drafts, timings. No agents, no Gradio.

Transformers' assisted generation calls the streamer's `put()` once per target forward pass with the tokens
that pass produced (accepted draft tokens plus the target's own; the very first call is the prompt), so
rounds and acceptance are read without patching the library. Forward hooks on the two models time the
drafter steps and the target passes; on CUDA they record events (no host sync inside the loop) that are
read once at the end, on CPU they read the clock directly.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable

import torch


class Clock:
    """Marks on the device's timeline: CUDA events on a GPU, perf_counter elsewhere."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start, end) -> float:
        if self.cuda:
            return start.elapsed_time(end) / 1000.0  # events report milliseconds
        return end - start

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()


@dataclass
class ForwardTimer:
    """Times every forward call of one module through hooks; `calls` counts them as they happen."""

    clock: Clock
    spans: list = field(default_factory=list)  # (start mark, end mark) per call
    calls: int = 0
    _open: object = None
    _handles: list = field(default_factory=list)

    def attach(self, module: torch.nn.Module) -> "ForwardTimer":
        self._handles = [module.register_forward_pre_hook(self._pre), module.register_forward_hook(self._post)]
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _pre(self, *_):
        self.calls += 1
        self._open = self.clock.mark()

    def _post(self, *_):
        self.spans.append((self._open, self.clock.mark()))

    def seconds(self, first: int = 0) -> float:
        """Total time of the calls from index `first` on (after a device sync)."""
        self.clock.sync()
        return sum(self.clock.seconds(a, b) for a, b in self.spans[first:])


@dataclass(frozen=True)
class Round:
    """One target forward pass: `drafted` drafter tokens proposed before it, `tokens` it produced."""

    drafted: int
    accepted: int  # drafter tokens among `tokens` (the pass's full output is accepted drafts + 1 own)
    tokens: tuple[int, ...]
    at_s: float  # host clock when its tokens reached the streamer (after the device produced them)


class RoundRecorder:
    """A Transformers streamer that records each target pass's tokens and streams text as it arrives.

    `drafted_so_far` returns the drafter's call count, read at each `put()` to attribute drafts to rounds.
    `stop_ids` end the visible text: tokens after a stop token are generation overrun and are dropped.
    """

    def __init__(self, decode: Callable[[list[int]], str], stop_ids: tuple[int, ...], *,
                 on_text: Callable[[str], None] | None = None, drafted_so_far: Callable[[], int] = lambda: 0) -> None:
        self.rounds: list[Round] = []
        self._decode, self._stop_ids, self._on_text, self._drafted_so_far = decode, set(stop_ids), on_text, drafted_so_far
        self._seen_prompt, self._drafted_before, self._pending, self.stopped_at_stop_token = False, 0, [], False

    def put(self, value: torch.Tensor) -> None:
        ids = value.reshape(-1).tolist()  # .tolist() waits for the device: the tokens exist now
        now = time.perf_counter()
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        if self.stopped_at_stop_token:
            return
        drafted_total = self._drafted_so_far()
        drafted, self._drafted_before = drafted_total - self._drafted_before, drafted_total
        kept = []
        for token in ids:
            kept.append(token)
            if token in self._stop_ids:
                self.stopped_at_stop_token = True
                break
        accepted = min(drafted, len(ids) - 1, len(kept))
        self.rounds.append(Round(drafted, accepted, tuple(kept), now))
        self._stream([t for t in kept if t not in self._stop_ids])

    def _stream(self, ids: list[int]) -> None:
        if self._on_text is None:
            return
        self._pending.extend(ids)
        text = self._decode(self._pending)
        if text and not text.endswith("\ufffd"):  # hold back a character whose bytes are not all here yet
            self._pending = []
            self._on_text(text)

    def end(self) -> None:
        if self._on_text is not None and self._pending:
            self._on_text(self._decode(self._pending))
            self._pending = []

    # ---- what the rounds add up to ----

    @property
    def token_ids(self) -> list[int]:
        return [t for r in self.rounds for t in r.tokens]

    def provenance(self) -> list[bool]:
        """Per new token: True = a drafter token the target accepted, False = the target's own."""
        return [i < r.accepted for r in self.rounds for i in range(len(r.tokens))]


def accepted_by_position(drafted: list[int], accepted: list[int], k: int) -> tuple[float, ...]:
    """P(draft position i accepted | drafted) for i < k, over rounds that drafted anything."""
    rates = []
    for i in range(k):
        tried = sum(1 for d in drafted if d > i)
        kept = sum(1 for d, a in zip(drafted, accepted) if d > i and a > i)
        rates.append(kept / tried if tried else 0.0)
    return tuple(rates)


@contextlib.contextmanager
def drafter_always_accepted(target: torch.nn.Module, drafter: torch.nn.Module):
    """Zero both models' final-norm output: every argmax is token 0, so every draft is accepted.

    For timing a round at full acceptance and for testing acceptance statistics; never for real output.
    """
    handles = [m.model.norm.register_forward_hook(lambda module, args, out: out * 0) for m in (target, drafter)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
