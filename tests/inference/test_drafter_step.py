"""The drafter step and heads (inference.drafter) equal Transformers' drafter, for one query or many."""

from __future__ import annotations

import pytest
import torch

from inference.cache import StaticKV
from inference.drafter import centroid_candidates, drafter_step, drafter_window, greedy_draft, vocab_logits
from inference.masks import drafter_masks
from inference.tiny import build_tiny_pair


@pytest.fixture(scope="module")
def pair():
    return build_tiny_pair()


def prefill(target, length: int, max_len: int = 128):
    """The target's static KV and last hidden states after `length` random prompt tokens."""
    ids = torch.randint(1000, 5000, (1, length), generator=torch.Generator().manual_seed(length))
    kv = StaticKV(target, max_len, max_pass_tokens=max_len)
    positions = torch.arange(length)
    kv.begin_pass(positions)
    with torch.no_grad():
        out = target.model(input_ids=ids, position_ids=positions[None], attention_mask=kv.target_masks(positions),
                           past_key_values=kv, use_cache=True, shared_kv_states={})
    return ids, kv, out.last_hidden_state


@pytest.mark.parametrize("length", [20, 70])  # inside and past the sliding window of 32
def test_drafter_step_equals_transformers_drafter(pair, length):
    target, drafter = pair
    ids, kv, hidden = prefill(target, length)
    p, window = length, drafter_window(drafter)
    token, h = torch.tensor([[777]]), hidden[:, -1:]
    with torch.no_grad():
        step = drafter_step(drafter, target.model.embed_tokens, token, h, torch.tensor([p]), kv.shared_kv(),
                            kv.drafter_masks(torch.tensor([p]), window))
        # Transformers' drafter sees every entry it is handed (full) and the last window+1 of them (sliding):
        # hand it exactly what ours must see at position p: all positions < p, and the window before p.
        (fk, fv), (sk, sv) = kv.shared_kv()["full_attention"], kv.shared_kv()["sliding_attention"]
        lo = max(0, p - window)
        shared = {"full_attention": (fk[:, :, :p], fv[:, :, :p]), "sliding_attention": (sk[:, :, lo:p], sv[:, :, lo:p])}
        theirs = drafter(inputs_embeds=torch.cat([target.model.embed_tokens(token), h], -1),
                         position_ids=torch.tensor([[p]]), shared_kv_states=shared, use_cache=False)
    assert torch.allclose(step.hidden, theirs.last_hidden_state, atol=1e-5)
    assert torch.equal(greedy_draft(drafter, step.last_hidden), theirs.logits.argmax(-1))


def test_many_positions_in_one_call_equal_one_at_a_time(pair):
    """What training does: the first draft step of every position of a sequence in one call."""
    from inference.loop import target_states

    target, drafter = pair
    ids = torch.randint(1000, 5000, (1, 60), generator=torch.Generator().manual_seed(60))
    with torch.no_grad():
        hidden, kv = target_states(target, ids)
    positions = torch.tensor([5, 17, 33, 40, 59])
    tokens, states = ids[:, positions], hidden[:, positions - 1]
    window, shared, embed = drafter_window(drafter), kv.shared_kv(), target.model.embed_tokens
    with torch.no_grad():
        together = drafter_step(drafter, embed, tokens, states, positions, shared, kv.drafter_masks(positions, window))
        for i, p in enumerate(positions.tolist()):
            one = drafter_step(drafter, embed, tokens[:, i:i + 1], states[:, i:i + 1], positions[i:i + 1], shared,
                               kv.drafter_masks(positions[i:i + 1], window))
            assert torch.allclose(together.hidden[:, i], one.hidden[:, 0], atol=1e-5)
            assert torch.allclose(together.last_hidden[:, i], one.last_hidden[:, 0], atol=1e-5)


def test_drafter_masks_see_only_the_targets_kv_before_the_query():
    slots = torch.arange(12)
    masks = drafter_masks(torch.tensor([4, 10]), slots, slots, window=3)
    full, sliding = masks["full_attention"][0, 0], masks["sliding_attention"][0, 0]
    assert full[0].nonzero().flatten().tolist() == [0, 1, 2, 3]
    assert sliding[0].nonzero().flatten().tolist() == [1, 2, 3]
    assert sliding[1].nonzero().flatten().tolist() == [7, 8, 9]


def test_centroid_head_scores_equal_transformers_and_ties_go_to_the_smallest_id(pair):
    _, drafter = pair
    hidden = torch.randn(1, 3, drafter.config.get_text_config().hidden_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ids, scores = centroid_candidates(drafter, hidden)
        theirs = drafter.masked_embedding(hidden, drafter.lm_head.weight)
        assert torch.allclose(theirs.gather(-1, ids), scores)
        assert torch.equal(greedy_draft(drafter, hidden), theirs.argmax(-1))
        # Make two candidate rows identical: equal scores, and Transformers' argmax takes the smaller id.
        a, b = ids[0, 0, 5].item(), ids[0, 0, 9].item()
        saved = drafter.lm_head.weight.clone()
        try:
            drafter.lm_head.weight[[a, b]] = hidden[0, 0] * (50.0 / hidden[0, 0].norm() ** 2)  # both score 50
            theirs = drafter.masked_embedding(hidden, drafter.lm_head.weight)
            assert greedy_draft(drafter, hidden)[0, 0].item() == min(a, b) == theirs.argmax(-1)[0, 0].item()
        finally:
            drafter.lm_head.weight.copy_(saved)


def test_plain_head_drafter_drafts_its_lm_head_argmax():
    from transformers import Gemma4AssistantConfig, Gemma4AssistantForCausalLM

    target, drafter = build_tiny_pair()
    config = Gemma4AssistantConfig(**{**drafter.config.to_dict(), "use_ordered_embeddings": False})
    plain = Gemma4AssistantForCausalLM(config).eval()
    hidden = torch.randn(1, 2, config.get_text_config().hidden_size)
    with torch.no_grad():
        assert torch.equal(greedy_draft(plain, hidden), vocab_logits(plain, hidden).argmax(-1))
