"""Our decode loop (engine "fast"): prefill, then rounds of k drafter steps and one target pass over k+1 tokens.

Owns the request's static KV cache (`inference.cache`), the drafter's call path (`inference.drafter`) and
token choice (`inference.sampling`); the engine owns rendering and results. Plain decoding is the same loop
with no drafter steps and a 1-token target pass. Per round: acceptance is computed on the device, rollback is
only the next write position (no copies), and exactly one host sync reads the accepted count and the new
tokens at once; that list also feeds streaming and the stop-token check. The drafter reads the target's KV of
accepted tokens only. `should_stop` is polled between rounds.

Timing: draft and verify spans are marked with `Clock` (CUDA events on a GPU, read once at the end; the host
clock on a CPU, where every op is synchronous anyway), so timing adds no syncs. Knows nothing of chat
templates, agents or Gradio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from inference.cache import StaticKV
from inference.drafter import (
    centroid_candidates, drafter_step, drafter_window, greedy_draft, uses_centroid_head, vocab_logits,
)
from inference.measure import Clock, Round
from inference.sampling import Sampling, greedy_acceptance, probabilities, sample, speculative_acceptance

MAX_DRAFT_TOKENS = 32  # GenerationSettings allows k up to 32: every verify pass fits a ring sized for it
PREFILL_CHUNK = 512  # prompt tokens per prefill pass; bounds the sliding layers' ring (window + chunk)


@dataclass
class LoopRun:
    """What one generation did, as the engine turns it into a protocol result."""

    rounds: list[Round] = field(default_factory=list)  # rounds[0] is the prefill's one token
    stop_reason: str = "max_new_tokens"
    first_token_s: float = 0.0  # host clock when the first token was known
    draft_spans: list = field(default_factory=list)  # (start mark, end mark) per round's drafter steps
    verify_spans: list = field(default_factory=list)  # (start mark, end mark) per verify pass
    host_syncs: int = 0


def target_logits(target, hidden: torch.Tensor) -> torch.Tensor:
    """The target's output scores for hidden states [1, q, H], soft-capped as Gemma4ForCausalLM does."""
    logits = target.lm_head(hidden)
    cap = target.config.get_text_config().final_logit_softcapping
    if cap is not None:
        logits = torch.tanh(logits / cap) * cap
    return logits


