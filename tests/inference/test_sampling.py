"""Sampling with the drafter is lossless: tokens are distributed exactly as the target alone would sample them.

Checked with chi-square tests at two levels: the acceptance rule on synthetic distributions (many samples,
and a broken rule to show the test has the power to fail), and the whole loop on the tiny pair with both
drafter heads, their scores replaced by two different Markov chains over five tokens (the target's chain is
the truth; the drafter's only proposes). Also: the logit filters equal Transformers' warpers.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from transformers.generation.logits_process import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

from inference.loop import DecodeLoop
from inference.sampling import Sampling, filtered_logits, sample, speculative_acceptance
from inference.tiny import build_tiny_pair
from tests.inference.oracle import plain_head_drafter

SUPPORT = [300, 301, 302, 303, 304]
VOCAB = 512  # a small vocabulary keeps this test in seconds; the classes and layer pattern are the tiny pair's


def chi_square(counts: torch.Tensor, probabilities: torch.Tensor) -> float:
    expected = probabilities * counts.sum()
    return float(((counts - expected) ** 2 / expected).sum())


def critical(df: int, z: float = 3.719) -> float:
    """The chi-square value a correct sampler exceeds with probability ~1e-4 (Wilson-Hilferty; z: normal quantile)."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.mark.parametrize("temperature, top_k, top_p", [(0.7, 0, 1.0), (1.0, 5, 1.0), (1.3, 0, 0.8), (0.5, 20, 0.9)])
def test_filters_equal_transformers_warpers(temperature, top_k, top_p):
    logits = torch.randn(3, 500, generator=torch.Generator().manual_seed(0)) * 3
    theirs = TemperatureLogitsWarper(temperature)(None, logits.clone())
    if top_k:
        theirs = TopKLogitsWarper(top_k)(None, theirs)
    if top_p < 1:
        theirs = TopPLogitsWarper(top_p)(None, theirs)
    ours = filtered_logits(logits, Sampling(temperature=temperature, top_k=top_k, top_p=top_p))
    assert torch.equal(torch.isinf(ours), torch.isinf(theirs))
    assert torch.allclose(ours.softmax(-1), theirs.softmax(-1), atol=1e-6)


def rule_samples(rule, p, q, q_ids, trials: int):
    """Emitted tokens of many one-round trials of an acceptance rule: first token, and second where reached."""
    vocab = p.shape[1]
    first, second = torch.zeros(vocab), torch.zeros(vocab)
    for _ in range(trials):
        picks = torch.multinomial(q, 1).squeeze(1)  # drafts from the drafter's rows
        drafts = picks if q_ids is None else q_ids.gather(1, picks[:, None]).squeeze(1)
        q_of = q.gather(1, picks[:, None]).squeeze(1)
        n, last = rule(p, drafts, q_of, q, q_ids)
        tokens = drafts[: int(n)].tolist() + [int(last)]
        first[tokens[0]] += 1
        if len(tokens) > 1:
            second[tokens[1]] += 1
    return first, second


def synthetic(centroid: bool):
    torch.manual_seed(1)
    vocab, k = 6, 2
    p = torch.softmax(torch.randn(k + 1, vocab) * 1.5, -1)
    if not centroid:
        return p, torch.softmax(torch.randn(k, vocab) * 1.5, -1), None
    ids = torch.tensor([[0, 2, 3, 5], [1, 2, 4, 5]])  # the drafter scores only these tokens at each position
    return p, torch.softmax(torch.randn(k, 4) * 1.5, -1), ids


@pytest.mark.parametrize("centroid", [False, True], ids=["vocab-head", "centroid-head"])
def test_acceptance_rule_reproduces_the_target_distribution(centroid):
    p, q, ids = synthetic(centroid)
    torch.manual_seed(7)
    first, second = rule_samples(speculative_acceptance, p, q, ids, trials=4000)
    assert chi_square(first, p[0]) < critical(5)
    assert chi_square(second, p[1]) < critical(5)


def test_a_broken_rule_fails_the_same_check():
    """Power: resampling a rejected position from p instead of (p - q)+ leans toward the drafter; caught."""
    def from_p(p, drafts, q_of, q_rows, q_ids):
        n, _ = speculative_acceptance(p, drafts, q_of, q_rows, q_ids)
        return n, sample(p.index_select(0, n[None]))[0]

    p, q, ids = synthetic(False)
    torch.manual_seed(7)
    first, _ = rule_samples(from_p, p, q, ids, trials=4000)
    assert chi_square(first, p[0]) > critical(5)


# ---- the whole loop on the tiny pair, with Markov-chain heads ----

class MarkovTarget(torch.nn.Module):
    """Stands in for the target's lm_head: scores depend only on the input token at each position."""

    def __init__(self, target, scores: torch.Tensor) -> None:
        super().__init__()
        self.scores, self.vocab, self.inputs = scores, target.config.vocab_size, None
        target.model.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs):
        self.inputs = kwargs["input_ids"][0]

    def forward(self, hidden):
        rows = row_of(self.inputs[-hidden.shape[1]:])
        out = torch.full((1, hidden.shape[1], self.vocab), -1e4)
        out[0, :, SUPPORT] = self.scores[rows]
        return out


def row_of(tokens: torch.Tensor) -> torch.Tensor:
    """Markov state of each token: its index in SUPPORT, or the last row for any other token (the prompt's)."""
    rows = torch.full_like(tokens, len(SUPPORT))
    for i, s in enumerate(SUPPORT):
        rows[tokens == s] = i
    return rows


