"""Both engines on the tiny pair (CPU, fp32): the drafter never changes greedy output, and the stats add up."""

from __future__ import annotations

import pytest
import torch

from protocol import GenerationSettings, InputError, ModelError
from inference.measure import check_all_accepted, drafter_always_accepted

TASK = [{"role": "system", "content": "You are a helpful expert software architect."},
        {"role": "user", "content": "Write a function that adds two numbers, with tests."}]
TOOLS = [{"type": "function", "function": {"name": "run_python", "description": "Run Python code.",
                                           "parameters": {"type": "object", "properties": {"code": {"type": "string"}},
                                                          "required": ["code"]}}}]


def settings(**kw) -> GenerationSettings:
    return GenerationSettings(**{"max_new_tokens": 24, "draft_tokens": 4, **kw})


@pytest.mark.parametrize("k", [1, 3, 6])
@pytest.mark.parametrize("tools", [None, TOOLS])
def test_drafter_does_not_change_greedy_output(engine, k, tools):
    comparison = engine.compare(TASK, tools, settings=settings(draft_tokens=k))
    assert comparison.identical, f"diverged at token {comparison.first_divergence}"
    assert comparison.drafter.text == comparison.baseline.text
    assert comparison.drafter.stats.drafter.drafted_tokens > 0


def check_stats_add_up(result, k):
    stats, drafter = result.stats, result.stats.drafter
    assert stats.used_drafter and drafter.draft_tokens == k
    assert 0 <= drafter.accepted_tokens <= drafter.drafted_tokens <= drafter.rounds * k
    # The prefill pass yields one token; every verification round yields its accepted drafts + 1 of its own.
    assert stats.new_tokens == len(result.token_ids) == 1 + drafter.accepted_tokens + drafter.rounds
    assert len(result.provenance) == len(result.draft_rejected) == stats.new_tokens
    assert sum(result.provenance) == drafter.accepted_tokens
    assert not any(p and r for p, r in zip(result.provenance, result.draft_rejected))
    assert result.provenance[0] is False and result.draft_rejected[0] is False  # the prefill's token: no draft
    assert len(drafter.accepted_by_position) == k
    assert drafter.draft_s > 0 and drafter.verify_s > 0
    assert drafter.draft_s + drafter.verify_s <= stats.wall_s
    assert stats.prefill_s > 0 and stats.decode_s > 0
    assert stats.wall_s == pytest.approx(stats.prefill_s + stats.decode_s)
    assert stats.peak_mem_bytes is None  # CPU


def test_stats_add_up_when_drafts_are_rejected(engine):
    result = engine.generate(TASK, use_drafter=True, settings=settings())
    check_stats_add_up(result, 4)
    assert result.stats.drafter.accepted_tokens == 0  # random weights: the two models never agree
    assert result.stats.drafter.rounds == result.stats.new_tokens - 1
    # Every token after the first replaced a rejected draft, except the last: max_new_tokens left no room to draft.
    assert result.draft_rejected == (False,) + (True,) * (result.stats.new_tokens - 2) + (False,)


def test_stats_add_up_when_every_draft_is_accepted(engine):
    with drafter_always_accepted(engine):
        result = engine.generate(TASK, use_drafter=True, settings=settings(max_new_tokens=31))
    drafter = result.stats.drafter
    check_all_accepted(result)
    check_stats_add_up(result, 4)
    assert drafter.acceptance_rate == 1.0 and drafter.accepted_by_position == (1.0,) * 4
    assert drafter.rounds == 6  # 1 + 6 * (4 + 1) = 31 tokens
    assert drafter.mean_accepted_length == 4.0
    assert result.provenance == (False,) + (True, True, True, True, False) * 6
    assert not any(result.draft_rejected)


@pytest.mark.parametrize("k", [2, 5])
def test_draft_length_k_takes_effect(engine, k):
    with drafter_always_accepted(engine):
        result = engine.generate(TASK, use_drafter=True, settings=settings(draft_tokens=k, max_new_tokens=1 + 3 * (k + 1)))
    drafter = result.stats.drafter
    assert drafter.rounds == 3 and drafter.drafted_tokens == 3 * k and drafter.draft_tokens == k


@pytest.mark.parametrize("use_drafter", [False, True])
def test_streamed_text_equals_final_text(engine, use_drafter):
    chunks: list[str] = []
    result = engine.generate(TASK, use_drafter=use_drafter, settings=settings(), on_text=chunks.append)
    assert len(chunks) > 1
    assert "".join(chunks) == result.text


def test_baseline_has_no_drafter_stats(engine):
    result = engine.generate(TASK, use_drafter=False, settings=settings())
    assert result.stats.drafter is None and result.provenance is None
    assert result.stats.new_tokens == 24 and result.stop_reason == "max_new_tokens"


def test_compare_alternates_which_side_runs_first(tiny_engine):
    runs: list[str] = []
    firsts = [tiny_engine.compare(TASK, settings=settings(max_new_tokens=4), on_run=runs.append).first_run
              for _ in range(2)]
    assert set(firsts) == {"baseline", "drafter"}
    assert runs[:2] == [firsts[0], "drafter" if firsts[0] == "baseline" else "baseline"]


