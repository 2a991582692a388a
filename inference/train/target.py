"""Training the target: Gemma4ForCausalLM over the compact vocabulary, the shared system turn computed once per step.

The compact model is the shipped one with its vocabulary rows renumbered (rows the corpus never uses are dropped
here and zero in the shipped model). Those zero rows score exactly 0 after the final soft-cap, so the softmax
still sees them: as one extra logit log(count). Trained tokens are pushed above them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from transformers import Gemma4ForCausalLM
from transformers.cache_utils import DynamicCache

from inference.mini import MiniShape, target_config
from inference.tokenizer import VOCAB_SIZE


def build_compact_target(shape: MiniShape, vocab_rows: int, seed: int) -> Gemma4ForCausalLM:
    torch.manual_seed(seed)
    model = Gemma4ForCausalLM(target_config(shape, vocab_size=vocab_rows))
    model.config._attn_implementation = "sdpa"
    return model


def masks(q_positions: torch.Tensor, kv_length: int, window: int) -> dict[str, torch.Tensor]:
    """Gemma 4's two masks as [1, 1, q, kv] booleans: causal, and causal within the sliding window."""
    kv = torch.arange(kv_length)[None, :]
    q = q_positions[:, None]
    full = kv <= q
    return {"full_attention": full[None, None], "sliding_attention": (full & (kv > q - window))[None, None]}


def inert_logit(vocab_rows: int) -> float:
    """log(number of zero rows): the softmax mass of the untrained tokens, each at logit 0."""
    return math.log(VOCAB_SIZE - vocab_rows)


def run_prefix(model: Gemma4ForCausalLM, prefix: torch.Tensor, batch: int) -> DynamicCache:
    """The shared system turn through the model once; its KV cache, expanded (not copied) to `batch` rows."""
    cache = DynamicCache()
    positions = torch.arange(len(prefix))
    model.model(input_ids=prefix[None], position_ids=positions[None], use_cache=True, past_key_values=cache,
                attention_mask=masks(positions, len(prefix), model.config.sliding_window))
    for layer in cache.layers:
        layer.keys = layer.keys.expand(batch, -1, -1, -1)
        layer.values = layer.values.expand(batch, -1, -1, -1)
    return cache


def hidden_states(model: Gemma4ForCausalLM, prefix: torch.Tensor, ids: torch.Tensor,
                  return_kv: bool = False):
    """Final-norm hidden states [B, L, d] of `ids` continuing the shared prefix (and, if asked, the target's
    shared KV states: the two layers the KV-shared tail and the drafter read)."""
    batch, length = ids.shape
    cache = run_prefix(model, prefix, batch)
    positions = torch.arange(len(prefix), len(prefix) + length)
    shared: dict = {}
    out = model.model(input_ids=ids, position_ids=positions[None], use_cache=True, past_key_values=cache,
                      attention_mask=masks(positions, len(prefix) + length, model.config.sliding_window),
                      shared_kv_states=shared)
    return (out.last_hidden_state, shared) if return_kv else out.last_hidden_state


def logits_at(model: Gemma4ForCausalLM, hidden: torch.Tensor) -> torch.Tensor:
    """Soft-capped logits over the compact vocabulary, plus the inert rows' one column at the end."""
    logits = hidden @ model.model.embed_tokens.weight.T
    cap = model.config.final_logit_softcapping
    logits = torch.tanh(logits / cap) * cap
    rest = torch.full((*logits.shape[:-1], 1), inert_logit(logits.shape[-1]), dtype=logits.dtype)
    return torch.cat([logits, rest], dim=-1)


def loss_and_hits(model: Gemma4ForCausalLM, prefix: torch.Tensor, ids: torch.Tensor, loss_mask: torch.Tensor
                  ) -> tuple[torch.Tensor, int, int]:
    """(mean cross-entropy over the written tokens, their count, how many the argmax gets right)."""
    hidden = hidden_states(model, prefix, ids)
    where = loss_mask[:, 1:]
    logits = logits_at(model, hidden[:, :-1][where])
    labels = ids[:, 1:][where]
    loss = F.cross_entropy(logits.float(), labels)
    hits = int((logits.argmax(-1) == labels).sum())
    return loss, int(labels.numel()), hits
