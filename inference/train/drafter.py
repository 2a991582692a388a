"""Training the drafter: distil the target's greedy tokens into a Gemma4AssistantForCausalLM, k steps unrolled.

In generation one drafter step takes the newest token (embedded with the target's own embedding) and the
target's last hidden state, reads the target's shared KV cache at the positions before that token, and returns
a hidden state that feeds the next step; all k steps keep the query position of the newest token. Training runs
exactly that step at every position of a transcript at once: step j from position p predicts the token the
target would write at p + j, given that the earlier drafts were right. The target is frozen.

Logits are scored as the centroid head scores them (the lm_head rows of the candidates in the top-k clusters);
training adds a cross-entropy over the clusters so the right cluster makes the top k.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import Gemma4AssistantForCausalLM

from inference.mini import MiniShape, drafter_config


def build_compact_drafter(shape: MiniShape, vocab_rows: int, seed: int) -> Gemma4AssistantForCausalLM:
    """The drafter over a small vocabulary (a multiple of num_centroids, >= vocab_rows): the first vocab_rows
    rows of its lm_head are the trained tokens, in compact order."""
    torch.manual_seed(seed + 1)
    size = -(-vocab_rows // shape.num_centroids) * shape.num_centroids
    model = Gemma4AssistantForCausalLM(drafter_config(shape, vocab_size=size))
    model.config.get_text_config()._attn_implementation = "sdpa"
    return model


def drafter_masks(positions: torch.Tensor, kv_length: int, window: int) -> dict[str, torch.Tensor]:
    """[1, 1, q, kv] masks of drafter queries at `positions`: the target's KV strictly before each position,
    within the window on sliding layers."""
    kv = torch.arange(kv_length)[None, :]
    q = positions[:, None]
    full = kv < q
    return {"full_attention": full[None, None], "sliding_attention": (full & (kv >= q - window))[None, None]}


def draft_step(drafter: Gemma4AssistantForCausalLM, token_embeds: torch.Tensor, hidden: torch.Tensor,
               positions: torch.Tensor, shared_kv: dict, attention: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """One drafter step at every query: ([B, L, dd] drafter output before the heads, [B, L, d] next hidden)."""
    x = drafter.pre_projection(torch.cat([token_embeds, hidden], dim=-1))
    out = drafter.model(inputs_embeds=x, attention_mask=attention, position_ids=positions[None],
                        shared_kv_states=shared_kv, use_cache=False)
    return out.last_hidden_state, drafter.post_projection(out.last_hidden_state)


def unrolled_loss(drafter: Gemma4AssistantForCausalLM, target, tokens: torch.Tensor, hidden: torch.Tensor,
                  greedy: torch.Tensor, written: torch.Tensor, shared_kv: dict, first_position: int,
                  clusters: torch.Tensor, steps: int, inert_logit: float) -> tuple[torch.Tensor, dict]:
    """Loss of k unrolled steps over a batch, and per-step counts of drafts that generation would accept.

    tokens [B, L] compact ids; hidden [B, L, d] target final hidden states; greedy [B, L] the target's argmax
    at each position (its prediction for the next one); written [B, L] loss mask of the transcript.
    Step j (1-based) at query position p has input token tokens[p] (j = 1) or greedy[p + j - 2], hidden
    hidden[p - 1] (j = 1) or the previous step's output, and target greedy[p + j - 1].
    """
    batch, length = tokens.shape
    base = torch.arange(1, length - 1)  # query positions p with a hidden state before them
    positions = first_position + base
    window = target.config.sliding_window
    attention = drafter_masks(positions, shared_kv["full_attention"][0].shape[-2], window)
    rows = clusters.shape[0]
    lm_rows = drafter.lm_head.weight[:rows]
    embed = target.model.embed_tokens
    h = hidden[:, base - 1]
    token = tokens[:, base]
    total = torch.zeros(())
    stats = {"tried": [0] * steps, "accepted": [0] * steps}
    alive = torch.ones(batch, len(base), dtype=torch.bool)  # every earlier draft of this round was right
    for j in range(steps):
        label_at = base + j
        valid = (label_at < length - 1)
        label_at = label_at.clamp(max=length - 2)
        labels = greedy[:, label_at]
        mask = written[:, base] & written[:, label_at + 1] & valid[None]
        out, h = draft_step(drafter, embed(token), h, positions, shared_kv, attention)
        logits = out @ lm_rows.T
        logits = torch.cat([logits, torch.full((*logits.shape[:-1], 1), inert_logit)], dim=-1)
        centroid_logits = drafter.masked_embedding.centroids(out)
        sel = mask.nonzero(as_tuple=True)
        if len(sel[0]):
            total = total + F.cross_entropy(logits[sel].float(), labels[sel]) \
                + F.cross_entropy(centroid_logits[sel].float(), clusters[labels[sel]])
        with torch.no_grad():
            drafted = centroid_argmax(logits[..., :rows], centroid_logits, clusters,
                                      drafter.config.centroid_intermediate_top_k)
            right = drafted == labels
            alive = alive & right
            stats["tried"][j] += int(mask.sum())
            stats["accepted"][j] += int((alive & mask).sum())
        token = labels  # the next step continues from the target's token (what an accepted draft is)
    return total / steps, stats


def centroid_argmax(logits: torch.Tensor, centroid_logits: torch.Tensor, clusters: torch.Tensor, top_k: int
                    ) -> torch.Tensor:
    """The token generation drafts: the best-scoring trained token among the top-k clusters (untrained rows
    score 0 and are ignored here; a trained token below 0 would lose to them, which training prevents)."""
    top = centroid_logits.topk(top_k, dim=-1).indices  # [B, L, k]
    chosen = torch.zeros(centroid_logits.shape, dtype=torch.bool).scatter_(-1, top, True)
    allowed = chosen[..., clusters]  # [B, L, rows]: the token's cluster is among the top k
    return logits.masked_fill(~allowed, float("-inf")).argmax(-1)
