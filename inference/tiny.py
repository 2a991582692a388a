"""The offline `tiny` pair: a Gemma 4 target and MTP drafter made in code, random weights, no download.

Same classes and layer patterns as `google/gemma-4-E2B-it` and its `-assistant` drafter (sliding and full
attention layers, per-layer embeddings, KV-shared tail layers; a drafter whose layers are all KV-shared, with
ordered embeddings, a centroid head and a token ordering that is a real permutation), scaled down so a CPU
test runs in seconds. Knows nothing of generation, agents or Gradio.
"""

from __future__ import annotations

import torch
from transformers import Gemma4AssistantConfig, Gemma4AssistantForCausalLM, Gemma4ForCausalLM, Gemma4TextConfig

from inference.tokenizer import SPECIAL_TOKEN_IDS, STOP_TOKEN_IDS, VOCAB_SIZE

TINY_SEED = 1234
TINY_TARGET_ID = "tiny/gemma-4-stand-in-it"
TINY_DRAFTER_ID = "tiny/gemma-4-stand-in-it-assistant"

# E2B: 35 layers, four sliding then one full, the last 20 KV-shared. Tiny keeps the rhythm at 10 layers.
_TARGET_LAYER_TYPES = (["sliding_attention"] * 4 + ["full_attention"]) * 2
_ROPE = {
    "full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1_000_000.0, "rope_type": "proportional"},
    "sliding_attention": {"rope_theta": 10_000.0, "rope_type": "default"},
}
_SHARED = dict(  # what the drafter must share with the target: it attends to the target's KV cache
    vocab_size=VOCAB_SIZE, head_dim=16, global_head_dim=32, num_key_value_heads=1, sliding_window=32,
    max_position_embeddings=131_072, rope_parameters=_ROPE, rms_norm_eps=1e-6,
    hidden_activation="gelu_pytorch_tanh", pad_token_id=SPECIAL_TOKEN_IDS["<pad>"],
    bos_token_id=SPECIAL_TOKEN_IDS["<bos>"], eos_token_id=SPECIAL_TOKEN_IDS["<eos>"], tie_word_embeddings=True,
)


def tiny_target_config() -> Gemma4TextConfig:
    return Gemma4TextConfig(
        hidden_size=64, intermediate_size=128, num_hidden_layers=len(_TARGET_LAYER_TYPES), num_attention_heads=2,
        layer_types=list(_TARGET_LAYER_TYPES), num_kv_shared_layers=4, hidden_size_per_layer_input=8,
        vocab_size_per_layer_input=VOCAB_SIZE, use_double_wide_mlp=True, final_logit_softcapping=30.0,
        **_SHARED,
    )


def tiny_drafter_config(target: Gemma4TextConfig) -> Gemma4AssistantConfig:
    text = Gemma4TextConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=2,
        layer_types=["sliding_attention"] * 3 + ["full_attention"], num_kv_shared_layers=4,
        hidden_size_per_layer_input=0, vocab_size_per_layer_input=0, use_double_wide_mlp=False,
        final_logit_softcapping=None, **_SHARED,
    )
    return Gemma4AssistantConfig(
        text_config=text, backbone_hidden_size=target.hidden_size, use_ordered_embeddings=True,
        num_centroids=2048, centroid_intermediate_top_k=32,
    )


def build_tiny_pair(dtype: torch.dtype = torch.float32) -> tuple[Gemma4ForCausalLM, Gemma4AssistantForCausalLM]:
    """Target and drafter with weights drawn from a fixed seed: the same pair on every machine."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        target = Gemma4ForCausalLM(tiny_target_config())
        drafter = Gemma4AssistantForCausalLM(tiny_drafter_config(target.config))
        # The default init leaves the ordering all zeros (every centroid points at token 0): use a real one.
        generator = torch.Generator().manual_seed(TINY_SEED)
        drafter.masked_embedding.token_ordering.copy_(torch.randperm(VOCAB_SIZE, generator=generator))
    target.config.name_or_path, drafter.config.name_or_path = TINY_TARGET_ID, TINY_DRAFTER_ID
    # As the real generation_config.json files: stop at <eos>, <turn|> or <|tool_response>; sampling defaults
    # temperature 1, top-k 64, top-p 0.95 (the engine takes top-k from here, the rest from each request);
    # draft 6, constant.
    for model in (target, drafter):
        model.generation_config.eos_token_id = list(STOP_TOKEN_IDS)
    target.generation_config.update(do_sample=True, temperature=1.0, top_k=64, top_p=0.95)
    drafter.generation_config.num_assistant_tokens = 6
    drafter.generation_config.num_assistant_tokens_schedule = "constant"
    return target.to(dtype).eval(), drafter.to(dtype).eval()


def build_tiny_drafter_on_meta() -> Gemma4AssistantForCausalLM:
    """Construct the drafter class without memory: fails loudly on a Transformers that cannot build it."""
    with torch.device("meta"):
        return Gemma4AssistantForCausalLM(tiny_drafter_config(tiny_target_config()))
