"""Generation engine: a Gemma 4 target with an optional MTP drafter, every call measured.

Satisfies `protocol.ChatModel`. Knows nothing of agents, LangGraph or Gradio. Speculative decoding is
Transformers' own `generate(assistant_model=...)`; this module renders the chat, sets the draft length where
Transformers 5.22 reads it (the drafter's generation_config), and turns what `inference.measure` watched into
the protocol's result types.
"""

from __future__ import annotations

import gc
import itertools
import platform
import threading
import time
from typing import Any, Callable, Literal, Sequence

import torch
import transformers
from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

from inference.measure import Clock, ForwardTimer, RoundRecorder, accepted_by_position
from protocol import (
    Comparison, DrafterStats, GenerationResult, GenerationSettings, GenerationStats, InputError, Message,
    ModelError, StopCheck, TextCallback, ToolSpec, first_divergence,
)

DEFAULT_STOP_IDS = (1, 106, 50)  # <eos>, <turn|>, <|tool_response>: the real generation_config's eos ids
WARM_UP_TOKENS = 8


class _StopWhen(StoppingCriteria):
    """Ends generation between rounds once the caller's should_stop() turns true."""

    def __init__(self, should_stop: StopCheck) -> None:
        self.should_stop, self.fired = should_stop, False

    def __call__(self, input_ids, scores, **kwargs):
        self.fired = self.fired or bool(self.should_stop())
        return torch.full((input_ids.shape[0],), self.fired, dtype=torch.bool, device=input_ids.device)


