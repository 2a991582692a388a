"""What one generation did: rounds, drafts, timings, streamed text, and the full-acceptance switch.

Both decoders report rounds as `Round`s. Our loop makes them itself; for Transformers' assisted generation a
streamer (`RoundRecorder`) gets `put()` once per target forward pass with the tokens that pass produced (the
very first call is the prompt), and forward hooks (`ForwardTimer`) time the two models. Timing marks are
CUDA events on a GPU (no host sync inside the loop, read once at the end) and the host clock on a CPU.
No agents, no Gradio.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

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
    accepted: int  # drafter tokens among `tokens`: its first `accepted` (a drafted stop token counts)
    tokens: tuple[int, ...]
    at_s: float  # host clock when its tokens reached the host (after the device produced them)
    rejected: bool = False  # the token after the accepted drafts is the target's own, replacing a rejected draft


class TextStream:
    """Decoded text deltas for a callback as tokens arrive; holds back a character whose bytes are incomplete."""

    def __init__(self, decode: Callable[[list[int]], str], on_text: Callable[[str], None] | None) -> None:
        self._decode, self._on_text, self._pending = decode, on_text, []

    def put(self, ids: list[int]) -> None:
        if self._on_text is None or not ids:
            return
        self._pending.extend(ids)
        text = self._decode(self._pending)
        if text and not text.endswith("\ufffd"):
            self._pending = []
            self._on_text(text)

    def end(self) -> None:
        if self._on_text is not None and self._pending:
            self._on_text(self._decode(self._pending))
            self._pending = []


def leading_matches(tokens: Sequence[int], drafts: Sequence[int]) -> int:
    """How many of a round's first tokens are its drafts: the accepted ones (a drafted stop token included)."""
    n = 0
    while n < min(len(tokens), len(drafts)) and tokens[n] == drafts[n]:
        n += 1
    return n


class RoundRecorder:
    """A Transformers streamer that records each target pass's tokens and hands them on as they arrive.

    `take_drafts` returns the tokens the drafter proposed before the pass whose tokens are being put (and
    forgets them). A round's accepted drafts are its leading tokens equal to those drafts: Transformers cuts a
    round at a stop token or at max_new_tokens and counts only the tokens before the cut as matches, so a
    drafted and accepted last token would otherwise pass for the target's own. Tokens after a stop token
    are generation overrun and are dropped.
    """

    def __init__(self, stop_ids: tuple[int, ...], *, on_tokens: Callable[[list[int]], None] | None = None,
                 take_drafts: Callable[[], list[int]] = lambda: []) -> None:
        self.rounds: list[Round] = []
        self._stop_ids, self._take_drafts = set(stop_ids), take_drafts
        self._on_tokens = on_tokens or (lambda tokens: None)
        self._seen_prompt, self.stopped_at_stop_token = False, False

    def put(self, value: torch.Tensor) -> None:
        ids = value.reshape(-1).tolist()  # .tolist() waits for the device: the tokens exist now
        now = time.perf_counter()
        if not self._seen_prompt:
            self._seen_prompt = True
            return
        drafts = self._take_drafts()
        if self.stopped_at_stop_token:
            return
        kept = []
        for token in ids:
            kept.append(token)
            if token in self._stop_ids:
                self.stopped_at_stop_token = True
                break
        accepted = leading_matches(kept, drafts)
        rejected = accepted < len(drafts) and len(kept) > accepted
        self.rounds.append(Round(len(drafts), accepted, tuple(kept), now, rejected))
        self._on_tokens(kept)

    def end(self) -> None:
        pass

    @property
    def token_ids(self) -> list[int]:
        return [t for r in self.rounds for t in r.tokens]


def accepted_by_position(drafted: list[int], accepted: list[int], k: int) -> tuple[float, ...]:
    """P(draft position i accepted | drafted) for i < k, over rounds that drafted anything."""
    rates = []
    for i in range(k):
        tried = sum(1 for d in drafted if d > i)
        kept = sum(1 for d, a in zip(drafted, accepted) if d > i and a > i)
        rates.append(kept / tried if tried else 0.0)
    return tuple(rates)


@contextlib.contextmanager
def drafter_always_accepted(engine):
    """Every draft is accepted while inside: for timing rounds at full acceptance, never for real output.

    Our loop keeps every draft on the device at the cost of the real acceptance rule; the reference engine
    zeroes both models' final norms (every argmax is token 0) and points an E2B-style drafter's clusters at
    token 0 so its centroid head can draft it. Check the outcome with `check_all_accepted`.
    """
    engine.decoder.force_acceptance = True
    try:
        yield
    finally:
        engine.decoder.force_acceptance = False


def check_all_accepted(result) -> None:
    """Raise if a generation run under `drafter_always_accepted` did not accept every draft."""
    stats = result.stats.drafter
    if stats is None or stats.drafted_tokens == 0 or stats.accepted_tokens != stats.drafted_tokens:
        got = "no drafter stats" if stats is None else f"{stats.accepted_tokens} of {stats.drafted_tokens}"
        raise RuntimeError(f"forcing full acceptance did not work: {got} drafts accepted")


class SyncCounter:
    """Counts host-device synchronizations while active (see `counting_host_syncs`)."""

    def __init__(self) -> None:
        self.count = 0


@contextlib.contextmanager
def counting_host_syncs(device: torch.device):
    """Count the host syncs of the code inside.

    On CUDA, PyTorch's sync debug mode reports every synchronizing op (`.item()`, `.tolist()`, `nonzero()`,
    blocking copies, ...) as a warning, which is counted. On a CPU nothing synchronizes, so the calls that
    would (reading a tensor's values into Python) are counted instead, by patching them on `torch.Tensor`.
    """
    counter = SyncCounter()
    if device.type == "cuda":
        import warnings

        previous = torch.cuda.get_sync_debug_mode()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                yield counter
            finally:
                torch.cuda.set_sync_debug_mode(previous)
                counter.count = sum("synchroniz" in str(w.message) for w in caught)
        return
    names = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "numpy")
    originals = {name: getattr(torch.Tensor, name) for name in names}

    def counting(original):
        def call(self, *args, **kwargs):
            counter.count += 1
            return original(self, *args, **kwargs)
        return call

    for name, original in originals.items():
        setattr(torch.Tensor, name, counting(original))
    try:
        yield counter
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
