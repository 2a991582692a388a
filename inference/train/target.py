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

from inference.mini import MiniShape, target_config
from inference.tokenizer import VOCAB_SIZE
from inference.train.fast import scored_hidden, use_blocked_attention


POST_NORMS = ("post_attention_layernorm", "post_feedforward_layernorm", "post_per_layer_input_norm")


def build_compact_target(shape: MiniShape, vocab_rows: int, seed: int, embedding_std: float | None = None,
                         post_norm_init: float | None = None, qk_norm_init: bool = False,
                         previous_token_heads: int = 0, attention_fp32: bool = False) -> Gemma4ForCausalLM:
    """The target over `vocab_rows` rows. Initialisation only (the architecture is E2B's): a wider embedding;
    the norms that scale each sublayer's output into the residual stream started small, so that the 35-layer
    stack starts near the identity; and q/k norms at head_dim**-0.25, so that attention (which Gemma 4 does
    not scale by 1/sqrt(head_dim)) starts as ordinary scaled dot-product attention instead of sharp and
    random. Together they let it train in the few hundred steps a CPU affords. `previous_token_heads`: see
    `init_previous_token_heads`; `attention_fp32`: see fast.blocked_attention_fp32."""
    torch.manual_seed(seed)
    model = Gemma4ForCausalLM(target_config(shape, vocab_size=vocab_rows))
    with torch.no_grad():
        if embedding_std is not None:
            model.model.embed_tokens.weight.normal_(0.0, embedding_std)
        if post_norm_init is not None:
            for layer in model.model.layers:
                for name in POST_NORMS:
                    if hasattr(layer, name):
                        getattr(layer, name).weight.fill_(post_norm_init)
        if qk_norm_init:
            scale_qk_norms(model.model.layers)
    if previous_token_heads:
        init_previous_token_heads(model, previous_token_heads)
    use_blocked_attention(model, attention_fp32)
    return model


def scale_qk_norms(layers) -> None:
    """q_norm and k_norm weights at head_dim**-0.25 each: q.k scaled by 1/sqrt(head_dim) at initialisation."""
    with torch.no_grad():
        for layer in layers:
            attention = layer.self_attn
            scale = attention.head_dim ** -0.25
            attention.q_norm.weight.fill_(scale)
            if hasattr(attention, "k_norm"):
                attention.k_norm.weight.fill_(scale)


def init_previous_token_heads(model: Gemma4ForCausalLM, heads: int, sharpness: float = 2.5,
                              constant: float = 0.5, output_scale: float = 0.5) -> None:
    """Layer 0's first `heads` heads (1 or 2) start attending 1 (and 2) tokens back, by RoPE alone.

    Copying what followed a token seen earlier (an induction head) needs a head that moves each token's
    identity to the next position; trained from scratch, both halves of that circuit form together, late (the
    repeat drills sat at 0.64 for 400-600 steps). Here the first half is built in: embedding column 0 is a
    constant, so with every other column of their q/k projections at zero these heads' query and key are
    constant vectors; the key is the query turned by each rotary pair's angle theta_f (R(theta) q), so
    q . R(-d theta) k, which is the score at distance d, peaks at d = 1 (the second head's query is turned
    the other way, R(-theta) q, and peaks at d = 2). The layer has one KV head, so its key is positional for
    all its heads; everything else (values, outputs, every later layer) is left as initialised and trains."""
    if heads not in (1, 2):
        raise ValueError("previous_token_heads is 1 or 2 (layer 0 has heads for 1 and 2 tokens back)")
    layer = model.model.layers[0]
    attention = layer.self_attn
    if not attention.is_sliding or model.config.num_attention_heads < heads:
        raise ValueError("previous-token heads need a sliding layer 0 with enough heads")
    dim, half = attention.head_dim, attention.head_dim // 2
    theta = model.config.rope_parameters["sliding_attention"]["rope_theta"] ** (
        -torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    amplitude = torch.ones(half)  # equal energy in every rotary pair; q's RMS is 1 (q_norm sets the scale)
    query = torch.cat([amplitude, torch.zeros(half)])
    turned = {+1: torch.cat([amplitude * theta.cos(), amplitude * theta.sin()]),   # R(theta) q
              -1: torch.cat([amplitude * theta.cos(), -amplitude * theta.sin()])}  # R(-theta) q
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = constant
        attention.k_proj.weight.zero_()
        attention.k_proj.weight[:, 0] = turned[+1]
        for head, vector in enumerate([query, turned[-1]][:heads]):
            rows = slice(head * dim, (head + 1) * dim)
            attention.q_proj.weight[rows] = 0.0
            attention.q_proj.weight[rows, 0] = vector
        attention.q_norm.weight.fill_(sharpness)  # scores 2.5**2 * 32 at the peak: >0.999 of the weight there
        attention.k_norm.weight.fill_(sharpness)
        layer.post_attention_layernorm.weight.fill_(output_scale)


def inert_logit(vocab_rows: int) -> float:
    """log(number of zero rows): the softmax mass of the untrained tokens, each at logit 0."""
    return math.log(VOCAB_SIZE - vocab_rows)


def logits_at(model: Gemma4ForCausalLM, hidden: torch.Tensor) -> torch.Tensor:
    """Soft-capped logits over the compact vocabulary, plus the inert rows' one column at the end."""
    logits = hidden @ model.model.embed_tokens.weight.T
    cap = model.config.final_logit_softcapping
    logits = torch.tanh(logits / cap) * cap
    rest = torch.full((*logits.shape[:-1], 1), inert_logit(logits.shape[-1]), dtype=logits.dtype)
    return torch.cat([logits, rest], dim=-1)


def loss_and_hits(model: Gemma4ForCausalLM, prefix: torch.Tensor, ids: torch.Tensor, loss_mask: torch.Tensor,
                  prefix_grad: bool = True, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(cross-entropy over the written tokens, whether the argmax gets each right: [N] bool, row-major).

    The mean is plain, or weighted by `weights` ([B, L] like `ids`, read where `loss_mask` is set)."""
    scored = torch.zeros_like(loss_mask)
    scored[:, :-1] = loss_mask[:, 1:]  # the logit at p predicts the token at p + 1
    hidden, _, _ = scored_hidden(model, prefix, ids, scored, prefix_grad)
    logits = logits_at(model, hidden)
    labels = ids[:, 1:][loss_mask[:, 1:]]
    if weights is None:  # (not all-ones weights: the plain mean sums in the order the shipped weights were made)
        loss = F.cross_entropy(logits.float(), labels)
    else:
        w = weights[:, 1:][loss_mask[:, 1:]].float()
        loss = (F.cross_entropy(logits.float(), labels, reduction="none") * w).sum() / w.sum()
    return loss, logits.argmax(-1) == labels
