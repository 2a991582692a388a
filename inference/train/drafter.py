"""Training the drafter: distil the target's greedy tokens into a Gemma4AssistantForCausalLM, k steps unrolled.

Every step goes through generation's own call path (inference.drafter.drafter_step with
inference.masks.drafter_masks): the newest token embedded by the target's embedding, the target's last hidden
state, the target's shared KV of the positions before that token; all k steps of a round keep the query
position of the newest token. Training runs that step at every written position of a batch at once: step j
from position p predicts the token the target writes at p + j, given that the earlier drafts were right
(their input is the target's token). The target is frozen.

Tokens are scored as the centroid head scores them: the lm_head rows of the candidates in the top-k clusters.
Training adds a cross-entropy over the clusters, so that the right cluster makes the top k.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import Gemma4AssistantForCausalLM

from inference.drafter import drafter_step
from inference.masks import drafter_masks
from inference.mini import MiniShape, drafter_config
from inference.train.fast import _reach, packed_columns, scored_hidden, use_blocked_attention
from inference.train.target import logits_at, scale_qk_norms


def build_compact_drafter(shape: MiniShape, vocab_rows: int, seed: int,
                          attention_fp32: bool = False) -> Gemma4AssistantForCausalLM:
    """The drafter over a small vocabulary (a multiple of num_centroids, >= vocab_rows): the first vocab_rows
    rows of its lm_head are the trained tokens, in compact order."""
    torch.manual_seed(seed + 1)
    size = -(-vocab_rows // shape.num_centroids) * shape.num_centroids
    model = Gemma4AssistantForCausalLM(drafter_config(shape, vocab_size=size))
    scale_qk_norms(model.model.layers)  # its queries meet the target's keys: scaled dot products at init
    use_blocked_attention(model, attention_fp32)
    return model


def row_steps(drafter, target, tokens: torch.Tensor, hidden: torch.Tensor, positions: torch.Tensor,
              shared_kv: dict, masks: list) -> tuple[torch.Tensor, torch.Tensor]:
    """One drafter step for every query of a batch, through generation's own step function
    (inference.drafter.drafter_step), one batch row at a time: ([B, q, dd] head input, [B, q, d] next hidden)."""
    heads, nexts = [], []
    for row in range(tokens.shape[0]):
        kv = {kind: (k[row:row + 1], v[row:row + 1]) for kind, (k, v) in shared_kv.items()}
        step = drafter_step(drafter, target.model.embed_tokens, tokens[row:row + 1], hidden[row:row + 1],
                            positions[row], kv, masks[row])
        heads.append(step.last_hidden)
        nexts.append(step.hidden)
    return torch.cat(heads), torch.cat(nexts)


@torch.no_grad()
def target_view(target, prefix: torch.Tensor, ids: torch.Tensor, written: torch.Tensor):
    """What generation hands the drafter, at every position of a teacher-forced batch: the target's final
    hidden states [B, L, d] (zero where unused), its greedy token at each position [B, L] (its prediction for
    the next one), and its shared KV states."""
    needed = written.clone()
    needed[:, :-1] |= written[:, 1:]  # the position before a written token predicts it
    hidden, shared, _ = scored_hidden(target, prefix, ids, needed)
    dense = torch.zeros(*ids.shape, hidden.shape[-1], dtype=hidden.dtype)
    dense[needed] = hidden
    greedy = torch.zeros_like(ids)
    greedy[needed] = logits_at(target, hidden)[:, :-1].argmax(-1)  # the inert column never wins: see centroid_argmax
    return dense, greedy, {k: (v[0].detach(), v[1].detach()) for k, v in shared.items()}


def unrolled_loss(drafter: Gemma4AssistantForCausalLM, target, prefix_length: int, ids: torch.Tensor,
                  written: torch.Tensor, view, clusters: torch.Tensor, steps: int) -> tuple[torch.Tensor, dict]:
    """Loss of `steps` unrolled drafter steps from every written position, and per step how many drafts
    generation would have accepted (all earlier ones right too) out of how many were tried."""
    hidden, greedy, shared = view
    batch, length = ids.shape
    base = written.clone()
    base[:, 0] = False  # a step needs the hidden state before it
    cols, valid = packed_columns(base, empty=1)
    rows = torch.arange(batch)[:, None]
    positions = prefix_length + cols
    _reach.clear()
    slots = torch.arange(prefix_length + length)  # slot i of the shared KV holds position i
    masks = [drafter_masks(positions[row], slots, slots, target.config.sliding_window) for row in range(batch)]
    vocab_rows = clusters.shape[0]
    lm_rows = drafter.lm_head.weight[:vocab_rows]
    rest = 0.0  # a draft needs its token to beat the untrained rows (score 0) and the other candidates
    token, h = ids[rows, cols], hidden[rows, cols - 1]
    total = torch.zeros(())
    stats = {"tried": [0] * steps, "accepted": [0] * steps}
    alive = valid.clone()
    for j in range(steps):
        # Step j drafts the token at index c + 1 + j: generation hands the drafter the target's newest token
        # (index c) and the hidden state before it, and asks for what the target says next, greedy[c + j].
        labels = greedy[rows, draft_label_index(cols, j, length)]
        at = (cols + j + 1).clamp(max=length - 1)
        mask = valid & (cols + j + 1 < length) & written[rows, at]
        out, h = row_steps(drafter, target, token, h, positions, shared, masks)
        logits = out @ lm_rows.T
        centroid_logits = drafter.masked_embedding.centroids(out)
        if mask.any():
            scored = torch.cat([logits[mask], torch.full((int(mask.sum()), 1), rest)], dim=-1)
            total = total + F.cross_entropy(scored.float(), labels[mask]) \
                + F.cross_entropy(centroid_logits[mask].float(), clusters[labels[mask]])
        with torch.no_grad():
            drafted = centroid_argmax(logits, centroid_logits, clusters, drafter.config.centroid_intermediate_top_k)
            alive &= drafted == labels
            stats["tried"][j] += int(mask.sum())
            stats["accepted"][j] += int((alive & mask).sum())
        token = labels  # the next step starts from the target's token: what an accepted draft is
    return total / steps, stats


def draft_label_index(cols: torch.Tensor, step: int, length: int) -> torch.Tensor:
    """Where the label of draft step `step` from base index `cols` sits in `greedy` (the target's prediction for
    the next index): the first step from token c predicts index c + 1, which is greedy[c]."""
    return (cols + step).clamp(max=length - 1)


def centroid_argmax(logits: torch.Tensor, centroid_logits: torch.Tensor, clusters: torch.Tensor, top_k: int
                    ) -> torch.Tensor:
    """The compact row of the token generation drafts, or -1 where it drafts an untrained token.

    Generation scores every token of the top-k clusters; untrained rows are zero and score 0, so a trained
    token is drafted only where it is in a top-k cluster and scores above 0 (inference.drafter.greedy_draft).
    """
    top = centroid_logits.topk(top_k, dim=-1).indices
    chosen = torch.zeros(centroid_logits.shape, dtype=torch.bool).scatter_(-1, top, True)
    allowed = chosen[..., clusters]  # [..., rows]: the token's cluster is among the top k
    best = logits.masked_fill(~allowed, float("-inf")).max(-1)
    return torch.where(best.values > 0, best.indices, -1)


def cluster_tokens(embeddings: torch.Tensor, clusters: int, capacity: int, seed: int, iterations: int = 20
                   ) -> torch.Tensor:
    """A cluster id per trained token: k-means (cosine) on the target's embedding rows, at most `capacity` per
    cluster. Tokens that mean similar things share a cluster, as in E2B's ordered embeddings."""
    x = F.normalize(embeddings.detach().float(), dim=-1)
    g = torch.Generator().manual_seed(seed)
    centers = x[torch.randperm(len(x), generator=g)[:clusters]].clone()
    assign = torch.zeros(len(x), dtype=torch.long)
    for _ in range(iterations):
        assign = _assign_capped(x @ centers.T, capacity)
        for c in range(clusters):
            members = x[assign == c]
            if len(members):
                centers[c] = F.normalize(members.mean(0), dim=-1)
    return assign


def _assign_capped(similarity: torch.Tensor, capacity: int) -> torch.Tensor:
    """Each token to its most similar cluster with room, most confident tokens first."""
    order = similarity.max(1).values.argsort(descending=True)
    ranked = similarity.argsort(1, descending=True)
    room = torch.full((similarity.shape[1],), capacity)
    assign = torch.empty(similarity.shape[0], dtype=torch.long)
    for token in order.tolist():
        for c in ranked[token].tolist():
            if room[c] > 0:
                assign[token], room[c] = c, room[c] - 1
                break
    return assign
