"""Our decode loop (engine "fast") against the oracle: token-identical greedy output, one host sync per round.

Greedy output with the drafter must equal Transformers' generate() and the target alone, token for token,
in fp32: past the sliding window, with the KV ring of sliding layers wrapping around, with tools and
thinking, at every acceptance level (drafts from the right continuation, corrupted at a fixed rate).
"""

from __future__ import annotations

import pytest
import torch

from inference.engine import Engine
from inference.loop import DecodeLoop
from inference.measure import counting_host_syncs
from protocol import GenerationSettings, InputError
from tests.inference.oracle import PartialDrafter, plain_head_drafter

TOOLS = [{"type": "function", "function": {"name": "run_python", "description": "Run Python code.",
                                           "parameters": {"type": "object", "properties": {"code": {"type": "string"}},
                                                          "required": ["code"]}}}]
TASK = [{"role": "system", "content": "You are a careful engineer."},
        {"role": "user", "content": "Write a function that adds two numbers, then test it with the tool."}]
LONG = 72  # new tokens: with the prompt, well past the tiny pair's sliding window of 32


@pytest.fixture(scope="module")
def plain(tiny_engine):
    """The tiny target with a plain-head drafter, on both engines (shared weights)."""
    drafter = plain_head_drafter(tiny_engine.drafter)
    return {kind: Engine(tiny_engine.target, drafter, tiny_engine.tokenizer, model_id="tiny", drafter_id="plain",
                         engine=kind) for kind in ("fast", "transformers")}


@pytest.fixture(scope="module")
def reference(tiny_reference):
    """Target-alone greedy output through Transformers, per (tools, thinking)."""
    cache = {}

    def get(tools, thinking):
        if (tools, thinking) not in cache:
            settings = GenerationSettings(max_new_tokens=LONG, enable_thinking=thinking)
            cache[tools, thinking] = tiny_reference.generate(TASK, TOOLS if tools else None, use_drafter=False,
                                                             settings=settings).token_ids
        return cache[tools, thinking]
    return get


@pytest.mark.parametrize("k, rate, tools, thinking", [
    (1, 0.3, True, False), (3, 0.0, False, True), (6, 0.3, True, True), (10, 0.6, False, False), (6, 1.0, True, False),
])
def test_greedy_output_equals_the_target_alone_at_every_acceptance_level(plain, reference, k, rate, tools, thinking):
    settings = GenerationSettings(max_new_tokens=LONG, draft_tokens=k, enable_thinking=thinking)
    expected = reference(tools, thinking)
    engine = plain["fast"]
    prompt_tokens = engine.render(TASK, TOOLS if tools else None, settings).shape[-1]
    assert prompt_tokens + LONG > 3 * 32  # well past the sliding window
    with PartialDrafter(engine.target, engine.drafter, prompt_tokens=prompt_tokens, rate=rate, reference=expected):
        result = engine.generate(TASK, TOOLS if tools else None, use_drafter=True, settings=settings)
    assert result.token_ids == expected
    stats = result.stats.drafter
    if rate == 0.0:
        assert stats.accepted_tokens == stats.drafted_tokens > 0
    elif rate == 1.0:
        assert stats.accepted_tokens == 0
    else:
        assert 0 < stats.accepted_tokens < stats.drafted_tokens


@pytest.mark.parametrize("k", [1, 3, 6, 10])
def test_centroid_drafter_loop_equals_transformers_with_and_without_drafter(tiny_engine, tiny_reference, reference, k):
    settings = GenerationSettings(max_new_tokens=40, draft_tokens=k)  # the prompt alone passes the window
    ours = tiny_engine.generate(TASK, TOOLS, use_drafter=True, settings=settings)
    theirs = tiny_reference.generate(TASK, TOOLS, use_drafter=True, settings=settings)
    assert ours.token_ids == theirs.token_ids == reference(True, False)[:40]
    # Same rounds and drafts too: with this random drafter both engines reject every draft.
    assert ours.stats.drafter.rounds == theirs.stats.drafter.rounds
    assert ours.stats.drafter.drafted_tokens == theirs.stats.drafter.drafted_tokens


