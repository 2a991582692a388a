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

from inference.cache import StaticKV, text_model
from inference.drafter import (
    centroid_candidates, drafter_step, drafter_window, greedy_draft, uses_centroid_head, vocab_logits,
)
from inference.graphs import GraphSet
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
    """The target's scores for hidden states [1, q, H], soft-capped as Gemma4ForCausalLM does (in place: no autograd)."""
    logits = target.lm_head(hidden)
    cap = target.config.get_text_config().final_logit_softcapping
    if cap is not None:  # in place: same ops in the same order as Transformers, without three vocab-wide temporaries
        logits = logits.div_(cap).tanh_().mul_(cap)
    return logits


def target_states(target, input_ids: torch.Tensor) -> tuple[torch.Tensor, StaticKV]:
    """The target's last hidden states [1, L, H] and KV cache for a whole sequence, in one pass.

    What drafter training reads: the first draft step at position p takes (input_ids[:, p], hidden[:, p - 1])
    with `kv.drafter_masks(positions, drafter_window(drafter))` over `kv.shared_kv()`, all positions at once.
    Run it under torch.no_grad() (the target is not trained).
    """
    length = input_ids.shape[1]
    kv = StaticKV(target, length, max_pass_tokens=length)  # one slot per position: no ring wrap
    positions = torch.arange(length, device=input_ids.device)
    kv.begin_pass(positions)
    out = text_model(target)(input_ids=input_ids, position_ids=positions[None], attention_mask=kv.target_masks(positions),
                       past_key_values=kv, use_cache=True, shared_kv_states={})
    return out.last_hidden_state, kv


