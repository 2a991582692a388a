"""Attention masks for Gemma 4's two layer types, built on the device from position tensors. Nothing else.

Gemma 4's decoder takes `attention_mask` as a dict {"full_attention": m, "sliding_attention": m} of boolean
masks [1, 1, queries, kv_slots] and then skips its own mask code. Each KV slot is described by the position
it holds (`kv_positions`, `EMPTY` where nothing was written), so the same builders serve a plain cache
(slot i holds position i), a ring buffer for sliding layers, and training over a whole sequence. No host
sync: the masks are pure tensor ops, safe inside a CUDA graph.

- The target's query at position q sees its own KV and earlier: full `kv <= q`; sliding also `kv > q - window`
  (window entries, q itself included), as Transformers' Gemma 4 masks.
- The drafter's query at position p sees the target's KV of tokens before p only (the token at p is the
  drafter's input, not yet in the target's cache): full `kv < p`; sliding also `kv >= p - window`.
"""

from __future__ import annotations

import torch

EMPTY = 2**62  # position recorded for a KV slot nothing was written to: later than any query, so never visible
Masks = dict[str, torch.Tensor]


def target_masks(query_positions: torch.Tensor, full_kv_positions: torch.Tensor, sliding_kv_positions: torch.Tensor,
                 window: int) -> Masks:
    """Masks for target queries at `query_positions` [q] over KV slots holding the given positions."""
    q = query_positions[:, None]
    full = full_kv_positions[None, :] <= q
    sliding_kv = sliding_kv_positions[None, :]
    sliding = (sliding_kv <= q) & (sliding_kv > q - window)
    return {"full_attention": full[None, None], "sliding_attention": sliding[None, None]}


def drafter_masks(query_positions: torch.Tensor, full_kv_positions: torch.Tensor, sliding_kv_positions: torch.Tensor,
                  window: int) -> Masks:
    """Masks for drafter queries at `query_positions` [q]: the target's KV strictly before each query."""
    p = query_positions[:, None]
    full = full_kv_positions[None, :] < p
    sliding_kv = sliding_kv_positions[None, :]
    sliding = (sliding_kv < p) & (sliding_kv >= p - window)
    return {"full_attention": full[None, None], "sliding_attention": sliding[None, None]}
