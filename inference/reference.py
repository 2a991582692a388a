"""The reference engine ("transformers"): Transformers' own `generate(assistant_model=...)`, watched from outside.

Kept as the oracle our loop is tested against and as the baseline the benchmark measures. Sets the draft
length where Transformers 5.22 reads it (the drafter's generation_config), records each round through a
streamer, the drafts through the candidate generator Transformers builds, and times both models with forward
hooks (CUDA events on a GPU, read once at the end). Knows nothing of chat templates, agents or Gradio.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from inference.loop import LoopRun
from inference.measure import Clock, ForwardTimer, RoundRecorder
from inference.sampling import Sampling


class _StopWhen(StoppingCriteria):
    """Ends generation between rounds once the caller's should_stop() turns true."""

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop, self.fired = should_stop, False

    def __call__(self, input_ids, scores, **kwargs):
        self.fired = self.fired or bool(self.should_stop())
        return torch.full((input_ids.shape[0],), self.fired, dtype=torch.bool, device=input_ids.device)


class _DraftLog:
    """The tokens the candidate generator proposed for the next target pass, copied off the device unsynced."""

    def __init__(self) -> None:
        self.pending: torch.Tensor | None = None

    def take(self) -> list[int]:
        drafts, self.pending = self.pending, None
        return [] if drafts is None else drafts.tolist()  # copied before the pass whose put() synced


@contextlib.contextmanager
def _recording_drafts(target):
    """Wrap the candidate generator Transformers builds inside generate() so its proposals are logged."""
    log = _DraftLog()
    build = target._get_candidate_generator

    def build_and_wrap(*args, **kwargs):
        generator = build(*args, **kwargs)
        get_candidates = generator.get_candidates

        def logged(input_ids, *a, **kw):
            ids, logits = get_candidates(input_ids, *a, **kw)
            log.pending = ids[0, input_ids.shape[1]:].to("cpu", non_blocking=True)
            return ids, logits

        generator.get_candidates = logged
        return generator

    target._get_candidate_generator = build_and_wrap  # an instance attribute shadows the method for this call
    try:
        yield log
    finally:
        del target._get_candidate_generator


class TransformersDecoder:
    """Runs one generation through Transformers' generate() and reports it as our loop does."""

    def __init__(self, target, drafter, *, stop_ids: tuple[int, ...], clock: Clock) -> None:
        self.target, self.drafter, self.stop_ids, self.clock = target, drafter, stop_ids, clock
        self.force_acceptance = False  # measurement only (see inference.measure)

    def generate(self, prompt: torch.Tensor, *, max_new_tokens: int, k: int, use_drafter: bool, sampling: Sampling,
                 on_tokens: Callable[[list[int]], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> LoopRun:
        target_timer = ForwardTimer(self.clock).attach(self.target)
        draft_timer = ForwardTimer(self.clock).attach(self.drafter) if use_drafter else None
        stopper = _StopWhen(should_stop or (lambda: False))
        kwargs = {}
        if use_drafter:
            # Transformers 5.22 reads the draft length only here; generate(num_assistant_tokens=...) is ignored.
            self.drafter.generation_config.num_assistant_tokens = k
            self.drafter.generation_config.num_assistant_tokens_schedule = "constant"
            kwargs["assistant_model"] = self.drafter
        try:
            with _recording_drafts(self.target) as drafts, self._forcing():
                recorder = RoundRecorder(self.stop_ids, on_tokens=on_tokens, take_drafts=drafts.take)
                self.target.generate(
                    input_ids=prompt, attention_mask=torch.ones_like(prompt), streamer=recorder,
                    generation_config=self._config(max_new_tokens, sampling),
                    stopping_criteria=StoppingCriteriaList([stopper]), **kwargs)
        finally:
            target_timer.detach()
            if draft_timer:
                draft_timer.detach()
        if recorder.stopped_at_stop_token:
            stop_reason = "eos"
        elif stopper.fired:
            stop_reason = "stopped"
        else:
            stop_reason = "max_new_tokens"
        return LoopRun(rounds=recorder.rounds, stop_reason=stop_reason,
                       draft_spans=draft_timer.spans if draft_timer else [], verify_spans=target_timer.spans[1:])

    def _config(self, max_new_tokens: int, sampling: Sampling) -> GenerationConfig:
        config = GenerationConfig(
            max_new_tokens=max_new_tokens, eos_token_id=list(self.stop_ids),
            pad_token_id=self.target.generation_config.pad_token_id or 0, cache_implementation="dynamic")
        if sampling.is_greedy:  # Transformers' own defaults: unused when greedy, and the checkpoint's sampling
            config.update(do_sample=False, temperature=1.0, top_k=50, top_p=1.0)  # values then neither leak in nor warn
        else:
            config.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
        return config

    @contextlib.contextmanager
    def _forcing(self):
        """Full acceptance for measurement: both final norms output zero, so every argmax is token 0.

        An E2B-style drafter only scores the tokens of its top clusters, so token 0 may not be among them:
        its token ordering is pointed at token 0 for every cluster meanwhile, then restored.
        """
        if not self.force_acceptance or self.drafter is None:
            yield
            return
        handles = [m.model.norm.register_forward_hook(lambda module, args, out: out * 0)
                   for m in (self.target, self.drafter)]
        head = self.drafter.masked_embedding
        saved = head.token_ordering.clone() if head is not None else None
        if head is not None:
            head.token_ordering.zero_()
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()
            if head is not None:
                head.token_ordering.copy_(saved)
