"""Server settings read once from the environment: where we run (a Space, ZeroGPU) and the owner's limits.

Pure: takes a mapping (os.environ in app.py, a dict in tests). Knows nothing of gradio or models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from agents import DEFAULT_MAX_STEPS
from ui.runner import GpuBudget

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    if value:
        raise ValueError(f"{name}={env[name]!r}: use 1 or 0.")
    return default


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}={raw!r}: give a whole number.") from None
    if value < minimum:
        raise ValueError(f"{name}={value}: must be at least {minimum}.")
    return value


def _optional_int(env: Mapping[str, str], name: str, minimum: int = 1) -> int | None:
    return _int(env, name, minimum, minimum) if env.get(name, "").strip() else None


@dataclass(frozen=True)
class ServerSettings:
    on_space: bool  # SPACE_ID is set on every Hugging Face Space
    zero_gpu: bool  # SPACES_ZERO_GPU is set on ZeroGPU Spaces
    allow_model_switch: bool  # an owner setting: any visitor could otherwise unload the shared model
    allow_unsandboxed: bool
    max_prompt_tokens: int  # prompts longer than this are refused before any model call
    max_queue: int  # runs admitted (running or waiting) before new ones get a busy message
    max_new_tokens: int
    draft_tokens: int | None  # None: the model's own (inference.draft_tokens_for)
    max_steps: int
    gpu: GpuBudget

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ServerSettings":
        on_space = bool(env.get("SPACE_ID"))
        zero_gpu = _flag(env, "SPACES_ZERO_GPU", False)
        # ZeroGPU loads on the main thread at start-up only, so it never switches.
        allow_switch = _flag(env, "PLAYGROUND_ALLOW_MODEL_SWITCH", not on_space) and not zero_gpu
        return cls(
            on_space=on_space, zero_gpu=zero_gpu, allow_model_switch=allow_switch,
            allow_unsandboxed=_flag(env, "PLAYGROUND_ALLOW_UNSANDBOXED", False),
            max_prompt_tokens=_int(env, "PLAYGROUND_MAX_PROMPT_TOKENS", 16384, 64),
            max_queue=_int(env, "PLAYGROUND_MAX_QUEUE", 8),
            max_new_tokens=_int(env, "PLAYGROUND_MAX_NEW_TOKENS", 512),
            draft_tokens=_optional_int(env, "PLAYGROUND_DRAFT_TOKENS"),
            max_steps=_int(env, "PLAYGROUND_MAX_STEPS", DEFAULT_MAX_STEPS),
            gpu=GpuBudget(cap_s=_int(env, "PLAYGROUND_GPU_DURATION_S", 180, 30),
                          tokens_per_s=float(_int(env, "PLAYGROUND_GPU_TOKENS_PER_S", 20))),
        )