class DecodeLoop:
    """One target (+ drafter) pair's decode loop. Not thread-safe: the engine serializes calls."""

    def __init__(self, target, drafter=None, *, stop_ids: tuple[int, ...], prefill_chunk: int = PREFILL_CHUNK) -> None:
        self.target, self.drafter = target, drafter
        self.stop_ids = frozenset(stop_ids)
        self.prefill_chunk = prefill_chunk
        self.device = target.model.embed_tokens.weight.device
        self.clock = Clock(self.device)
        self.kv: StaticKV | None = None
        self.force_acceptance = False  # measurement only: every draft kept (see inference.measure)
        self._offsets = torch.arange(max(prefill_chunk, MAX_DRAFT_TOKENS + 1), device=self.device)
        self._dwindow = drafter_window(drafter) if drafter is not None else 0

    # ---- the cache ----

    def cache_for(self, max_len: int) -> StaticKV:
        """The request's KV cache: reused when the last one has the same size, else made anew."""
        max_pass = max(self.prefill_chunk, MAX_DRAFT_TOKENS + 1)
        if self.kv is None or self.kv.max_len != max_len or self.kv.max_pass_tokens != max_pass:
            self.kv = None  # free the old buffers before allocating the new ones
            self.kv = StaticKV(self.target, max_len, max_pass_tokens=max_pass)
        else:
            self.kv.reset()
        return self.kv

    # ---- model calls (all device work, no syncs) ----

    def target_pass(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """Run the target on tokens [1, q] at positions start..start+q-1; return its hidden states [1, q, H]."""
        positions = self._offsets[: tokens.shape[1]] + start
        self.kv.begin_pass(positions)
        out = self.target.model(input_ids=tokens, position_ids=positions[None], attention_mask=self.kv.target_masks(positions),
                                past_key_values=self.kv, use_cache=True, shared_kv_states={})
        return out.last_hidden_state

    def draft(self, token: torch.Tensor, hidden: torch.Tensor, position: int, k: int, sampling: Sampling):
        """k drafter steps from the token at `position` ([1, 1]) and the target state that produced it.

        Returns drafts [k] and, when sampling, each draft's drafter probability [k], the drafter's rows
        [k, V or C] and the candidate ids [k, C] (centroid head) or None.
        """
        positions = self._offsets[:1] + position
        masks = self.kv.drafter_masks(positions, self._dwindow)
        shared, embed = self.kv.shared_kv(), self.target.model.embed_tokens
        drafts, q_of, q_rows, q_ids = [], [], [], []
        for _ in range(k):
            step = drafter_step(self.drafter, embed, token, hidden, positions, shared, masks)
            hidden = step.hidden
            if sampling.is_greedy:
                token = greedy_draft(self.drafter, step.last_hidden)
            elif uses_centroid_head(self.drafter):
                ids, scores = centroid_candidates(self.drafter, step.last_hidden)
                q = probabilities(scores[0, 0], sampling)
                pick = sample(q).reshape(1)  # index with 1-d tensors: a 0-d index would be read on the host
                token = ids[0, 0].index_select(0, pick).reshape(1, 1)
                q_of.append(q.index_select(0, pick)), q_rows.append(q), q_ids.append(ids[0, 0])
            else:
                q = probabilities(vocab_logits(self.drafter, step.last_hidden)[0, 0], sampling)
                pick = sample(q).reshape(1)
                token = pick.reshape(1, 1)
                q_of.append(q.index_select(0, pick)), q_rows.append(q)
            drafts.append(token.reshape(1))
        drafts = torch.cat(drafts)
        if sampling.is_greedy:
            return drafts, None, None, None
        return drafts, torch.cat(q_of), torch.stack(q_rows), (torch.stack(q_ids) if q_ids else None)

    def choose(self, logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
        """The target's own token for each row of logits [q, V]."""
        if sampling.is_greedy:
            return logits.argmax(dim=-1)
        return sample(probabilities(logits, sampling))

    # ---- one generation ----

    def generate(self, prompt: torch.Tensor, *, max_new_tokens: int, k: int, use_drafter: bool, sampling: Sampling,
                 on_tokens: Callable[[list[int]], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> LoopRun:
        """Generate up to max_new_tokens after prompt [1, L]; stop at a stop token or when should_stop()."""
        if use_drafter and self.drafter is None:
            raise ValueError("this loop has no drafter")
        if not 1 <= k <= MAX_DRAFT_TOKENS:
            raise ValueError(f"k must be in 1..{MAX_DRAFT_TOKENS}")
        length = prompt.shape[1]
        self.cache_for(length + max_new_tokens + k + 1)
        run = LoopRun()
        emit = on_tokens or (lambda tokens: None)
        stop = should_stop or (lambda: False)

        hidden = None
        for start in range(0, length, self.prefill_chunk):
            hidden = self.target_pass(prompt[:, start:start + self.prefill_chunk], start)
        hidden = hidden[:, -1:]
        token = self.choose(target_logits(self.target, hidden)[0], sampling).reshape(1, 1)
        first = token.tolist()[0]  # the prefill's one sync: the first token
        run.host_syncs += 1
        run.first_token_s = time.perf_counter()
        run.rounds.append(Round(0, 0, tuple(first), run.first_token_s))
        emit(first)
        if first[0] in self.stop_ids and not self.force_acceptance:
            run.stop_reason = "eos"
            return run
        produced, position = 1, length  # `token` sits at `position`, not yet in the cache

        while produced < max_new_tokens:
            if stop():
                run.stop_reason = "stopped"
                break
            k_round = min(k, max_new_tokens - produced - 1) if use_drafter else 0
            drafts = None
            if k_round:
                start_mark = self.clock.mark()
                drafts, q_of, q_rows, q_ids = self.draft(token, hidden, position, k_round, sampling)
                run.draft_spans.append((start_mark, self.clock.mark()))
                tokens_in = torch.cat([token.reshape(1), drafts])[None]
            else:
                tokens_in = token
            start_mark = self.clock.mark()
            hidden_all = self.target_pass(tokens_in, position)
            logits = target_logits(self.target, hidden_all)[0]
            if drafts is None:
                n = torch.zeros((), dtype=torch.long, device=self.device)
                out = self.choose(logits, sampling)[:1]
            elif sampling.is_greedy:
                out = logits.argmax(dim=-1)
                n = greedy_acceptance(out, drafts)
            else:
                n, last = speculative_acceptance(probabilities(logits, sampling), drafts, q_of, q_rows, q_ids)
                # The kept drafts, then the target's token at index n (what follows n is never read).
                out = torch.cat([drafts, last[None]]).index_put_((n.reshape(1),), last.reshape(1))
            if self.force_acceptance:  # measurement: keep every draft, at the cost of the real rule
                n = torch.full_like(n, k_round)
                if drafts is not None:
                    out = torch.cat([drafts, out[k_round:]])
            run.verify_spans.append((start_mark, self.clock.mark()))
            packed = torch.cat([n.reshape(1).to(out.dtype), out]).tolist()  # THE sync of the round
            run.host_syncs += 1
            kept, new = packed[0], packed[1: packed[0] + 2]
            new, stopped = self._cut_at_stop(new)
            rejected = len(new) == kept + 1 and kept < k_round
            run.rounds.append(Round(k_round, min(kept, len(new)), tuple(new), time.perf_counter(), rejected))
            emit(new)
            produced += len(new)
            if stopped:
                run.stop_reason = "eos"
                break
            token = out[kept: kept + 1].reshape(1, 1)
            hidden = hidden_all[:, kept: kept + 1]
            position += kept + 1
        return run

    def _cut_at_stop(self, tokens: list[int]) -> tuple[list[int], bool]:
        """Tokens up to and including the first stop token, and whether there was one."""
        if self.force_acceptance:
            return tokens, False
        for i, t in enumerate(tokens):
            if t in self.stop_ids:
                return tokens[: i + 1], True
        return tokens, False
