"""The loop on a 26B/31B-style pair, scaled down: K=V full-attention layers, no per-layer embeddings, no KV-shared
target layers, and a drafter with a plain lm_head. Greedy output equals Transformers' and the target alone, and
acceptance stats equal the ground truth at partial acceptance.
"""

from __future__ import annotations

import pytest
import torch
from transformers import Gemma4AssistantConfig, Gemma4AssistantForCausalLM, Gemma4ForCausalLM, Gemma4TextConfig

from inference.engine import Engine
from inference.tiny import tiny_target_config
from inference.tokenizer import STOP_TOKEN_IDS, build_tiny_tokenizer
from protocol import GenerationSettings
from tests.inference.oracle import PartialDrafter, expected_stats

TASK = [{"role": "user", "content": "Write a function that adds two numbers, with tests."}]
LAYERS = (["sliding_attention"] * 5 + ["full_attention"]) * 2  # 31B's rhythm: five sliding, one full


def large_style_pair():
    base = {k: v for k, v in tiny_target_config().to_dict().items()
            if k not in ("layer_types", "num_hidden_layers", "num_kv_shared_layers", "hidden_size_per_layer_input",
                         "use_double_wide_mlp", "attention_k_eq_v", "num_global_key_value_heads", "per_layer_config")}
    target_config = Gemma4TextConfig(**{**base, "layer_types": LAYERS, "num_hidden_layers": len(LAYERS),
                                        "num_kv_shared_layers": 0, "hidden_size_per_layer_input": 0,
                                        "vocab_size_per_layer_input": 0, "num_key_value_heads": 2, "attention_k_eq_v": True,
                                        "num_global_key_value_heads": 1})
    drafter_text = {**base, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 4,
                    "layer_types": ["sliding_attention"] * 3 + ["full_attention"], "num_kv_shared_layers": 4,
                    "hidden_size_per_layer_input": 0, "vocab_size_per_layer_input": 0, "num_key_value_heads": 2, "attention_k_eq_v": True,
                    "num_global_key_value_heads": 1, "final_logit_softcapping": None}
    drafter_config = Gemma4AssistantConfig(text_config=drafter_text, backbone_hidden_size=target_config.hidden_size,
                                           use_ordered_embeddings=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(31)
        target = Gemma4ForCausalLM(target_config).eval()
        drafter = Gemma4AssistantForCausalLM(drafter_config).eval()
    for model in (target, drafter):
        model.generation_config.eos_token_id = list(STOP_TOKEN_IDS)
    return target, drafter


@pytest.fixture(scope="module")
def engines():
    target, drafter = large_style_pair()
    assert not any(layer.self_attn.is_kv_shared_layer for layer in target.model.layers)
    assert any(layer.self_attn.v_proj is None for layer in target.model.layers)  # K=V on the full layers
    tokenizer = build_tiny_tokenizer()
    return {kind: Engine(target, drafter, tokenizer, model_id="large-style", drafter_id="large-style", engine=kind)
            for kind in ("fast", "transformers")}


@pytest.mark.parametrize("k", [1, 3])
def test_greedy_output_equals_transformers_and_the_target_alone(engines, k):
    settings = GenerationSettings(max_new_tokens=30, draft_tokens=k)  # with the prompt, past the window of 32
    alone = engines["transformers"].generate(TASK, use_drafter=False, settings=settings).token_ids
    for engine in engines.values():
        assert engine.generate(TASK, use_drafter=True, settings=settings).token_ids == alone


def test_partial_acceptance_stats_equal_the_ground_truth(engines):
    settings = GenerationSettings(max_new_tokens=40, draft_tokens=4)
    alone = engines["transformers"].generate(TASK, use_drafter=False, settings=settings).token_ids
    for engine in engines.values():
        prompt_tokens = engine.render(TASK, None, settings).shape[-1]
        with PartialDrafter(engine.target, engine.drafter, prompt_tokens=prompt_tokens, rate=0.3,
                            reference=alone) as oracle:
            result = engine.generate(TASK, use_drafter=True, settings=settings)
        expected = expected_stats(oracle.rounds, result.token_ids, prompt_tokens)
        assert result.token_ids == alone
        assert result.provenance == expected.provenance and result.draft_rejected == expected.draft_rejected
        assert result.stats.drafter.accepted_tokens == sum(expected.accepted) > 0
