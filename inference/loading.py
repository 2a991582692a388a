"""Loading a target + drafter pair onto a device, with failures that say what to do. No agents, no Gradio.

bf16 on a GPU, fp32 on a CPU, the drafter always in the target's dtype. A multimodal Gemma 4 checkpoint is
loaded text-only where Transformers allows it (its language model under `Gemma4ForCausalLM`, vision and audio
towers skipped); otherwise whole. The Hub token is passed explicitly to every loader call, never written.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import torch
import transformers

from inference.engine import Engine
from inference.presets import PRESETS, resolve_model
from protocol import InputError, ModelError

log = logging.getLogger(__name__)
Progress = Callable[[str, "float | None"], None]
PINNED_TRANSFORMERS = "5.22.2"
ENGINES = ("fast", "transformers")  # our own decode loop (default); Transformers' generate(), the reference
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
# Checkpoint keys of the multimodal model -> the text-only model's names.
TEXT_ONLY_KEYS = {r"^model\.language_model\.": "model."}


def cuda_available() -> bool:
    return torch.cuda.is_available()


def gpu_memory_bytes() -> int | None:
    """Total memory of the first CUDA device, or None without one (for the page's fit check)."""
    return int(torch.cuda.get_device_properties(0).total_memory) if cuda_available() else None


def default_model() -> str:
    """`e2b` where a GPU is at hand; the offline `mini` stand-in (trained here) elsewhere."""
    return "e2b" if cuda_available() else "mini"


def check_drafter_support() -> None:
    """Build a tiny Gemma4AssistantForCausalLM on the meta device; raise ModelError if this Transformers can't."""
    from inference.tiny import build_tiny_drafter_on_meta

    try:
        build_tiny_drafter_on_meta()
    except Exception as e:  # noqa: BLE001 - any failure here means this version cannot build the drafter
        raise ModelError(
            f"transformers {transformers.__version__} cannot build the Gemma 4 drafter "
            f"(Gemma4AssistantForCausalLM): {type(e).__name__}: {e}. Install the pinned version: "
            f"pip install transformers=={PINNED_TRANSFORMERS}") from e


def load_engine(model: str, drafter: str | None = None, *, token: str | None = None,
                on_progress: Progress | None = None, device: str | None = None, warm_up: bool = True,
                engine: str = "fast", dtype: str | None = None, cuda_graphs: bool | None = None,
                max_prompt_tokens: int | None = None) -> Engine:
    """Load `model` (preset, Hub id or local path) and its drafter; warm both up; return the engine.

    engine: "fast" (our decode loop) or "transformers" (Transformers' generate, the reference).
    dtype: "bf16" or "fp32"; None picks bf16 on a GPU, fp32 on a CPU.
    cuda_graphs: None captures CUDA graphs where a GPU allows it; False keeps the eager loop (ZeroGPU).
    max_prompt_tokens: prompts longer than this are refused before any model call.
    """
    progress = on_progress or (lambda message, fraction: None)
    if engine not in ENGINES:
        raise InputError(f"Unknown engine {engine!r}: use one of {', '.join(ENGINES)}.")
    if dtype is not None and dtype not in DTYPES:
        raise InputError(f"Unknown dtype {dtype!r}: use one of {', '.join(DTYPES)}.")
    target_id, drafter_id = resolve_model(model, drafter)
    where = torch.device(device or ("cuda" if cuda_available() else "cpu"))
    dtype = DTYPES[dtype] if dtype else (torch.bfloat16 if where.type == "cuda" else torch.float32)
    options = dict(engine=engine, cuda_graphs=cuda_graphs, max_prompt_tokens=max_prompt_tokens)
    try:
        if target_id == "tiny":
            engine = _load_tiny(where, dtype, progress, options)
        elif target_id == "mini":
            engine = _load_mini(where, dtype, progress, options)
        else:
            engine = _load_hub(target_id, drafter_id, where, dtype, token, progress, options)
        if warm_up:
            progress("Warming up (one short generation each way)…", 0.95)
            engine.warm_up()
    except (ModelError, InputError):
        raise
    except Exception as e:  # noqa: BLE001 - every load failure becomes one message with cause and fix
        raise explain_load_error(e, target_id, drafter_id) from e
    progress("Ready.", 1.0)
    return engine


def _load_tiny(where: torch.device, dtype: torch.dtype, progress: Progress, options: dict) -> Engine:
    from inference.tiny import TINY_DRAFTER_ID, TINY_TARGET_ID, build_tiny_pair
    from inference.tokenizer import build_tiny_tokenizer

    progress("Building the offline tiny stand-in (random weights, no download)…", 0.2)
    target, drafter = build_tiny_pair(dtype)
    return Engine(target.to(where), drafter.to(where), build_tiny_tokenizer(), model_id=TINY_TARGET_ID,
                  drafter_id=TINY_DRAFTER_ID, **options)


def _load_mini(where: torch.device, dtype: torch.dtype, progress: Progress, options: dict) -> Engine:
    from inference.mini import MINI_DRAFTER_ID, MINI_TARGET_ID, load_mini_pair, load_mini_tokenizer

    progress("Loading the offline mini pair (trained here on agent transcripts; its weights are in the repo)…", 0.2)
    target, drafter = load_mini_pair(dtype)
    return Engine(target.to(where), drafter.to(where), load_mini_tokenizer(), model_id=MINI_TARGET_ID,
                  drafter_id=MINI_DRAFTER_ID, **options)


def _load_hub(target_id: str, drafter_id: str | None, where: torch.device, dtype: torch.dtype,
              token: str | None, progress: Progress, options: dict) -> Engine:
    from transformers import AutoModelForCausalLM

    from inference import checkpoints

    if drafter_id is not None:
        check_drafter_support()
    progress(f"Checking {target_id}" + (f" and {drafter_id}" if drafter_id else "") + "…", 0.02)
    target_config = checkpoints.load_config(target_id, "target", token)  # config files only: fail before weights
    checkpoints.check_target(target_config, target_id)
    if drafter_id is not None:
        checkpoints.check_drafter(checkpoints.load_config(drafter_id, "drafter", token), drafter_id, target_config)
    progress(f"Downloading or opening {target_id} (the first download of a real checkpoint takes minutes)…", 0.05)
    tokenizer = checkpoints.load_tokenizer(target_id, token)
    progress(f"Loading {target_id} weights onto {where.type}…", 0.3)
    target = load_target(os.path.expanduser(target_id), where, dtype, token)
    drafter_model = None
    if drafter_id is not None:
        progress(f"Loading the drafter {drafter_id}…", 0.8)
        drafter_model = AutoModelForCausalLM.from_pretrained(
            os.path.expanduser(drafter_id), dtype=dtype, token=token).to(where).eval()
    return Engine(target, drafter_model, tokenizer, model_id=target_id, drafter_id=drafter_id, **options)


def load_target(target_id: str, where: torch.device, dtype: torch.dtype, token: str | None):
    """The text model of a (possibly multimodal) Gemma 4 checkpoint; whole model where text-only fails."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText, Gemma4ForCausalLM

    config = AutoConfig.from_pretrained(target_id, token=token)
    if getattr(config, "text_config", None) is None:
        return AutoModelForCausalLM.from_pretrained(target_id, dtype=dtype, token=token).to(where).eval()
    try:
        model = Gemma4ForCausalLM.from_pretrained(
            target_id, config=config.get_text_config(), key_mapping=TEXT_ONLY_KEYS, dtype=dtype, token=token)
        return model.to(where).eval()
    except torch.OutOfMemoryError:
        raise
    except Exception as e:  # noqa: BLE001 - fall back to the whole multimodal model
        log.warning("text-only load of %s failed (%s); loading the whole multimodal model", target_id, e)
        return AutoModelForImageTextToText.from_pretrained(target_id, dtype=dtype, token=token).to(where).eval()


def explain_load_error(error: Exception, target_id: str, drafter_id: str | None) -> ModelError:
    """One sentence of cause and one of fix for each way a load fails."""
    from huggingface_hub import errors as hub

    what = f"{target_id}" + (f" with drafter {drafter_id}" if drafter_id else "")
    name = type(error).__name__
    if isinstance(error, hub.GatedRepoError):
        return ModelError(f"{what} is gated and this server has no access: accept the licence on its Hub page "
                          "and set HF_TOKEN (a Space secret) to a token of that account.")
    if isinstance(error, (hub.RepositoryNotFoundError, hub.RevisionNotFoundError)):
        return ModelError(f"{what}: no such model on the Hub (or it is private). Check the id, or set HF_TOKEN "
                          "for a private model.")
    if isinstance(error, hub.LocalEntryNotFoundError) or "connect" in str(error).lower() or name in (
            "ConnectError", "ConnectionError", "ConnectTimeout", "OfflineModeIsEnabled"):
        return ModelError(f"Could not reach the Hugging Face Hub to download {what}, and it is not in the local "
                          "cache. Check the network, or download it once with `hf download` and set "
                          "HF_HUB_OFFLINE=1. Without a network, use --model tiny.")
    if isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower():
        sizes = ", ".join(f"{n} ~{p.weights_gb:.0f} GB" for n, p in PRESETS.items() if p.weights_gb)
        return ModelError(f"Not enough GPU memory to load {what} (bf16 weights: {sizes}). Pick a smaller preset "
                          "or a larger GPU.")
    if isinstance(error, OSError) and "does not appear to have" in str(error):
        return ModelError(f"{what}: the repository lacks the files Transformers needs ({error}).")
    return ModelError(f"Loading {what} failed: {name}: {error}")
