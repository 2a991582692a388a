"""Test helpers: a drafter that agrees with the target part of the time, and the acceptance it must produce.

`PartialDrafter` hooks a plain-head (26B/31B-style) drafter so each proposal is the target's own greedy next
token for the actual draft context, corrupted at a fixed rate chosen by the proposal's output index. It works
through the real call paths of both engines (the drafter's model and lm_head are called as usual; only the
head's scores are replaced), and logs every proposal as the drafter made it, round by round. `expected_stats`
turns that log and the final tokens into the ground truth: per round, the accepted drafts are the leading
proposals the output repeats, a drafted stop token included.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from transformers import Gemma4AssistantConfig, Gemma4AssistantForCausalLM

STOP_TOKEN = 106  # <turn|>


def plain_head_drafter(drafter) -> Gemma4AssistantForCausalLM:
    """The tiny drafter rebuilt with a plain lm_head (ordered embeddings off), same weights where they exist."""
    config = Gemma4AssistantConfig(**{**drafter.config.to_dict(), "use_ordered_embeddings": False})
    plain = Gemma4AssistantForCausalLM(config)
    plain.load_state_dict(drafter.state_dict(), strict=False)
    plain.generation_config = drafter.generation_config
    return plain.to(next(drafter.parameters()).dtype).eval()


def corrupted(index: int, rate: float) -> bool:
    """A fixed pseudo-random choice per output index, the same for every engine and k."""
    return random.Random(index).random() < rate


@dataclass
class Round:
    position: int  # the query position of the round's drafter steps (the position of its input token)
    proposals: list[int]


class PartialDrafter:
    """Hooks on a target and its plain-head drafter; use as a context manager around one generation."""

    def __init__(self, target, drafter, *, prompt_tokens: int, rate: float, stop_at: int | None = None,
                 reference: tuple[int, ...] | None = None) -> None:
        self.target, self.drafter, self.prompt_tokens, self.rate = target, drafter, prompt_tokens, rate
        self.stop_at = stop_at  # output index at which the target itself emits the stop token, or None
        # Greedy only: the target-alone output, so a proposal is looked up by output index instead of computed.
        self.reference = reference
        self.rounds: list[Round] = []
        self._context: dict[int, int] = {}  # position -> token the target was last run on there
        self._positions = None  # positions of the target pass in flight
        self._embedded = None  # ids last embedded (the drafter's input token is embedded just before its call)
        self._proposal = None
        self._busy = False
        self._chain: list[int] = []
        self._off_track = False  # this round already proposed a corrupted token  # the round's drafter inputs so far: its input token, then its proposals
        self._greedy_cache: dict[tuple[int, ...], int] = {}
        self._handles = []

    def __enter__(self):
        t, d = self.target, self.drafter
        self._handles = [
            t.model.register_forward_pre_hook(self._target_pass, with_kwargs=True),
            t.model.embed_tokens.register_forward_pre_hook(self._embed),
            t.lm_head.register_forward_hook(self._target_head),
            d.model.register_forward_pre_hook(self._drafter_step, with_kwargs=True),
        ]
        # The head's scores are replaced anyway: swap in a head that skips the 262k-wide product.
        self._lm_head, d.lm_head = d.lm_head, _ForcedHead(self)
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self.drafter.lm_head = self._lm_head

    # ---- hooks ----

    def _target_pass(self, module, args, kwargs):
        ids, positions = kwargs["input_ids"], kwargs.get("position_ids")
        if positions is None:
            positions = torch.arange(ids.shape[1])[None]
        self._positions = positions[0].tolist()
        if not self._busy:
            self._context.update(zip(self._positions, ids[0].tolist()))

    def _target_head(self, module, args, out):
        """The target emits the stop token at output index stop_at (its scores at the position before)."""
        if self.stop_at is None:
            return out
        row = [i for i, p in enumerate(self._positions) if p == self.prompt_tokens + self.stop_at - 1]
        if row:
            out = out.clone()
            out[0, row, STOP_TOKEN] = 100.0
        return out

    def _embed(self, module, args):
        self._embedded = args[0]

    def _drafter_step(self, module, args, kwargs):
        p = int(kwargs["position_ids"].reshape(-1)[0])
        token = int(self._embedded.reshape(-1)[-1])
        if not self.rounds or self.rounds[-1].position != p:
            self.rounds.append(Round(p, []))
            self._chain = [token]
        else:
            self._chain.append(token)
        step = len(self.rounds[-1].proposals)
        index = p - self.prompt_tokens + 1 + step  # output index of the token this step proposes
        proposals = self.rounds[-1].proposals
        if proposals and self._off_track:  # after a corrupted proposal: any token will do, skip the forward
            proposal = proposals[-1]
        else:
            if self.reference is not None:
                greedy = self.reference[index] if index < len(self.reference) else 0
            else:
                greedy = self._greedy([self._context[i] for i in range(p)] + self._chain)
            self._off_track = corrupted(index, self.rate)
            proposal = greedy
            if self._off_track:
                proposal = greedy + 1 if greedy + 1 != STOP_TOKEN else greedy + 2
        self.rounds[-1].proposals.append(proposal)
        self._proposal = proposal


    def _greedy(self, context: list[int]) -> int:
        key = tuple(context)
        if key not in self._greedy_cache:
            self._busy = True
            try:
                hidden = self.target.model(input_ids=torch.tensor([context])).last_hidden_state[:, -1:]
                self._positions = [len(context) - 1]
                logits = self.target.lm_head(hidden)  # only the last position's scores: the vocabulary is 262k wide
            finally:
                self._busy = False
            self._greedy_cache[key] = int(logits[0, -1].argmax())
        return self._greedy_cache[key]


class _ForcedHead(torch.nn.Module):
    """The drafter's lm_head while the oracle is on: scores 30 for the proposal, -30 for every other token."""

    def __init__(self, oracle: PartialDrafter) -> None:
        super().__init__()
        self.oracle = oracle
        self.vocab = oracle.drafter.config.get_text_config().vocab_size

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        forced = torch.full((*hidden.shape[:-1], self.vocab), -30.0, dtype=hidden.dtype, device=hidden.device)
        forced[..., self.oracle._proposal] = 30.0
        return forced


