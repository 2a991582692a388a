"""Random-weight Gemma 4 pairs at the real E2B and 31B shapes, for measuring per-round costs on a GPU.

Acceptance needs real weights, but the cost of a target pass, a drafter step and the loop's glue depends
only on the shapes, which these configs copy from the real checkpoints (E2B drafter config byte-exact; the
others rebuilt from Transformers' Gemma 4 conversion script, see docs/PERFORMANCE.md). No agents, no Gradio.
"""

from __future__ import annotations

import torch
from transformers import Gemma4AssistantConfig, Gemma4AssistantForCausalLM, Gemma4ForCausalLM, Gemma4TextConfig

from inference.tiny import build_tiny_pair

_ROPE = {
    "full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0, "rope_type": "proportional"},
    "sliding_attention": {"rope_theta": 10_000.0, "rope_type": "default"},
}


def _pattern(layers: int, period: int) -> list[str]:
    return ["full_attention" if (i + 1) % period == 0 else "sliding_attention" for i in range(layers)]


def target_config(shape: str) -> Gemma4TextConfig:
    common = dict(vocab_size=262_144, rope_parameters=_ROPE, final_logit_softcapping=30.0, head_dim=256,
                  hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True)
    if shape == "e2b":  # 35 layers (4 sliding : 1 full), last 20 KV-shared, per-layer embeddings
        return Gemma4TextConfig(hidden_size=1536, intermediate_size=6144, num_hidden_layers=35, num_attention_heads=8,
                                num_key_value_heads=1, layer_types=_pattern(35, 5), num_kv_shared_layers=20,
                                hidden_size_per_layer_input=256, vocab_size_per_layer_input=262_144,
                                use_double_wide_mlp=True, sliding_window=512, global_head_dim=512,
                                max_position_embeddings=131_072, **common)
    if shape == "31b":  # 60 layers (5 sliding : 1 full), K=V on full layers with 4 KV heads
        return Gemma4TextConfig(hidden_size=5376, intermediate_size=21504, num_hidden_layers=60, num_attention_heads=32,
                                num_key_value_heads=16, layer_types=_pattern(60, 6), num_kv_shared_layers=0,
                                hidden_size_per_layer_input=0, vocab_size_per_layer_input=262_144,
                                attention_k_eq_v=True, num_global_key_value_heads=4, global_head_dim=512,
                                sliding_window=1024, max_position_embeddings=262_144, **common)
    raise ValueError(f"unknown shape {shape!r}: use tiny, e2b or 31b")


def drafter_config(shape: str, target: Gemma4TextConfig) -> Gemma4AssistantConfig:
    hidden, heads, kv_heads, inter, ordered = {"e2b": (256, 4, 1, 2048, True), "31b": (1024, 32, 16, 8192, False)}[shape]
    text = Gemma4TextConfig(
        vocab_size=262_144, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=4, num_attention_heads=heads,
        num_key_value_heads=kv_heads, head_dim=256, global_head_dim=512,
        num_global_key_value_heads=4 if shape == "31b" else None, attention_k_eq_v=shape == "31b",
        layer_types=["sliding_attention"] * 3 + ["full_attention"], num_kv_shared_layers=4,
        hidden_size_per_layer_input=0, vocab_size_per_layer_input=0, sliding_window=512 if shape == "e2b" else 1024,
        rope_parameters=_ROPE, max_position_embeddings=131_072 if shape == "e2b" else 262_144, tie_word_embeddings=True)
    return Gemma4AssistantConfig(text_config=text, backbone_hidden_size=target.hidden_size,
                                 use_ordered_embeddings=ordered, num_centroids=2048, centroid_intermediate_top_k=32)


def build_pair(shape: str, device: torch.device, dtype: torch.dtype):
    """Target and drafter with random weights at `shape`, made directly on the device."""
    if shape == "tiny":
        target, drafter = build_tiny_pair(dtype)
        return target.to(device), drafter.to(device)
    config = target_config(shape)
    torch.manual_seed(0)
    with torch.device(device):
        target = Gemma4ForCausalLM(config).to(dtype).eval()
        drafter = Gemma4AssistantForCausalLM(drafter_config(shape, config)).to(dtype).eval()
        if drafter.masked_embedding is not None:
            drafter.masked_embedding.token_ordering.copy_(torch.randperm(config.vocab_size))
    drafter.generation_config.eos_token_id = target.generation_config.eos_token_id = [1, 106, 50]
    return target, drafter
