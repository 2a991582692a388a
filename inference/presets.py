"""Model presets: the names users type and the Hub ids behind them. Knows nothing of torch or loading."""

from __future__ import annotations

from dataclasses import dataclass

from protocol import InputError


@dataclass(frozen=True)
class Preset:
    target_id: str
    drafter_id: str
    weights_gb: float  # bf16 target + drafter weights: the floor of GPU memory the preset needs
    hardware: str
    stand_in: str | None = None  # offline stand-ins only: what it is, in one sentence the page shows as a banner
    draft_tokens: int = 6  # the k the page starts at: the drafter's own num_assistant_tokens (6 in Google's)


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", "tiny", 0.0, "any CPU; random weights made in code, no download",
                   stand_in="random weights made in code with Gemma 4's architecture: its text is gibberish, its "
                            "drafter is never accepted, and its timings are not Gemma 4's"),
    "mini": Preset("mini", "mini", 0.0, "any CPU; trained here, its weights ship in the repo (about 10 MB)",
                   stand_in="a small model trained here (under an hour on two CPU cores) on generated agent "
                            "transcripts of the example tasks, with Gemma 4's architecture and format, not Gemma "
                            "4's weights: it calls tools in Gemma 4's format and four of the eight examples end with "
                            "a right answer, but on other tasks it often copies the wrong numbers or loops",
                   draft_tokens=4),  # its drafter was trained to draft 4 (inference/weights/mini/manifest.json)
    "e2b": Preset("google/gemma-4-E2B-it", "google/gemma-4-E2B-it-assistant", 10.0, "one 16-24 GB GPU (L4, A10G)"),
    "e4b": Preset("google/gemma-4-E4B-it", "google/gemma-4-E4B-it-assistant", 16.0, "one 24 GB GPU (L4, A10G)"),
    "26b-a4b": Preset("google/gemma-4-26B-A4B-it", "google/gemma-4-26B-A4B-it-assistant", 52.0,
                      "one 80 GB GPU (A100, H100)"),
    "31b": Preset("google/gemma-4-31B-it", "google/gemma-4-31B-it-assistant", 63.0, "one 80 GB GPU (A100, H100)"),
}


def draft_tokens_for(model: str) -> int:
    """The draft length a model's drafter ships with: its preset's, else 6 (every Google -assistant drafter)."""
    preset = PRESETS.get((model or "").strip().lower())
    return preset.draft_tokens if preset is not None else Preset.draft_tokens


def resolve_model(model: str, drafter: str | None = None) -> tuple[str, str | None]:
    """Map a preset name, Hub id or local path to (target id, drafter id); the drafter may be None."""
    name = (model or "").strip()
    if not name:
        raise InputError(f"No model given: pick a preset ({', '.join(PRESETS)}) or a Hub id such as "
                         "google/gemma-4-E2B-it.")
    preset = PRESETS.get(name.lower())
    if preset is not None:
        return preset.target_id, (drafter or preset.drafter_id)
    if "/" not in name and not name.startswith((".", "~")):
        raise InputError(f"Unknown preset {name!r}: use one of {', '.join(PRESETS)}, a Hub id (ORG/NAME) "
                         "or a local path.")
    if drafter is None and name.startswith("google/gemma-4-") and name.endswith("-it"):
        drafter = f"{name}-assistant"  # Google's naming: every -it target has an -it-assistant drafter
    return name, drafter
