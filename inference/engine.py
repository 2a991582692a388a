"""Generation engine: a Gemma 4 target with an optional MTP drafter, every call measured.

Satisfies `protocol.ChatModel`. Knows nothing of agents, LangGraph or Gradio. Renders the chat, refuses bad
requests before any model call, runs one of two decoders and turns what it did into the protocol's results:
"fast" is our own loop (`inference.loop`, optionally under CUDA graphs), "transformers" is Transformers'
`generate(assistant_model=...)` (`inference.reference`), the reference it is tested against.
"""

from __future__ import annotations

import gc
import itertools
import logging
import platform
import threading
import time
from typing import Any, Callable, Literal, Sequence

import torch
import transformers

from inference.graphs import CudaGraphBackend, enable_graphs
from inference.loop import DecodeLoop, LoopRun
from inference.measure import Clock, TextStream, accepted_by_position
from inference.reference import TransformersDecoder
from inference.sampling import Sampling
from protocol import (
    Comparison, DrafterStats, GenerationResult, GenerationSettings, GenerationStats, InputError, Message,
    ModelError, StopCheck, TextCallback, ToolSpec, first_divergence,
)

log = logging.getLogger(__name__)
DEFAULT_STOP_IDS = (1, 106, 50)  # <eos>, <turn|>, <|tool_response>: the real generation_config's eos ids
DEFAULT_MAX_PROMPT_TOKENS = 8192
WARM_UP_TOKENS = 8