def test_sampling_with_a_seed_repeats_with_the_drafter(engine):
    sampled = settings(temperature=0.8, top_p=0.9, seed=7)
    a = engine.generate(TASK, use_drafter=True, settings=sampled)
    b = engine.generate(TASK, use_drafter=True, settings=sampled)
    greedy = engine.generate(TASK, use_drafter=True, settings=settings())
    assert a.token_ids == b.token_ids
    assert a.token_ids != greedy.token_ids


def test_stop_check_ends_generation_early(engine):
    seen: list[str] = []
    result = engine.generate(TASK, use_drafter=True, settings=settings(max_new_tokens=200),
                                  on_text=seen.append, should_stop=lambda: len(seen) >= 3)
    assert result.stop_reason == "stopped"
    assert result.stats.new_tokens < 20


def test_stop_token_ends_generation_and_leaves_the_text(engine):
    turn_end = 106  # <turn|>
    def force(module, args, out):
        out = out.clone()
        out[..., turn_end] = 1e4
        return out
    handle = engine.target.lm_head.register_forward_hook(force)
    try:
        for use_drafter in (False, True):
            result = engine.generate(TASK, use_drafter=use_drafter, settings=settings())
            assert result.stop_reason == "eos"
            assert result.token_ids == (turn_end,) and result.text == ""
    finally:
        handle.remove()


@pytest.mark.parametrize("messages, message", [
    ([], "empty"),
    ([{"role": "user", "content": "   \n\t"}], "empty"),
    ([{"role": "system", "content": "hi"}, {"role": "user", "content": ""}], "empty"),
])
def test_bad_conversation_is_refused_before_any_model_call(engine, messages, message):
    calls = []
    handle = engine.target.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(InputError, match=message):
            engine.generate(messages, use_drafter=True)
    finally:
        handle.remove()
    assert calls == []


def test_prompt_beyond_context_is_refused(engine, monkeypatch):
    monkeypatch.setattr(engine, "context_tokens", 64)
    with pytest.raises(InputError, match="context of 64 tokens"):
        engine.generate([{"role": "user", "content": "word " * 80}], use_drafter=False, settings=settings())


def test_max_new_tokens_below_one_is_refused():
    with pytest.raises(InputError, match="max_new_tokens"):
        GenerationSettings(max_new_tokens=0)


def test_out_of_memory_is_reported_and_the_next_call_works(engine):
    def explode(*args):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    handle = engine.target.model.register_forward_pre_hook(explode)
    try:
        with pytest.raises(ModelError, match="Out of GPU memory"):
            engine.generate(TASK, use_drafter=True, settings=settings())
    finally:
        handle.remove()
    assert engine.generate(TASK, use_drafter=True, settings=settings()).stats.new_tokens == 24


def test_describe_names_models_and_versions(tiny_engine):
    info = tiny_engine.describe()
    assert info["target"].startswith("tiny") and info["drafter"].startswith("tiny")
    assert info["transformers"] == "5.22.2" and info["device"] == "cpu" and info["dtype"] == "float32"


class ProcessorLike:
    """What a real checkpoint ships: a multimodal processor holding the text tokenizer."""

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def apply_chat_template(self, *args, **kwargs):
        return self.tokenizer.apply_chat_template(*args, **kwargs)


def test_one_engine_serves_a_processor_or_a_bare_tokenizer(tiny_engine):
    from inference.engine import Engine

    via_processor = Engine(tiny_engine.target, tiny_engine.drafter, ProcessorLike(tiny_engine.tokenizer),
                           model_id="tiny", drafter_id="tiny")
    assert via_processor.tokenizer is tiny_engine.tokenizer
    a = via_processor.generate(TASK, use_drafter=True, settings=settings(max_new_tokens=8))
    b = tiny_engine.generate(TASK, use_drafter=True, settings=settings(max_new_tokens=8))
    assert a.token_ids == b.token_ids and a.text == b.text


def test_forced_acceptance_works_when_token_0_is_outside_the_drafters_top_clusters(tiny_engine):
    """The old switch (zeroed final norms) relied on token 0 landing in a cluster the centroid head picks."""
    import copy

    from inference.engine import Engine

    drafter = copy.deepcopy(tiny_engine.drafter)
    head = drafter.masked_embedding
    picked = set(torch.topk(torch.zeros(head.num_centroids), head.centroid_intermediate_top_k).indices.tolist())
    outside = next(c for c in range(head.num_centroids) if c not in picked)
    ordering = head.token_ordering
    where, slot = int((ordering == 0).nonzero()), outside * head.vocab_size_per_centroid
    ordering[where], ordering[slot] = ordering[slot].clone(), 0  # token 0 now sits in a cluster never picked
    for kind in ("transformers", "fast"):
        engine = Engine(tiny_engine.target, drafter, tiny_engine.tokenizer, model_id="tiny", drafter_id="tiny", engine=kind)
        with drafter_always_accepted(engine):
            result = engine.generate(TASK, use_drafter=True, settings=settings(max_new_tokens=11))
        check_all_accepted(result)
    assert int(head.token_ordering[slot]) == 0  # the ordering is restored afterwards
