"""CUDA graphs for the decode loop's fixed-shape steps, with a self-check against eager and a fallback.

A `GraphSet` captures a step (the target's 1-token decode, its (k+1)-token verify, a drafter step) the first
time it is asked for, over static copies of the step's inputs, and replays it afterwards: one launch for the
whole step instead of thousands of kernel launches from Python. A step's outputs are static buffers that the
next replay of the same step overwrites; the loop consumes them before that. Capture failures switch the
set off and record why (`fallback_reason`), so the loop carries on eagerly.

The capture mechanism is a small backend (`CudaGraphBackend` on a GPU) so that the bookkeeping here (static
inputs, replay, fallback, self-check) is tested on a CPU with a stand-in backend. Knows nothing of models.
"""

from __future__ import annotations

import logging
from typing import Callable, Hashable, Sequence

import torch

log = logging.getLogger(__name__)
Step = Callable[..., tuple[torch.Tensor, ...]]


class CudaGraphBackend:
    """torch.cuda.CUDAGraph capture: warm up on a side stream, then record one run.

    Each graph gets a private memory pool: the loop replays its steps in no fixed order (draft, draft, verify,
    draft...), and graphs sharing a pool are only safe replayed in capture order. A step's activations are
    small next to the weights (a few tokens), so the memory cost is too.
    """

    def capture(self, step: Step, inputs: Sequence[torch.Tensor]) -> tuple[Callable[[], None], tuple[torch.Tensor, ...]]:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):  # cuBLAS handles, allocator blocks, lazy inits: outside the graph
                step(*inputs)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = step(*inputs)
        return graph.replay, tuple(outputs)


class GraphRunner:
    """One captured step: copy new inputs into its static inputs, replay, return its static outputs."""

    def __init__(self, backend, step: Step, inputs: Sequence[torch.Tensor]) -> None:
        self.inputs = tuple(x.clone() for x in inputs)
        self.replay, self.outputs = backend.capture(step, self.inputs)

    def __call__(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for static, new in zip(self.inputs, inputs):
            if static.data_ptr() != new.data_ptr():
                static.copy_(new)
        self.replay()
        return self.outputs


class GraphSet:
    """The captured steps of one loop for one KV cache; off (and saying why) after any capture failure."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.runners: dict[Hashable, GraphRunner] = {}
        self.fallback_reason: str | None = None
        self.allowed: set[Hashable] | None = None  # keys that may be captured; None: any

    @property
    def active(self) -> bool:
        return self.fallback_reason is None

    def run(self, key: Hashable, step: Step, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The step's outputs, from its graph when one is (or can now be) captured, else from running it."""
        runner = self.runners.get(key)
        if runner is None and self.active and (self.allowed is None or key in self.allowed):
            try:
                runner = self.runners[key] = GraphRunner(self.backend, step, inputs)
            except Exception as e:  # noqa: BLE001 - any capture failure means: run eagerly, say why
                self.disable(f"capture of {key} failed: {type(e).__name__}: {e}")
        if runner is None:
            return step(*inputs)
        return runner(*inputs)

    def disable(self, reason: str) -> None:
        log.warning("CUDA graphs off, decoding eagerly: %s", reason)
        self.fallback_reason = reason
        self.runners.clear()

    def clear(self) -> None:
        """Forget the captured steps (their KV cache is gone); they are captured again on next use."""
        self.runners.clear()


def enable_graphs(loop, backend, *, k: int, check_tokens: int = 16) -> str | None:
    """Give `loop` CUDA graphs of its steps, checked against eager; return why not, or None when in use.

    The self-check generates greedily from a fixed prompt with and without the drafter, first eagerly and then
    under graphs, on the same cache; any capture failure or any differing token turns graphs off.
    """
    from inference.sampling import Sampling

    prompt = torch.arange(1000, 1032, device=loop.device)[None]
    modes = (False, True) if loop.drafter is not None else (False,)
    loop.bucket_cache = True  # graphs bind to buffers: size caches in buckets (eager and graphed alike)

    def tokens(use_drafter: bool) -> list[int]:
        run = loop.generate(prompt, max_new_tokens=check_tokens, k=k, use_drafter=use_drafter, sampling=Sampling())
        return [t for r in run.rounds for t in r.tokens]

    try:
        with torch.inference_mode():
            eager = {mode: tokens(mode) for mode in modes}
            loop.graphs = GraphSet(backend)
            loop.graphs.allowed = {("target", 1), ("target", k + 1), ("draft", "greedy"), ("draft", "sampled")}
            graphed = {mode: tokens(mode) for mode in modes}
    except Exception as e:  # noqa: BLE001 - whatever broke, decode eagerly and say why
        reason = f"self-check failed: {type(e).__name__}: {e}"
    else:
        reason = loop.graphs.fallback_reason
        for mode in modes:
            if reason is None and graphed[mode] != eager[mode]:
                i = next(i for i, (a, b) in enumerate(zip(eager[mode], graphed[mode])) if a != b)
                reason = (f"graph output differed from eager {'with' if mode else 'without'} the drafter at token "
                          f"{i} ({eager[mode][i]} vs {graphed[mode][i]})")
    if reason is not None:
        log.warning("CUDA graphs off, decoding eagerly: %s", reason)
        loop.graphs = None
        loop.bucket_cache = False
        loop.kv = None
        return reason
    loop.graphs.allowed = None  # any k a request asks for: its verify pass is captured on first use
    return None