class Engine:
    """One target (+ drafter) on one device. Calls are serialized: generation here is batch size 1."""

    def __init__(self, target, drafter, tokenizer, *, model_id: str, drafter_id: str | None,
                 context_tokens: int | None = None, stop_ids: Sequence[int] | None = None, engine: str = "fast",
                 cuda_graphs: bool | None = None, max_prompt_tokens: int | None = None) -> None:
        self.target, self.drafter = target, drafter
        self.model_id, self.drafter_id = model_id, (drafter_id if drafter is not None else None)
        # A multimodal processor or a plain tokenizer: text needs the tokenizer, templating either.
        self.tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
        self._templater = self.tokenizer if getattr(self.tokenizer, "chat_template", None) else tokenizer
        self.device = next(target.parameters()).device
        self.dtype = next(target.parameters()).dtype
        text_config = target.config.get_text_config()
        self.context_tokens = context_tokens or int(getattr(text_config, "max_position_embeddings", 131072))
        self.max_prompt_tokens = min(max_prompt_tokens or DEFAULT_MAX_PROMPT_TOKENS, self.context_tokens)
        eos = stop_ids or target.generation_config.eos_token_id or DEFAULT_STOP_IDS
        self.stop_ids = tuple(eos) if isinstance(eos, (list, tuple)) else (int(eos),)
        self.top_k = int(getattr(target.generation_config, "top_k", None) or 0)
        self.clock = Clock(self.device)
        self._lock = threading.Lock()
        self._calls = itertools.count()
        if drafter is not None and next(drafter.parameters()).dtype != self.dtype:
            raise ModelError(f"The drafter is {next(drafter.parameters()).dtype} but the target is {self.dtype}: "
                             "load both in the same dtype.")
        self.engine = engine
        self._graphs_off: str | None = None  # why the fast loop runs without CUDA graphs
        if engine == "fast":
            self.decoder = DecodeLoop(target, drafter, stop_ids=self.stop_ids)
            if cuda_graphs is False:
                self._graphs_off = "CUDA graphs turned off (cuda_graphs=False)"
            elif self.device.type != "cuda":
                self._graphs_off = "no GPU: CUDA graphs need CUDA"
            else:
                self.enable_graphs(CudaGraphBackend())
        elif engine == "transformers":
            self.decoder = TransformersDecoder(target, drafter, stop_ids=self.stop_ids, clock=self.clock)
        else:
            raise InputError(f"Unknown engine {engine!r}: use fast or transformers.")

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

    def generate_ids(self, prompt: torch.Tensor, *, use_drafter: bool,
                     settings: GenerationSettings = GenerationSettings()) -> GenerationResult:
        """Generate from prompt token ids [1, L] (no chat template): for benchmarks at a chosen context length."""
        if use_drafter and self.drafter is None:
            raise InputError(f"{self.model_id} was loaded without a drafter: run without it or load one.")
        with self._lock:
            return self._generate(prompt.to(self.device), use_drafter, settings, None, None)

    def enable_graphs(self, backend) -> None:
        """Capture the fast loop's steps as CUDA graphs, checked against eager; else record why not."""
        with self._lock:
            self._graphs_off = enable_graphs(self.decoder, backend, k=GenerationSettings().draft_tokens)

    @property
    def decode(self) -> str:
        graphs = getattr(self.decoder, "graphs", None)
        return "cuda-graphs" if graphs is not None and graphs.active else "eager"

    @property
    def fallback_reason(self) -> str | None:
        graphs = getattr(self.decoder, "graphs", None)
        return graphs.fallback_reason if graphs is not None and not graphs.active else self._graphs_off

    def describe(self) -> dict[str, Any]:
        gpu = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None
        return {
            "target": self.model_id, "drafter": self.drafter_id, "device": str(self.device), "gpu": gpu,
            "dtype": str(self.dtype).removeprefix("torch."), "torch": torch.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "context_tokens": self.context_tokens, "max_prompt_tokens": self.max_prompt_tokens,
            "engine": self.engine, "decode": self.decode, "fallback_reason": self.fallback_reason,
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
        if prompt_tokens > self.max_prompt_tokens:
            raise InputError(f"The prompt is {prompt_tokens} tokens; this engine accepts at most "
                             f"{self.max_prompt_tokens} prompt tokens (max_prompt_tokens). Shorten the task or the "
                             "conversation, or start a new one.")
        if prompt_tokens + settings.max_new_tokens > self.context_tokens:
            raise InputError(f"The prompt is {prompt_tokens} tokens; with max_new_tokens={settings.max_new_tokens} "
                             f"it exceeds the model's context of {self.context_tokens} tokens. Shorten the task or "
                             "lower max new tokens.")
        return ids.to(self.device)

    def sampling(self, settings: GenerationSettings) -> Sampling:
        if settings.is_greedy:
            return Sampling()
        return Sampling(temperature=settings.temperature, top_k=self.top_k, top_p=settings.top_p)

    # ---- one measured generation ----

    def _generate(self, prompt: torch.Tensor, use_drafter: bool, settings: GenerationSettings,
                  on_text: TextCallback | None, should_stop: StopCheck | None) -> GenerationResult:
        text = TextStream(self._decode, on_text)
        stop_ids = set(self.stop_ids)
        if settings.seed is not None:
            torch.manual_seed(settings.seed)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            self.clock.sync()
            start_s = time.perf_counter()
            with torch.inference_mode():
                run = self.decoder.generate(
                    prompt, max_new_tokens=settings.max_new_tokens, k=settings.draft_tokens, use_drafter=use_drafter,
                    sampling=self.sampling(settings), should_stop=should_stop,
                    on_tokens=lambda ids: text.put([t for t in ids if t not in stop_ids]))
            self.clock.sync()
            end_s = time.perf_counter()
        except torch.OutOfMemoryError as e:
            self._free_memory()
            raise ModelError(f"Out of GPU memory after a {prompt.shape[-1]}-token prompt: lower max new tokens, "
                             "shorten the conversation or pick a smaller model. The memory was released.") from e
        text.end()
        return self._result(prompt, run, settings, use_drafter, start_s, end_s)

    def _result(self, prompt, run: LoopRun, settings: GenerationSettings, use_drafter: bool, start_s: float,
                end_s: float) -> GenerationResult:
        ids = [t for r in run.rounds for t in r.tokens]
        first_s = run.rounds[0].at_s if run.rounds else end_s
        text_ids = ids[:-1] if ids and ids[-1] in self.stop_ids else ids
        drafter_stats = provenance = rejected = None
        if use_drafter:
            rounds = run.rounds[1:]  # the first pass is the prefill: nothing drafted before it
            drafted = [r.drafted for r in rounds]
            accepted = [r.accepted for r in rounds]
            seconds = lambda spans: sum(self.clock.seconds(a, b) for a, b in spans)  # noqa: E731
            drafter_stats = DrafterStats(
                draft_tokens=settings.draft_tokens, rounds=len(rounds), drafted_tokens=sum(drafted),
                accepted_tokens=sum(accepted),
                accepted_by_position=accepted_by_position(drafted, accepted, settings.draft_tokens),
                draft_s=seconds(run.draft_spans), verify_s=seconds(run.verify_spans))
            provenance = tuple(i < r.accepted for r in run.rounds for i in range(len(r.tokens)))
            rejected = tuple(r.rejected and i == r.accepted for r in run.rounds for i in range(len(r.tokens)))
        peak = int(torch.cuda.max_memory_allocated(self.device)) if self.device.type == "cuda" else None
        stats = GenerationStats(
            used_drafter=use_drafter, prompt_tokens=int(prompt.shape[-1]), new_tokens=len(ids),
            prefill_s=first_s - start_s, decode_s=end_s - first_s, wall_s=end_s - start_s, peak_mem_bytes=peak,
            drafter=drafter_stats)
        return GenerationResult(
            text=self._decode(text_ids), token_ids=tuple(ids),
            token_texts=tuple(self._decode([t]) for t in ids), stop_reason=run.stop_reason, stats=stats,
            provenance=provenance, draft_rejected=rejected)

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
        if isinstance(self.decoder, DecodeLoop):
            self.decoder.kv = None  # the request's cache: made anew by the next call
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def close(self) -> None:
        """Drop the weights and give the memory back (before loading another model)."""
        with self._lock:
            self.target = self.drafter = self.decoder = None
            self._free_memory()
