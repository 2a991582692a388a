"""A training forward through the target's own modules that skips what no loss needs; exact, just cheaper.

On this CPU attention over the long shared system turn is most of a training step. Three savings, each exact
(tests/inference/test_train.py checks the result against the model's own forward):
- the KV-shared tail (E2B's last 20 of 35 layers) keeps no KV of its own, so its output matters only where a
  logit is scored: the shared prefix and the prompt tokens of a transcript run through the first layers only;
- attention runs in blocks of queries, each over the slice of keys its mask can reach (a sliding layer's block
  reads ~window + block keys, not the whole context);
- the shared system turn runs once per step and its KV is expanded, not copied, to the batch.
One saving is not exact, and is asked for: `prefix_grad=False` runs the shared system turn without gradient
(Transformer-XL's stop-gradient on its cached segment): its keys and values are the current weights' own, but
no gradient flows back through them. Corpus steps took 2.3-2.4 s here against 2.9 s with it. `attention_fp32`,
asked for too, changes only rounding: it attends in float32 under bf16 autocast (faster on this CPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.cache_utils import DynamicCache

BLOCK = 128  # queries per attention block
ATTENTION = "mini_blocked"
ATTENTION_FP32 = "mini_blocked_fp32"  # the same in float32 under bf16 autocast: this CPU's flash-attention kernel
# runs head_dim 32 ~1.7x faster (forward and backward) in float32 than in bf16, and 64 ~1.1x
_reach: dict[tuple, tuple[int, int]] = {}  # (mask, block) -> key range; every layer of a kind shares its mask


def blocked_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Scaled dot-product attention over [B, H, q, hd] queries, block by block, each block over the keys its
    boolean mask [B|1, 1, q, kv] allows anywhere. Returns [B, q, H, hd] as Transformers' attention functions do."""
    groups = query.shape[1] // key.shape[1]
    outs = []
    for a in range(0, query.shape[2], BLOCK):
        mask = attention_mask[:, :, a:a + BLOCK]
        key_of = (attention_mask.data_ptr(), tuple(attention_mask.shape), a)
        if key_of not in _reach:
            reach = torch.nonzero(mask.any(dim=(0, 1, 2))).flatten()
            _reach[key_of] = int(reach[0]), int(reach[-1]) + 1
        lo, hi = _reach[key_of]
        k = key[:, :, lo:hi].repeat_interleave(groups, dim=1)
        v = value[:, :, lo:hi].repeat_interleave(groups, dim=1)
        outs.append(F.scaled_dot_product_attention(query[:, :, a:a + BLOCK], k, v, attn_mask=mask[..., lo:hi],
                                                   scale=scaling))
    return torch.cat(outs, dim=2).transpose(1, 2).contiguous(), None


