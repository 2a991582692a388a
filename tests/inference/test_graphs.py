"""CUDA-graph bookkeeping, on a CPU: static buffers, self-check, fallback with a reason. Real capture: `gpu` test.

`ReplayBackend` stands in for torch.cuda.CUDAGraph with the same contract the loop relies on: a step's
outputs are static buffers that every replay overwrites in place. A loop that kept a reference to an output
across replays (instead of consuming or cloning it) would produce different drafts than eager decoding, so
equality with eager at partial acceptance is the check.
"""

from __future__ import annotations

import pytest
import torch

from inference.engine import Engine
from protocol import GenerationSettings
from tests.inference.oracle import PartialDrafter, plain_head_drafter

TASK = [{"role": "user", "content": "Write a function that adds two numbers, with tests."}]


class ReplayBackend:
    """Capture runs the step once into static outputs; replay reruns it and copies into those same buffers."""

    def __init__(self, *, fail: str | None = None, perturb: bool = False) -> None:
        self.fail, self.perturb, self.keys = fail, perturb, 0

    def capture(self, step, inputs):
        if self.fail:
            raise RuntimeError(self.fail)
        self.keys += 1
        outputs = tuple(o.clone() for o in step(*inputs))

        def replay():
            for static, new in zip(outputs, step(*inputs)):
                if self.perturb and static.is_floating_point() and static.dim() == 2:  # a verify pass's scores
                    new = new.flip(-1)
                static.copy_(new)
        return replay, outputs


def engine_pair(tiny_engine, drafter, backend):
    eager = Engine(tiny_engine.target, drafter, tiny_engine.tokenizer, model_id="tiny", drafter_id="d")
    graphed = Engine(tiny_engine.target, drafter, tiny_engine.tokenizer, model_id="tiny", drafter_id="d")
    graphed.enable_graphs(backend)
    return eager, graphed


@pytest.fixture(scope="module")
def plain(tiny_engine):
    return plain_head_drafter(tiny_engine.drafter)


def test_graphed_loop_equals_eager_at_partial_acceptance_greedy_and_sampled(tiny_engine, plain):
    backend = ReplayBackend()
    eager, graphed = engine_pair(tiny_engine, plain, backend)
    assert graphed.describe()["decode"] == "cuda-graphs" and graphed.describe()["fallback_reason"] is None
    for settings in (GenerationSettings(max_new_tokens=20, draft_tokens=4),
                     GenerationSettings(max_new_tokens=20, draft_tokens=4, temperature=0.02, seed=3)):
        prompt_tokens = eager.render(TASK, None, settings).shape[-1]
        results = []
        for engine in (eager, graphed):
            with PartialDrafter(engine.target, engine.drafter, prompt_tokens=prompt_tokens, rate=0.3):
                results.append(engine.generate(TASK, use_drafter=True, settings=settings))
        a, b = results
        assert a.token_ids == b.token_ids and a.provenance == b.provenance
        assert a.stats.drafter.accepted_tokens == b.stats.drafter.accepted_tokens > 0
    assert set(graphed.decoder.graphs.runners) >= {("target", 1), ("target", 5), ("draft", "greedy"), ("draft", "sampled")}


def test_plain_decoding_under_graphs_equals_eager(tiny_engine):
    eager, graphed = engine_pair(tiny_engine, tiny_engine.drafter, ReplayBackend())
    settings = GenerationSettings(max_new_tokens=20)
    assert graphed.generate(TASK, use_drafter=False, settings=settings).token_ids == \
        eager.generate(TASK, use_drafter=False, settings=settings).token_ids


def test_a_capture_failure_falls_back_to_eager_and_says_why(tiny_engine, caplog):
    eager, graphed = engine_pair(tiny_engine, tiny_engine.drafter,
                                 ReplayBackend(fail="operation not permitted when stream is capturing"))
    info = graphed.describe()
    assert info["decode"] == "eager" and "operation not permitted" in info["fallback_reason"]
    assert "CUDA graphs off" in caplog.text
    settings = GenerationSettings(max_new_tokens=12, draft_tokens=3)
    assert graphed.generate(TASK, use_drafter=True, settings=settings).token_ids == \
        eager.generate(TASK, use_drafter=True, settings=settings).token_ids


def test_graphs_that_disagree_with_eager_are_refused_at_start_up(tiny_engine):
    _, graphed = engine_pair(tiny_engine, tiny_engine.drafter, ReplayBackend(perturb=True))
    info = graphed.describe()
    assert info["decode"] == "eager" and "differed from eager" in info["fallback_reason"]
    assert graphed.decoder.graphs is None and graphed.decoder.bucket_cache is False


def test_graphs_off_on_request_or_without_a_gpu(tiny_engine):
    off = Engine(tiny_engine.target, None, tiny_engine.tokenizer, model_id="t", drafter_id=None, cuda_graphs=False)
    assert off.describe()["decode"] == "eager" and "cuda_graphs=False" in off.describe()["fallback_reason"]
    if not torch.cuda.is_available():
        assert "no GPU" in tiny_engine.describe()["fallback_reason"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_real_cuda_graphs_capture_and_match_eager():
    from inference import load_engine

    graphed = load_engine("tiny", device="cuda", dtype="fp32")
    eager = load_engine("tiny", device="cuda", dtype="fp32", cuda_graphs=False)
    assert graphed.describe()["decode"] == "cuda-graphs", graphed.describe()["fallback_reason"]
    for use_drafter in (False, True):
        settings = GenerationSettings(max_new_tokens=40, draft_tokens=6)
        assert graphed.generate(TASK, use_drafter=use_drafter, settings=settings).token_ids == \
            eager.generate(TASK, use_drafter=use_drafter, settings=settings).token_ids
