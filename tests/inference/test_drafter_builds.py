"""Guards the Transformers pin: the Gemma 4 drafter class must build, and the tiny pair must be faithful."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import transformers
from transformers import Gemma4AssistantConfig, Gemma4AssistantForCausalLM, Gemma4ForCausalLM

from inference.loading import PINNED_TRANSFORMERS, check_drafter_support
from inference.tiny import build_tiny_pair

SHARED = Path(__file__).resolve().parents[3] / "shared" / "gemma4"


def test_installed_transformers_is_the_pinned_one():
    assert transformers.__version__ == PINNED_TRANSFORMERS
    pinned = (Path(__file__).resolve().parents[2] / "requirements.txt").read_text()
    assert f"transformers=={PINNED_TRANSFORMERS}" in pinned


def test_drafter_class_builds_with_every_layer_kv_shared():
    check_drafter_support()  # raises ModelError on a Transformers that cannot build it (5.23.0 does)
    _, drafter = build_tiny_pair()
    text = drafter.config.get_text_config()
    assert isinstance(drafter, Gemma4AssistantForCausalLM)
    assert text.num_kv_shared_layers == text.num_hidden_layers


def test_tiny_pair_keeps_e2b_architecture():
    target, drafter = build_tiny_pair()
    config = target.config
    assert isinstance(target, Gemma4ForCausalLM)
    assert set(config.layer_types) == {"sliding_attention", "full_attention"}
    assert config.layer_types[-1] == "full_attention"
    assert 0 < config.num_kv_shared_layers < config.num_hidden_layers
    assert config.hidden_size_per_layer_input > 0 and target.model.embed_tokens_per_layer is not None
    assert drafter.config.use_ordered_embeddings and drafter.config.backbone_hidden_size == config.hidden_size
    assert next(drafter.parameters()).dtype == next(target.parameters()).dtype


def test_tiny_token_ordering_is_a_permutation():
    _, drafter = build_tiny_pair()
    ordering = drafter.masked_embedding.token_ordering
    vocab = drafter.config.get_text_config().vocab_size
    assert torch.equal(ordering.sort().values, torch.arange(vocab))


def test_tiny_pair_is_the_same_on_every_build():
    (t1, d1), (t2, d2) = build_tiny_pair(), build_tiny_pair()
    assert torch.equal(t1.lm_head.weight, t2.lm_head.weight)
    assert torch.equal(d1.pre_projection.weight, d2.pre_projection.weight)


def test_real_e2b_drafter_config_builds_when_shared_data_is_present():
    path = SHARED / "E2B-it-assistant.config.json"
    if not path.exists():
        import pytest
        pytest.skip("../shared/gemma4 is not here; the project runs without it")
    config = Gemma4AssistantConfig(**{k: v for k, v in json.loads(path.read_text()).items()
                                      if k not in ("architectures", "transformers_version")})
    with torch.device("meta"):
        drafter = Gemma4AssistantForCausalLM(config)
    _, tiny = build_tiny_pair()
    assert type(drafter) is type(tiny)
    real_text, tiny_text = config.get_text_config(), tiny.config.get_text_config()
    assert tiny_text.layer_types == real_text.layer_types  # same pattern: three sliding, one full
    assert tiny.config.num_centroids == config.num_centroids
