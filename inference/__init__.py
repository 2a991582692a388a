"""Gemma 4 target + MTP drafter inference: loading, measured generation, benchmarks. The only torch importer.

Knows nothing of agents, LangGraph or Gradio.
"""

from inference.engine import Engine
from inference.loading import (DTYPES, ENGINES, check_drafter_support, cuda_available, default_model, gpu_memory_bytes,
                               load_engine)
from inference.presets import PRESETS, Preset, draft_tokens_for, resolve_model

__all__ = ["DTYPES", "ENGINES", "Engine", "PRESETS", "Preset", "check_drafter_support", "cuda_available", "default_model",
           "draft_tokens_for", "gpu_memory_bytes", "load_engine", "resolve_model"]