def test_sliding_layers_ring_wraps_around_and_output_stays_identical(tiny_engine, reference):
    """Prompt chunks of 8 tokens make the sliding layers' ring (window 32 + 33 slots) smaller than the request."""
    engine = Engine(tiny_engine.target, tiny_engine.drafter, tiny_engine.tokenizer, model_id="tiny", drafter_id="tiny")
    engine.decoder = DecodeLoop(engine.target, engine.drafter, stop_ids=engine.stop_ids, prefill_chunk=8)
    for use_drafter in (False, True):
        result = engine.generate(TASK, TOOLS, use_drafter=use_drafter,
                                 settings=GenerationSettings(max_new_tokens=LONG, draft_tokens=3))
        assert result.token_ids == reference(True, False)
    kv = engine.decoder.kv
    assert kv.ring < kv.max_len - kv.ring  # the ring wrapped more than once


@pytest.mark.parametrize("use_drafter", [False, True])
def test_one_host_sync_per_round(tiny_engine, use_drafter):
    settings = GenerationSettings(max_new_tokens=20, draft_tokens=4)
    prompt = tiny_engine.render(TASK, None, settings)
    with torch.inference_mode(), counting_host_syncs(prompt.device) as syncs:
        run = tiny_engine.decoder.generate(prompt, max_new_tokens=20, k=4, use_drafter=use_drafter,
                                           sampling=tiny_engine.sampling(settings))
    assert syncs.count == run.host_syncs == len(run.rounds)  # the prefill's first token, then one per round
    sampled = GenerationSettings(max_new_tokens=20, draft_tokens=4, temperature=0.9)
    with torch.inference_mode(), counting_host_syncs(prompt.device) as syncs:
        run = tiny_engine.decoder.generate(prompt, max_new_tokens=20, k=4, use_drafter=use_drafter,
                                           sampling=tiny_engine.sampling(sampled))
    assert syncs.count == len(run.rounds)


def test_sync_counter_counts_what_reads_a_tensor_on_the_host():
    x = torch.arange(3)
    with counting_host_syncs(x.device) as syncs:
        x.tolist(), x[0].item(), bool(x[1]), int(x[2]), x[:1] + 1
    assert syncs.count == 4


@pytest.mark.parametrize("kind", ["fast", "transformers"])
def test_stop_is_polled_between_rounds(plain, kind):
    engine = plain[kind]
    polls = []

    def stop():
        polls.append(1)
        return len(polls) >= 3  # false before round 1 and round 2, true after round 2

    full = engine.generate(TASK, use_drafter=True, settings=GenerationSettings(max_new_tokens=30, draft_tokens=3))
    cut = engine.generate(TASK, use_drafter=True, settings=GenerationSettings(max_new_tokens=30, draft_tokens=3),
                          should_stop=stop)
    assert cut.stop_reason == "stopped" and cut.stats.drafter.rounds == 2
    assert cut.token_ids == full.token_ids[: len(cut.token_ids)]


def test_prompt_longer_than_max_prompt_tokens_is_refused_before_any_model_call(tiny_engine):
    engine = Engine(tiny_engine.target, tiny_engine.drafter, tiny_engine.tokenizer, model_id="tiny", drafter_id="tiny",
                    max_prompt_tokens=16)
    calls = []
    handle = engine.target.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(InputError, match="at most 16 prompt tokens"):
            engine.generate(TASK, use_drafter=True)
    finally:
        handle.remove()
    assert calls == []
    assert engine.describe()["max_prompt_tokens"] == 16


def test_default_max_prompt_tokens_is_8192_or_the_context(tiny_engine):
    assert tiny_engine.max_prompt_tokens == 8192
    small = Engine(tiny_engine.target, None, tiny_engine.tokenizer, model_id="tiny", drafter_id=None, context_tokens=2048)
    assert small.max_prompt_tokens == 2048


def test_describe_names_the_engine_and_how_it_decodes(tiny_engine, tiny_reference):
    fast, ref = tiny_engine.describe(), tiny_reference.describe()
    assert (fast["engine"], fast["decode"]) == ("fast", "eager") and "no GPU" in fast["fallback_reason"]
    assert (ref["engine"], ref["decode"], ref["fallback_reason"]) == ("transformers", "eager", None)
