"""Acceptance statistics at partial acceptance equal the ground truth, on both engines, greedy and sampled.

The drafter proposes the target's own next tokens, corrupted at a fixed rate (tests/inference/oracle.py), so
every accepted count from 0 to k occurs. Ground truth comes from what the drafter really proposed in each
round and from a pure simulation of the rounds greedy decoding must take. Covered: k in {1, 3, 6, 10},
max_new_tokens cutting the last round short, and a stop token mid-round that the drafter proposed and the
target accepted (it counts as drafted and accepted, not as the target's own).
"""

from __future__ import annotations

import pytest
import torch

from inference.engine import Engine
from inference.tiny import build_tiny_pair
from inference.tokenizer import build_tiny_tokenizer
from protocol import GenerationSettings
from tests.inference.oracle import STOP_TOKEN, PartialDrafter, expected_stats, plain_head_drafter, simulate_greedy

TASK = [{"role": "user", "content": "Write a function that adds two numbers, with tests."}]
RATE = 0.3
MAX_NEW = 22  # not 1 + a multiple of k + 1 for any k tried: the last round is cut short
STOP_AT = 9  # output index where the target emits <turn|>; drafted and kept under this corruption pattern


@pytest.fixture(scope="module")
def engines():
    target, drafter = build_tiny_pair()
    drafter = plain_head_drafter(drafter)
    tokenizer = build_tiny_tokenizer()
    return {kind: Engine(target, drafter, tokenizer, model_id="tiny", drafter_id="tiny-plain", engine=kind)
            for kind in ("fast", "transformers")}


def run(engine, settings, stop_at=None):
    prompt_tokens = engine.render(TASK, None, settings).shape[-1]
    with PartialDrafter(engine.target, engine.drafter, prompt_tokens=prompt_tokens, rate=RATE, stop_at=stop_at) as oracle:
        result = engine.generate(TASK, use_drafter=True, settings=settings)
    return result, expected_stats(oracle.rounds, result.token_ids, prompt_tokens)


def check(result, expected, k):
    stats = result.stats.drafter
    assert stats.rounds == expected.rounds
    assert stats.drafted_tokens == sum(expected.drafted)
    assert stats.accepted_tokens == sum(expected.accepted)
    assert result.provenance == expected.provenance
    assert result.draft_rejected == expected.draft_rejected
    tried = [sum(1 for d in expected.drafted if d > i) for i in range(k)]
    kept = [sum(1 for d, a in zip(expected.drafted, expected.accepted) if d > i and a > i) for i in range(k)]
    assert stats.accepted_by_position == tuple(a / t if t else 0.0 for a, t in zip(kept, tried))


def target_alone(engine, settings, stop_at=None):
    prompt_tokens = engine.render(TASK, None, settings).shape[-1]
    with PartialDrafter(engine.target, engine.drafter, prompt_tokens=prompt_tokens, rate=RATE, stop_at=stop_at):
        return engine.generate(TASK, use_drafter=False, settings=settings).token_ids


@pytest.mark.parametrize("stop_at", [None, STOP_AT], ids=["max-new-tokens", "stop-mid-round"])
@pytest.mark.parametrize("k", [1, 3, 6, 10])
def test_greedy_stats_equal_ground_truth_on_both_engines(engines, k, stop_at):
    settings = GenerationSettings(max_new_tokens=MAX_NEW, draft_tokens=k)
    reference = target_alone(engines["transformers"], settings, stop_at)
    simulated = simulate_greedy(reference, k=k, max_new_tokens=MAX_NEW, rate=RATE)
    for kind, engine in engines.items():
        result, from_proposals = run(engine, settings, stop_at)
        assert result.token_ids == reference, kind
        assert from_proposals == simulated, kind
        check(result, simulated, k)
    stats = result.stats.drafter
    assert 0 < stats.accepted_tokens < stats.drafted_tokens  # partial acceptance really happened
    if stop_at is None:
        assert result.stop_reason == "max_new_tokens" and len(result.token_ids) == MAX_NEW
        assert simulated.drafted[-1] < k  # the last round was cut short by max_new_tokens
    else:
        assert result.stop_reason == "eos" and result.token_ids[-1] == STOP_TOKEN
        # The case Transformers' own count gets wrong: the drafter proposed the stop token and it was kept.
        assert result.provenance[-1] is True and simulated.accepted[-1] >= 1


@pytest.mark.parametrize("stop_at", [None, STOP_AT], ids=["max-new-tokens", "stop-mid-round"])
@pytest.mark.parametrize("k", [1, 3, 6, 10])
def test_sampled_stats_equal_ground_truth_on_both_engines(engines, k, stop_at):
    # A low temperature makes the target's own choice likely but not certain: acceptance is partial.
    settings = GenerationSettings(max_new_tokens=MAX_NEW, draft_tokens=k, temperature=0.02, seed=11)
    for kind, engine in engines.items():
        result, expected = run(engine, settings, stop_at)
        check(result, expected, k)
        assert 0 < result.stats.drafter.accepted_tokens, kind
    assert result.stop_reason == ("max_new_tokens" if stop_at is None else "eos")


def test_transformers_own_counts_agree_where_no_stop_or_length_cut_intervenes(engines, monkeypatch):
    """Cross-check against Transformers' own match counts (its _speculative_sampling's n_matches)."""
    import transformers.generation.utils as generation

    counted: list[int] = []
    original = generation._speculative_sampling

    def counting(*args, **kwargs):
        tokens, n = original(*args, **kwargs)
        counted.append(int(n))
        return tokens, n

    monkeypatch.setattr(generation, "_speculative_sampling", counting)
    settings = GenerationSettings(max_new_tokens=MAX_NEW, draft_tokens=3, temperature=0.02, seed=5)
    result, expected = run(engines["transformers"], settings)
    # Rounds whose drafts were not cut by max_new_tokens or a stop token: Transformers' count is the truth.
    assert counted[:-1] == expected.accepted[: len(counted) - 1]
    assert torch.is_tensor(result.stats.drafter.draft_s) is False
