"""The MTP drafter's step and heads as functions over tensors: the one call path generation and training share.

A step at query position p takes the token at p (embedded by the target's scaled embedding, as Transformers'
candidate generator does) and a target-width hidden state (the target's last hidden state that produced that
token, or the previous step's output), projects their concatenation into the drafter, runs the drafter's
layers against the target's KV of positions before p (`inference.masks.drafter_masks`), and returns the
drafter's last hidden state (input of its head) and its projection back to the target's width (the next
step's hidden state). Every draft step of a round uses the same p: the MTP drafter is single-position.

Any number of query positions works (batch 1, q positions, one mask row each), so a trainer can run the
first draft step of every position of a sequence in one call.

Heads: 26B/31B drafters score the vocabulary with `lm_head`; E2B/E4B drafters (ordered embeddings) score only
the tokens of the `centroid_intermediate_top_k` best clusters. `centroid_candidates` does that without a
host sync or a vocabulary-wide row; `greedy_draft` breaks ties toward the smallest token id, as
Transformers' scatter-then-argmax does, so drafts stay identical to its.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from inference.masks import Masks


@dataclass(frozen=True)
class DraftStep:
    hidden: torch.Tensor  # [1, q, target hidden]: post_projection of the drafter's state; the next step's input
    last_hidden: torch.Tensor  # [1, q, drafter hidden]: the drafter's final-norm output, what its head reads


def uses_centroid_head(drafter) -> bool:
    """E2B/E4B-style drafters (ordered embeddings, centroid head) rather than a plain lm_head."""
    return drafter.masked_embedding is not None


def drafter_window(drafter) -> int:
    return int(drafter.config.get_text_config().sliding_window)


def drafter_step(drafter, embed_tokens: torch.nn.Module, tokens: torch.Tensor, hidden: torch.Tensor,
                 positions: torch.Tensor, shared_kv: dict[str, tuple[torch.Tensor, torch.Tensor]],
                 masks: Masks) -> DraftStep:
    """One drafter step for tokens [1, q] at `positions` [q] with target-width `hidden` [1, q, H].

    embed_tokens: the target's input embedding (`target.model.embed_tokens`, scaled).
    shared_kv: the target's KV by layer type ({"full_attention": (k, v), "sliding_attention": (k, v)}).
    masks: `inference.masks.drafter_masks(positions, ...)` over the slots of `shared_kv`.
    """
    x = drafter.pre_projection(torch.cat([embed_tokens(tokens).to(hidden.dtype), hidden], dim=-1))
    out = drafter.model(inputs_embeds=x, attention_mask=masks, position_ids=positions[None],
                        shared_kv_states=shared_kv, use_cache=False)
    last_hidden = out.last_hidden_state
    return DraftStep(hidden=drafter.post_projection(last_hidden), last_hidden=last_hidden)


def vocab_logits(drafter, last_hidden: torch.Tensor) -> torch.Tensor:
    """Scores over the whole vocabulary [1, q, V] from the plain head (26B/31B drafters)."""
    return drafter.lm_head(last_hidden)


def centroid_candidates(drafter, last_hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [1, q, C] and their scores [1, q, C] from the centroid head (E2B/E4B drafters).

    C = centroid_intermediate_top_k * vocab_size / num_centroids: the tokens of the best-scoring clusters,
    scored by the drafter's hidden state against their `lm_head` rows. Everything else is out of the draft.
    """
    head = drafter.masked_embedding
    top = torch.topk(head.centroids(last_hidden), k=head.centroid_intermediate_top_k, dim=-1).indices  # [1, q, top]
    clusters = head.token_ordering.view(head.num_centroids, head.vocab_size_per_centroid)
    ids = clusters[top].flatten(-2)  # [1, q, C]
    rows = torch.nn.functional.embedding(ids, drafter.lm_head.weight)  # [1, q, C, D]; 10x faster than weight[ids] on CPU
    scores = (last_hidden.unsqueeze(-2) @ rows.transpose(-1, -2)).squeeze(-2)
    return ids.long(), scores


def greedy_draft(drafter, last_hidden: torch.Tensor) -> torch.Tensor:
    """The drafter's top token [1, q]; among equal scores the smallest token id, like Transformers."""
    if not uses_centroid_head(drafter):
        return vocab_logits(drafter, last_hidden).argmax(dim=-1)
    ids, scores = centroid_candidates(drafter, last_hidden)
    best = scores.max(dim=-1, keepdim=True).values
    vocab = drafter.masked_embedding.vocab_size
    return torch.where(scores == best, ids, vocab).min(dim=-1).values