def blocked_attention_fp32(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """`blocked_attention` on float32 copies of query, key and value; the output in the query's dtype."""
    out, _ = blocked_attention(module, query.float(), key.float(), value.float(), attention_mask, dropout, scaling)
    return out.to(query.dtype), None


AttentionInterface.register(ATTENTION, blocked_attention)
AttentionInterface.register(ATTENTION_FP32, blocked_attention_fp32)


def use_blocked_attention(model, fp32: bool = False) -> None:
    model.config.get_text_config()._attn_implementation = ATTENTION_FP32 if fp32 else ATTENTION


def first_shared_layer(config) -> int:
    return config.num_hidden_layers - config.num_kv_shared_layers


def masks(q_positions: torch.Tensor, kv_length: int, window: int) -> dict[str, torch.Tensor]:
    """Gemma 4's two masks as [B|1, 1, q, kv] booleans for queries at `q_positions` ([q] or [B, q])."""
    q = q_positions if q_positions.dim() == 2 else q_positions[None]
    kv = torch.arange(kv_length)[None, None, :]
    full = kv <= q[..., None]
    return {"full_attention": full[:, None], "sliding_attention": (full & (kv > q[..., None] - window))[:, None]}


def run_layers(text_model, layers: range, hidden: torch.Tensor, per_layer: torch.Tensor | None,
               positions: torch.Tensor, attention: dict, cache, shared: dict) -> torch.Tensor:
    """`hidden` through text_model.layers[layers], as Gemma4TextModel.forward runs them."""
    rope = {t: text_model.rotary_emb(hidden, positions, t) for t in text_model.unique_layer_types}
    for i in layers:
        kind = text_model.config.layer_types[i]
        hidden = text_model.layers[i](hidden, per_layer[:, :, i, :] if per_layer is not None else None,
                                      shared_kv_states=shared, position_embeddings=rope[kind],
                                      attention_mask=attention[kind], position_ids=positions,
                                      past_key_values=cache)
    return hidden


def embed(text_model, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    embeds = text_model.embed_tokens(ids)
    if not text_model.hidden_size_per_layer_input:
        return embeds, None
    return embeds, text_model.project_per_layer_inputs(embeds, text_model.get_per_layer_inputs(ids, embeds))


def packed_columns(marked: torch.Tensor, empty: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the columns where `marked` [batch, length] is True, packed left into [batch, width] (short rows
    padded with their last column, rows with none with `empty`), and which entries are real."""
    batch = marked.shape[0]
    width = max(int(marked.sum(1).max()), 1)
    cols = torch.full((batch, width), empty, dtype=torch.long)
    valid = torch.zeros(batch, width, dtype=torch.bool)
    for row in range(batch):
        at = torch.nonzero(marked[row]).flatten()
        if len(at):
            cols[row, :len(at)], cols[row, len(at):] = at, at[-1]
            valid[row, :len(at)] = True
    return cols, valid


def scored_hidden(model, prefix: torch.Tensor, ids: torch.Tensor, scored: torch.Tensor, prefix_grad: bool = True
                  ) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """Final-norm hidden states of the continuation `ids` [B, L] of `prefix` at the positions `scored` [B, L]
    (bool) only, as [N, d] in row-major order (`prefix_grad=False`: no gradient through the prefix); also the
    target's shared KV states (prefix + continuation) and the last non-shared layer's hidden states [B, L, d]
    (for callers that need every position, e.g. drafting)."""
    _reach.clear()  # masks are made afresh below; their memory may be reused
    text = model.model
    config = text.config
    split = first_shared_layer(config)
    window = config.sliding_window
    batch, length = ids.shape
    plen = len(prefix)
    # the shared system turn: first layers only, once, then expanded to the batch
    cache = DynamicCache()
    p_pos = torch.arange(plen)[None]
    with torch.set_grad_enabled(prefix_grad and torch.is_grad_enabled()):
        p_hidden, p_layer = embed(text, prefix[None])
        run_layers(text, range(split), p_hidden, p_layer, p_pos, masks(p_pos, plen, window), cache, {})
    for layer in cache.layers:
        layer.keys = layer.keys.expand(batch, -1, -1, -1)
        layer.values = layer.values.expand(batch, -1, -1, -1)
    # every continuation token through the first layers: their KV is what later tokens read
    positions = (plen + torch.arange(length))[None]
    shared: dict = {}
    hidden, per_layer = embed(text, ids)
    hidden = run_layers(text, range(split), hidden, per_layer, positions, masks(positions, plen + length, window),
                        cache, shared)
    first = hidden
    # the KV-shared tail only where a logit is scored, gathered per row (short rows padded with their last)
    cols, valid = packed_columns(scored, empty=0)
    take = cols[..., None].expand(-1, -1, hidden.shape[-1])
    hidden = hidden.gather(1, take)
    if per_layer is not None:
        per_layer = per_layer.gather(1, cols[:, :, None, None].expand(-1, -1, *per_layer.shape[2:]))
    q_pos = plen + cols
    hidden = run_layers(text, range(split, config.num_hidden_layers), hidden, per_layer, q_pos,
                        masks(q_pos, plen + length, window), None, shared)
    return text.norm(hidden)[valid], shared, first