@dataclass(frozen=True)
class Expected:
    rounds: int
    drafted: list[int]  # per round after the prefill
    accepted: list[int]
    provenance: tuple[bool, ...]
    draft_rejected: tuple[bool, ...]


def expected_stats(rounds: list[Round], tokens: tuple[int, ...], prompt_tokens: int) -> Expected:
    """Ground truth from what the drafter proposed and what came out, round by round."""
    by_index = {r.position - prompt_tokens: r.proposals for r in rounds}
    provenance, rejected = [False] * len(tokens), [False] * len(tokens)
    drafted, accepted = [], []
    at = 0  # output index of the round's input token (its first token came from the round before)
    while at < len(tokens) - 1:
        proposals = by_index.get(at, [])
        n = 0
        while n < len(proposals) and at + 1 + n < len(tokens) and tokens[at + 1 + n] == proposals[n]:
            provenance[at + 1 + n] = True
            n += 1
        emitted = n
        if at + 1 + n < len(tokens):  # the target's own token (absent when a stop or max_new_tokens cut the round)
            rejected[at + 1 + n] = n < len(proposals)
            emitted += 1
        drafted.append(len(proposals))
        accepted.append(n)
        at += emitted
    return Expected(len(drafted), drafted, accepted, tuple(provenance), tuple(rejected))


def simulate_greedy(reference: tuple[int, ...], *, k: int, max_new_tokens: int, rate: float) -> Expected:
    """Ground truth without any engine: the rounds greedy decoding must take, given the target-alone output.

    A proposal at output index i is reference[i] unless `corrupted(i)`; a round keeps its leading uncorrupted
    proposals, ends at a drafted stop token, and drafts at most max_new_tokens - produced - 1 tokens.
    """
    provenance, rejected = [False] * len(reference), [False] * len(reference)
    drafted, accepted = [], []
    at = 0
    while at < len(reference) - 1:
        k_round = min(k, max_new_tokens - at - 2)
        n = 0
        while n < k_round and at + 1 + n < len(reference) and not corrupted(at + 1 + n, rate):
            provenance[at + 1 + n] = True
            n += 1
            if reference[at + n] == STOP_TOKEN:
                break
        emitted = n
        if at + 1 + n < len(reference):
            rejected[at + 1 + n] = n < k_round
            emitted += 1
        drafted.append(k_round)
        accepted.append(n)
        at += emitted
    return Expected(len(drafted), drafted, accepted, tuple(provenance), tuple(rejected))