class DecodeLoop:
    """One target (+ drafter) pair's decode loop. Not thread-safe: the engine serializes calls."""

    def __init__(self, target, drafter=None, *, stop_ids: tuple[int, ...], prefill_chunk: int = PREFILL_CHUNK) -> None:
        self.target, self.drafter = target, drafter
        self.stop_ids = frozenset(stop_ids)
        self.prefill_chunk = prefill_chunk
        self.text = text_model(target)  # the decoder stack (a multimodal target's language model)
        self.device = self.text.embed_tokens.weight.device
        self.clock = Clock(self.device)
        self.kv: StaticKV | None = None
        self.graphs: GraphSet | None = None  # CUDA graphs of the steps, when enabled (inference.graphs)
        self.bucket_cache = False  # size caches in power-of-two buckets (what graphs need), not per request
        self.force_acceptance = False  # measurement only: every draft kept (see inference.measure)
        self._offsets = torch.arange(max(prefill_chunk, MAX_DRAFT_TOKENS + 1), device=self.device)
        self._dwindow = drafter_window(drafter) if drafter is not None else 0

    # ---- the cache ----

    def cache_for(self, needed: int) -> StaticKV:
        """The request's KV cache: reused when the last one fits, else made anew.

        Eager: sized to the request. With CUDA graphs: a power-of-two bucket, so captured steps (bound to the
        cache's buffers) serve many requests; a request beyond the bucket gets a new cache and new graphs.
        """
        max_pass = max(self.prefill_chunk, MAX_DRAFT_TOKENS + 1)
        max_len = max(1024, 1 << (needed - 1).bit_length()) if self.bucket_cache else needed
        if self.kv is None or self.kv.max_len != max_len or self.kv.max_pass_tokens != max_pass:
            if self.graphs is not None:
                self.graphs.clear()
            self.kv = None  # free the old buffers before allocating the new ones
            self.kv = StaticKV(self.target, max_len, max_pass_tokens=max_pass, reader_window=self._dwindow)
        else:
            self.kv.reset()
        return self.kv

    # ---- steps: fixed-shape device work over tensors, no syncs (what CUDA graphs capture) ----

    def forward(self, tokens: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
        """The target on tokens [1, q] at positions start..start+q-1 (start: [1]); its hidden states [1, q, H]."""
        positions = self._offsets[: tokens.shape[1]] + start
        self.kv.begin_pass(positions)
        out = self.text(input_ids=tokens, position_ids=positions[None], attention_mask=self.kv.target_masks(positions),
                                past_key_values=self.kv, use_cache=True, shared_kv_states={})
        return out.last_hidden_state

    def target_step(self, tokens: torch.Tensor, start: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A decode or verify pass: hidden states [1, q, H] and scores [q, V] for every position."""
        hidden = self.forward(tokens, start)
        return hidden, target_logits(self.target, hidden)[0]

    def greedy_draft_step(self, token: torch.Tensor, hidden: torch.Tensor, position: torch.Tensor):
        """One drafter step from token [1, 1] at position [1]: next hidden state and the drafter's top token."""
        step = self._draft(token, hidden, position)
        return step.hidden, greedy_draft(self.drafter, step.last_hidden)

    def sampled_draft_step(self, token: torch.Tensor, hidden: torch.Tensor, position: torch.Tensor):
        """One drafter step: next hidden state and the drafter's final state (its head runs outside)."""
        step = self._draft(token, hidden, position)
        return step.hidden, step.last_hidden

    def _draft(self, token, hidden, position):
        masks = self.kv.drafter_masks(position, self._dwindow)
        return drafter_step(self.drafter, self.text.embed_tokens, token, hidden, position, self.kv.shared_kv(),
                            masks)

    def _run(self, key, step, *inputs):
        if self.graphs is None:
            return step(*inputs)
        return self.graphs.run(key, step, *inputs)

    def _start(self, position: int) -> torch.Tensor:
        return torch.full((1,), position, dtype=torch.long, device=self.device)  # a fill kernel: no sync

    # ---- a round's parts ----

    def draft(self, token: torch.Tensor, hidden: torch.Tensor, position: int, k: int, sampling: Sampling):
        """k drafter steps from the token at `position` ([1, 1]) and the target state that produced it.

        Returns drafts [k] and, when sampling, each draft's drafter probability [k], the drafter's rows
        [k, V or C] and the candidate ids [k, C] (centroid head) or None.
        """
        where = self._start(position)
        drafts, q_of, q_rows, q_ids = [], [], [], []
        for _ in range(k):
            if sampling.is_greedy:
                hidden, token = self._run(("draft", "greedy"), self.greedy_draft_step, token, hidden, where)
                token = token.clone()  # a graph's output buffer: the next step overwrites it
            else:
                hidden, last = self._run(("draft", "sampled"), self.sampled_draft_step, token, hidden, where)
                token, q_pick, q, ids = self._sample_draft(last, sampling)
                q_of.append(q_pick), q_rows.append(q)
                if ids is not None:
                    q_ids.append(ids)
            drafts.append(token.reshape(1))
        drafts = torch.cat(drafts)
        if sampling.is_greedy:
            return drafts, None, None, None
        return drafts, torch.cat(q_of), torch.stack(q_rows), (torch.stack(q_ids) if q_ids else None)

    def _sample_draft(self, last_hidden: torch.Tensor, sampling: Sampling):
        """A draft drawn from the drafter's filtered distribution: token [1, 1], its probability [1], the row, ids."""
        if uses_centroid_head(self.drafter):
            ids, scores = centroid_candidates(self.drafter, last_hidden)
            ids = ids[0, 0]
            q = probabilities(scores[0, 0], sampling)
        else:
            ids, q = None, probabilities(vocab_logits(self.drafter, last_hidden)[0, 0], sampling)
        pick = sample(q).reshape(1)  # index with 1-d tensors: a 0-d index would be read on the host
        token = pick if ids is None else ids.index_select(0, pick)
        return token.reshape(1, 1), q.index_select(0, pick), q, ids

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
            hidden = self.forward(prompt[:, start:start + self.prefill_chunk], self._start(start))
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
            hidden_all, logits = self._run(("target", tokens_in.shape[1]), self.target_step, tokens_in,
                                           self._start(position))
            # Verify: the target's pass and its own choice (tokens or probabilities); the rest is the round's glue.
            if drafts is None:
                out = self.choose(logits, sampling)[:1]
            elif sampling.is_greedy:
                out = logits.argmax(dim=-1)
            else:
                p = probabilities(logits, sampling)
            run.verify_spans.append((start_mark, self.clock.mark()))
            if drafts is None:
                n = torch.zeros((), dtype=torch.long, device=self.device)
            elif sampling.is_greedy:
                n = greedy_acceptance(out, drafts)
            else:
                n, last = speculative_acceptance(p, drafts, q_of, q_rows, q_ids)
                # The kept drafts, then the target's token at index n (what follows n is never read).
                out = torch.cat([drafts, last[None]]).index_put_((n.reshape(1),), last.reshape(1))
            if self.force_acceptance:  # measurement: keep every draft, at the cost of the real rule
                n = torch.full_like(n, k_round)
                if drafts is not None:
                    out = torch.cat([drafts, out[k_round:]])
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