class Engine:
    """One target (+ drafter) on one device. Calls are serialized: assisted generation is batch size 1."""

    def __init__(self, target, drafter, tokenizer, *, model_id: str, drafter_id: str | None,
                 context_tokens: int | None = None, stop_ids: Sequence[int] | None = None) -> None:
        self.target, self.drafter = target, drafter
        self.model_id, self.drafter_id = model_id, (drafter_id if drafter is not None else None)
        # A multimodal processor or a plain tokenizer: text needs the tokenizer, templating either.
        self.tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        self._templater = self.tokenizer if getattr(self.tokenizer, "chat_template", None) else tokenizer
        self.device = next(target.parameters()).device
        self.dtype = next(target.parameters()).dtype
        text_config = target.config.get_text_config()
        self.context_tokens = context_tokens or int(getattr(text_config, "max_position_embeddings", 131072))
        eos = stop_ids or target.generation_config.eos_token_id or DEFAULT_STOP_IDS
        self.stop_ids = tuple(eos) if isinstance(eos, (list, tuple)) else (int(eos),)
        self.clock = Clock(self.device)
        self._lock = threading.Lock()
        self._calls = itertools.count()
        if drafter is not None and next(drafter.parameters()).dtype != self.dtype:
            raise ModelError(f"The drafter is {next(drafter.parameters()).dtype} but the target is {self.dtype}: "
                             "load both in the same dtype.")

    # ---- the protocol ----

    def generate(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None, *, use_drafter: bool,
                 settings: GenerationSettings = GenerationSettings(), on_text: TextCallback | None = None,
                 should_stop: StopCheck | None = None) -> GenerationResult:
        if use_drafter and self.drafter is None:
            raise InputError(f"{self.model_id} was loaded without a drafter: run without it or load one.")
        prompt = self.render(messages, tools, settings)
        with self._lock:
            return self._generate(prompt, use_drafter, settings, on_text, should_stop)

    def compare(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None, *,
                settings: GenerationSettings = GenerationSettings(), on_text: TextCallback | None = None,
                on_run: Callable[[Literal["baseline", "drafter"]], None] | None = None,
                should_stop: StopCheck | None = None) -> Comparison:
        if self.drafter is None:
            raise InputError(f"{self.model_id} was loaded without a drafter: nothing to compare against.")
        prompt = self.render(messages, tools, settings)
        order = ("baseline", "drafter") if next(self._calls) % 2 == 0 else ("drafter", "baseline")
        results: dict[str, GenerationResult] = {}
        with self._lock:
            for run in order:
                if on_run is not None:
                    on_run(run)
                results[run] = self._generate(prompt, run == "drafter", settings, on_text, should_stop)
        base, draft = results["baseline"], results["drafter"]
        return Comparison(baseline=base, drafter=draft, first_run=order[0],
                          first_divergence=first_divergence(base.token_ids, draft.token_ids))

    def describe(self) -> dict[str, Any]:
        gpu = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None
        return {
            "target": self.model_id, "drafter": self.drafter_id, "device": str(self.device), "gpu": gpu,
            "dtype": str(self.dtype).removeprefix("torch."), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "context_tokens": self.context_tokens,
        }

    # ---- input ----

    def render(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None,
               settings: GenerationSettings) -> torch.Tensor:
        """Chat-template the conversation to prompt ids on the device, or refuse it with an InputError."""
        if not messages:
            raise InputError("The conversation is empty: send at least one user message.")
        if not any(str(m.get("content") or "").strip() or m.get("tool_calls") for m in messages
                   if m.get("role") != "system"):
            raise InputError("The prompt is empty (only whitespace): type a task.")
        try:
            encoded = self._templater.apply_chat_template(
                list(messages), tools=list(tools) if tools else None, add_generation_prompt=True,
                enable_thinking=settings.enable_thinking, return_dict=True, return_tensors="pt")
        except Exception as e:  # noqa: BLE001 - a template error is a bad request, not a crash
            raise InputError(f"The conversation could not be rendered with the chat template: {e}") from e
        ids = encoded["input_ids"]
        prompt_tokens = int(ids.shape[-1])
        if prompt_tokens + settings.max_new_tokens > self.context_tokens:
            raise InputError(f"The prompt is {prompt_tokens} tokens; with max_new_tokens={settings.max_new_tokens} "
                             f"it exceeds the model's context of {self.context_tokens} tokens. Shorten the task or "
                             "lower max new tokens.")
        return ids.to(self.device)

    # ---- one measured generation ----

    def _generate(self, prompt: torch.Tensor, use_drafter: bool, settings: GenerationSettings,
                  on_text: TextCallback | None, should_stop: StopCheck | None) -> GenerationResult:
        k = settings.draft_tokens
        target_timer = ForwardTimer(self.clock).attach(self.target)
        draft_timer = ForwardTimer(self.clock).attach(self.drafter) if use_drafter else None
        recorder = RoundRecorder(self._decode, self.stop_ids, on_text=on_text,
                                 drafted_so_far=(lambda: draft_timer.calls) if draft_timer else (lambda: 0))
        stopper = _StopWhen(should_stop or (lambda: False))
        kwargs: dict[str, Any] = {}
        if use_drafter:
            # Transformers 5.22 reads the draft length only here; generate(num_assistant_tokens=...) is ignored.
            self.drafter.generation_config.num_assistant_tokens = k
            self.drafter.generation_config.num_assistant_tokens_schedule = "constant"
            kwargs["assistant_model"] = self.drafter
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            self.clock.sync()
            start_s = time.perf_counter()
            with torch.inference_mode():
                self.target.generate(
                    input_ids=prompt, attention_mask=torch.ones_like(prompt), generation_config=self._config(settings),
                    streamer=recorder, stopping_criteria=StoppingCriteriaList([stopper]), **kwargs)
            self.clock.sync()
            end_s = time.perf_counter()
        except torch.OutOfMemoryError as e:
            self._free_memory()
            raise ModelError(f"Out of GPU memory after a {prompt.shape[-1]}-token prompt: lower max new tokens, "
                             "shorten the conversation or pick a smaller model. The memory was released.") from e
        finally:
            target_timer.detach()
            if draft_timer:
                draft_timer.detach()
        return self._result(prompt, recorder, stopper, settings, use_drafter, start_s, end_s, target_timer, draft_timer)

    def _config(self, settings: GenerationSettings) -> GenerationConfig:
        config = GenerationConfig(
            max_new_tokens=settings.max_new_tokens, eos_token_id=list(self.stop_ids),
            pad_token_id=self.target.generation_config.pad_token_id or 0, cache_implementation="dynamic")
        if settings.is_greedy:
            config.do_sample = False
        else:
            top_k = getattr(self.target.generation_config, "top_k", None)
            config.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p, top_k=top_k or 0)
        return config

    def _result(self, prompt, recorder: RoundRecorder, stopper: _StopWhen, settings: GenerationSettings,
                use_drafter: bool, start_s: float, end_s: float, target_timer: ForwardTimer,
                draft_timer: ForwardTimer | None) -> GenerationResult:
        recorder.end()
        ids = recorder.token_ids
        first_s = recorder.rounds[0].at_s if recorder.rounds else end_s
        text_ids = ids[:-1] if ids and ids[-1] in self.stop_ids else ids
        if recorder.stopped_at_stop_token:
            stop_reason = "eos"
        elif stopper.fired:
            stop_reason = "stopped"
        else:
            stop_reason = "max_new_tokens"
        drafter_stats = None
        provenance = None
        if use_drafter:
            rounds = recorder.rounds[1:]  # the first pass is the prefill: nothing drafted before it
            drafted = [r.drafted for r in rounds]
            accepted = [r.accepted for r in rounds]
            drafter_stats = DrafterStats(
                draft_tokens=settings.draft_tokens, rounds=len(rounds), drafted_tokens=sum(drafted),
                accepted_tokens=sum(accepted),
                accepted_by_position=accepted_by_position(drafted, accepted, settings.draft_tokens),
                draft_s=draft_timer.seconds(), verify_s=target_timer.seconds(first=1))
            provenance = tuple(recorder.provenance())
        peak = int(torch.cuda.max_memory_allocated(self.device)) if self.device.type == "cuda" else None
        stats = GenerationStats(
            used_drafter=use_drafter, prompt_tokens=int(prompt.shape[-1]), new_tokens=len(ids),
            prefill_s=first_s - start_s, decode_s=end_s - first_s, wall_s=end_s - start_s, peak_mem_bytes=peak,
            drafter=drafter_stats)
        return GenerationResult(
            text=self._decode(text_ids), token_ids=tuple(ids),
            token_texts=tuple(self._decode([t]) for t in ids), stop_reason=stop_reason, stats=stats,
            provenance=provenance)

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    # ---- lifecycle ----

    def warm_up(self) -> None:
        """Run both ways once so one-time costs (kernels, allocator, caches) stay out of measured calls."""
        settings = GenerationSettings(max_new_tokens=WARM_UP_TOKENS)
        messages = [{"role": "user", "content": "Say hello."}]
        self.generate(messages, use_drafter=False, settings=settings)
        if self.drafter is not None:
            self.generate(messages, use_drafter=True, settings=settings)

    def _free_memory(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def close(self) -> None:
        """Drop the weights and give the memory back (before loading another model)."""
        with self._lock:
            self.target = self.drafter = None
            self._free_memory()
