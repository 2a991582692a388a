"""Check a model before the server frees the one it serves: it exists, its config is reachable, it fits.

Used by ui.models when the owner allows model switching. Each failure is a ModelError whose message says
the cause and what to do. The Hub and the device are reached through callables a test replaces.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from inference import PRESETS, cuda_available, resolve_model
from protocol import ModelError

HEADROOM = 1.15  # weights are not all: KV cache, activations and the CUDA context need room too
GB = 1e9


def fetch_hub_config(repo_id: str, token: str | None) -> None:
    """Download the repo's config.json (small): proves the repo exists and this server may read it."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError

    try:
        hf_hub_download(repo_id, "config.json", token=token)
    except GatedRepoError as e:
        raise ModelError(f"{repo_id} is gated: accept its licence on the Hub and set HF_TOKEN on the server.") from e
    except RepositoryNotFoundError as e:
        raise ModelError(f"{repo_id} was not found on the Hub (or is private): check the id.") from e
    except EntryNotFoundError as e:
        raise ModelError(f"{repo_id} has no config.json: it is not a Transformers checkpoint.") from e
    except Exception as e:  # noqa: BLE001 - network and disk failures: say what happened
        raise ModelError(f"Could not read {repo_id}'s config from the Hub ({type(e).__name__}: {e}).") from e


def hub_weights_bytes(repo_id: str, token: str | None, bytes_per_param: int) -> float | None:
    """Weight bytes from the repo's safetensors index, at the dtype we load in; None when unknown."""
    try:
        from huggingface_hub import get_safetensors_metadata

        return float(sum(get_safetensors_metadata(repo_id, token=token).parameter_count.values()) * bytes_per_param)
    except Exception:  # noqa: BLE001 - no index: the size is unknown, the load itself will tell
        return None


def memory_capacity() -> tuple[float, str] | None:
    """(bytes, what) of the memory a model loads into: the GPU's, or this machine's RAM."""
    if cuda_available():
        import torch  # only to read the device's size; all model work stays in inference/

        return float(torch.cuda.get_device_properties(0).total_memory), "GPU"
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")), "machine's RAM"
    except (ValueError, OSError):
        return None


def preflight(model: str, drafter: str | None, *, token: str | None = None, bytes_per_param: int = 2,
              fetch_config: Callable[[str, str | None], None] = fetch_hub_config,
              weights_bytes: Callable[[str, str | None, int], float | None] = hub_weights_bytes,
              capacity: Callable[[], tuple[float, str] | None] = memory_capacity) -> None:
    """Raise ModelError (cause and fix) when `model` (+ `drafter`) cannot be loaded here; return otherwise."""
    target_id, drafter_id = resolve_model(model, drafter)  # InputError (a ModelError) for an unknown preset
    preset = PRESETS.get(model.strip().lower())
    if preset is not None and preset.stand_in:  # built in code or shipped in the repo: nothing to reach
        return
    needed = 0.0
    for repo in (target_id, drafter_id):
        if repo is None:
            continue
        local = Path(repo).expanduser()
        if repo.startswith((".", "/", "~")) or local.exists():
            if not (local / "config.json").is_file():
                raise ModelError(f"{repo} does not exist or holds no config.json: give a checkpoint folder.")
            needed += sum(f.stat().st_size for f in local.glob("*.safetensors")) * bytes_per_param / 2
            continue
        fetch_config(repo, token)
        if preset is None:
            needed += weights_bytes(repo, token, bytes_per_param) or 0.0  # unknown size: the load will tell
    if preset is not None:
        needed = preset.weights_gb * GB * bytes_per_param / 2
    room = capacity()
    if needed and room and needed * HEADROOM > room[0]:
        raise ModelError(f"{model} needs about {needed * HEADROOM / GB:.0f} GB ({needed / GB:.0f} GB of weights) but "
                         f"this server's {room[1]} has {room[0] / GB:.0f} GB: pick a smaller model.")