class InputToken:
    """The last token the target's embedding looked up: the drafter step's input token."""

    def __init__(self, target) -> None:
        self.ids = None
        target.model.embed_tokens.register_forward_pre_hook(lambda m, args: setattr(self, "ids", args[0]))


def small_vocab_pair():
    """The tiny pair's architecture with a 512-token vocabulary (64 clusters of 8, the top 4 scored)."""
    from transformers import Gemma4AssistantConfig, Gemma4AssistantForCausalLM, Gemma4ForCausalLM, Gemma4TextConfig

    torch.manual_seed(0)
    tiny_target, tiny_drafter = build_tiny_pair()
    config = Gemma4TextConfig(**{**tiny_target.config.to_dict(), "vocab_size": VOCAB, "vocab_size_per_layer_input": VOCAB})
    target = Gemma4ForCausalLM(config).eval()
    text = {**tiny_drafter.config.get_text_config().to_dict(), "vocab_size": VOCAB}
    drafter_config = Gemma4AssistantConfig(**{**tiny_drafter.config.to_dict(), "text_config": text, "num_centroids": 64,
                                              "centroid_intermediate_top_k": 4})
    drafter = Gemma4AssistantForCausalLM(drafter_config).eval()
    drafter.masked_embedding.token_ordering.copy_(torch.randperm(VOCAB))
    return target, drafter


def markov_pair(centroid: bool, target_scores: torch.Tensor, drafter_scores: torch.Tensor):
    target, drafter = small_vocab_pair()
    target.lm_head = MarkovTarget(target, target_scores)
    token = InputToken(target)
    if not centroid:
        drafter = plain_head_drafter(drafter)

        class Head(torch.nn.Module):
            def forward(self, hidden):
                out = torch.full((1, hidden.shape[1], drafter.config.get_text_config().vocab_size), -1e4)
                out[0, :, SUPPORT] = drafter_scores[row_of(token.ids.reshape(-1)[-1:])]
                return out

        drafter.lm_head = Head()
        return target, drafter
    # Centroid head: SUPPORT sits in cluster 0, which always wins; the drafter's final state selects a row of
    # drafter_scores through crafted lm_head rows (all other tokens score -1e4 on a bias dimension).
    drafter = copy.deepcopy(drafter)
    head = drafter.masked_embedding
    ordering = head.token_ordering
    for slot, token_id in enumerate(SUPPORT):
        where = int((ordering == token_id).nonzero())
        ordering[slot], ordering[where] = token_id, ordering[slot].clone()
    width = drafter.config.get_text_config().hidden_size
    bias = width - 1
    weight = torch.zeros_like(drafter.lm_head.weight)
    weight[:, bias] = -1e4
    for j, token_id in enumerate(SUPPORT):
        weight[token_id, bias] = 0
        weight[token_id, : len(drafter_scores)] = drafter_scores[:, j]
    drafter.lm_head.weight = torch.nn.Parameter(weight)

    class Centroids(torch.nn.Module):
        def forward(self, hidden):
            out = torch.zeros(*hidden.shape[:-1], head.num_centroids)
            out[..., 0] = 100.0
            return out

    class Norm(torch.nn.Module):  # the drafter's final state: one-hot on the Markov row, plus the bias dimension
        def forward(self, hidden):
            state = torch.zeros(*hidden.shape[:-1], width)
            state[..., int(row_of(token.ids.reshape(-1)[-1:]))] = 1.0
            state[..., bias] = 1.0
            return state

    head.centroids = Centroids()
    drafter.model.norm = Norm()
    return target, drafter


def markov_marginals(start: torch.Tensor, transition: torch.Tensor, steps: int) -> list[torch.Tensor]:
    dist, out = start, [start]
    for _ in range(steps - 1):
        dist = dist @ transition[: len(SUPPORT)]
        out.append(dist)
    return out


@pytest.mark.parametrize("centroid", [False, True], ids=["vocab-head", "centroid-head"])
def test_loop_with_the_drafter_samples_like_the_target_alone(centroid):
    gen = torch.Generator().manual_seed(3)
    target_scores = torch.randn(len(SUPPORT) + 1, len(SUPPORT), generator=gen)
    drafter_scores = target_scores + torch.randn(target_scores.shape, generator=gen) * 1.5  # related, not equal
    target, drafter = markov_pair(centroid, target_scores, drafter_scores)
    loop = DecodeLoop(target, drafter, stop_ids=(1, 106, 50))
    assert (drafter.masked_embedding is not None) == centroid
    # The exact distribution: softcapped target scores (the loop soft-caps as Gemma4ForCausalLM does).
    cap = target.config.final_logit_softcapping
    transition = torch.softmax(torch.tanh(target_scores / cap) * cap, -1)
    expected = markov_marginals(transition[len(SUPPORT)], transition, 4)
    samples, accepted, drafted = 300, 0, 0
    counts = torch.zeros(4, len(SUPPORT))
    torch.manual_seed(0)
    with torch.inference_mode():
        for _ in range(samples):
            run = loop.generate(torch.tensor([[2, 105, 400]]), max_new_tokens=4, k=3, use_drafter=True,
                                sampling=Sampling(temperature=1.0))
            tokens = [t for r in run.rounds for t in r.tokens]
            for i, token in enumerate(tokens):
                counts[i, SUPPORT.index(token)] += 1
            accepted += sum(r.accepted for r in run.rounds)
            drafted += sum(r.drafted for r in run.rounds)
    assert 0.2 < accepted / drafted < 0.9  # the drafter is right part of the time: both branches of the rule run
    for i in range(4):
        assert chi_square(counts[i], expected[i]) < critical(len(SUPPORT) - 1), f"token {i}: {counts[i]} vs {expected[i]}"
