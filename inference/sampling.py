"""Token choice on the device, without host syncs: greedy, sampling, and lossless speculative acceptance.

The target and the drafter see the same processing (temperature, then top-k, then top-p, in Transformers'
order and with its tie rules), so the drafter drafts from the distribution it is judged by. Acceptance follows
the speculative sampling rule (Leviathan et al. 2023, Chen et al. 2023): draft x with drafter probability
q(x) is kept with probability min(1, p(x) / q(x)); at the first rejection the target's token is drawn from the
normalised residual (p - q)+; after k accepted drafts the bonus token is drawn from p. Output is then
distributed exactly as the target alone. Draws are inverse-CDF searches on the device: no normalisation and
no host round trip.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Sampling:
    """How tokens are chosen. temperature 0 is greedy; top_k 0 and top_p 1 switch those filters off."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0


def filtered_logits(logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """Float32 logits [..., n] after temperature, top-k and top-p; filtered entries are -inf.

    With top-k, top-p is applied among the k survivors only (everything else already has probability 0), so
    a 262k-token vocabulary is never sorted. Among equal scores at the k-th place, the lower token id stays.
    """
    scores = logits.float() / sampling.temperature
    n = scores.shape[-1]
    top_k = min(sampling.top_k, n) if sampling.top_k > 0 else 0
    if top_k:
        values, ids = torch.topk(scores, top_k, dim=-1)  # descending
        if sampling.top_p < 1.0:
            values = values.masked_fill(_nucleus_drop(values.flip(-1), sampling.top_p).flip(-1), float("-inf"))
        return torch.full_like(scores, float("-inf")).scatter_(-1, ids, values)
    if sampling.top_p < 1.0:
        ascending, order = torch.sort(scores, dim=-1)
        drop = _nucleus_drop(ascending, sampling.top_p)
        scores = scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return scores


def _nucleus_drop(ascending: torch.Tensor, top_p: float) -> torch.Tensor:
    """As Transformers' TopPLogitsWarper, on scores sorted ascending: drop the low tail holding <= 1 - top_p."""
    drop = ascending.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
    drop[..., -1:] = False  # always keep the best token
    return drop


def probabilities(logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    return filtered_logits(logits, sampling).softmax(dim=-1)


def sample(weights: torch.Tensor) -> torch.Tensor:
    """One index per row of non-negative `weights` [..., n] (need not sum to 1), drawn on the device.

    Inverse CDF: the first index whose running total exceeds u * total, u ~ U[0, 1). A zero weight never
    wins (its running total equals its predecessor's). One cumsum and one search: unlike an exponential race
    it draws a single random number per row, which matters on a CPU with a 262k-token vocabulary.
    """
    cdf = weights.float().cumsum(dim=-1)
    u = torch.rand((*cdf.shape[:-1], 1), device=cdf.device) * cdf[..., -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=cdf.shape[-1] - 1)


def accepted_prefix(accepted: torch.Tensor) -> torch.Tensor:
    """Length of the leading run of True in a [k] bool tensor, as a 0-d tensor (no sync)."""
    return torch.cumprod(accepted.to(torch.int32), dim=0).sum()


def greedy_acceptance(target_tokens: torch.Tensor, drafts: torch.Tensor) -> torch.Tensor:
    """Drafts [k] kept while they equal the target's own choices target_tokens [k+1]."""
    return accepted_prefix(target_tokens[: drafts.shape[0]] == drafts)


def speculative_acceptance(p: torch.Tensor, drafts: torch.Tensor, q_of_drafts: torch.Tensor,
                           q_rows: torch.Tensor, q_ids: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The speculative sampling rule on the device: (number of drafts kept, the target's next token).

    p: target probabilities [k+1, V] at the k+1 verified positions.
    drafts: drafted tokens [k]; q_of_drafts: their drafter probabilities [k] (> 0: they were drawn from q).
    q_rows: drafter probabilities [k, V], or [k, C] over candidate ids q_ids [k, C] (centroid head).
    """
    k = drafts.shape[0]
    p_of_drafts = p[:k].gather(1, drafts[:, None]).squeeze(1)
    u = torch.rand_like(q_of_drafts)
    n = accepted_prefix(u * q_of_drafts <= p_of_drafts)  # u <= p/q without dividing by q
    # Residual at position n: (p_n - q_n)+, with q_n = 0 after k accepted drafts (the bonus token is from p).
    q_padded = torch.cat([q_rows, torch.zeros_like(q_rows[:1])])
    q_n = q_padded.index_select(0, n[None])  # [1, V] or [1, C]
    if q_ids is not None:
        ids_padded = torch.cat([q_ids, q_ids[:1]])
        q_n = torch.zeros_like(p[:1]).scatter_(1, ids_padded.index_select(0, n[None]), q_n)
    p_n = p.index_select(0, n[None])
    residual = (p_n - q_n).clamp_(min=0)
    residual = torch.where(residual.sum() > 0, residual, p_n)  # p == q exactly: nothing left to correct
    return n, sample(residual)[0]
