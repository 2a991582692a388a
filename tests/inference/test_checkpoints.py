"""Real-checkpoint loading on fake checkpoints saved to disk: it works, and each known failure fails fast.

The checkpoints are the tiny pair saved with save_pretrained (same classes as the real ones); the target's
chat template lives only in the processor's chat_template.json, as in some real Gemma 4 repositories.
"Fast" means before any weights load: the weight loaders are watched and must not have been called.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LlamaConfig

import inference.loading as loading
from inference import load_engine
from inference.tiny import build_tiny_pair
from inference.tokenizer import build_tiny_tokenizer
from protocol import GenerationSettings, ModelError

TASK = [{"role": "user", "content": "Say hi."}]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    target, drafter = build_tiny_pair(torch.bfloat16)
    target.save_pretrained(root / "target")
    drafter.save_pretrained(root / "drafter")
    tokenizer = build_tiny_tokenizer()
    template, tokenizer.chat_template = tokenizer.chat_template, None
    tokenizer.save_pretrained(root / "target")
    (root / "target" / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                vocab_size=1000).save_pretrained(root / "llama")
    return root


@pytest.fixture
def weight_loads(monkeypatch):
    """Names of the checkpoints whose weights started loading."""
    calls = []
    load_target = loading.load_target
    monkeypatch.setattr(loading, "load_target", lambda target_id, *a, **k: calls.append(target_id) or load_target(target_id, *a, **k))
    return calls


def test_saved_pair_loads_renders_with_the_processor_template_and_generates(checkpoints):
    engine = load_engine(str(checkpoints / "target"), str(checkpoints / "drafter"), dtype="fp32", warm_up=False)
    assert engine.tokenizer.chat_template  # found in chat_template.json, without AutoProcessor
    result = engine.generate(TASK, use_drafter=True, settings=GenerationSettings(max_new_tokens=6, draft_tokens=3))
    assert result.stats.new_tokens == 6 and engine.describe()["dtype"] == "float32"


def test_missing_drafter_path_fails_before_the_target_loads(checkpoints, weight_loads):
    with pytest.raises(ModelError, match="drafter path .* does not exist"):
        load_engine(str(checkpoints / "target"), str(checkpoints / "no" / "such" / "drafter"), warm_up=False)
    assert weight_loads == []


def test_a_drafter_that_is_not_an_mtp_drafter_is_named_before_weights_load(checkpoints, weight_loads):
    with pytest.raises(ModelError, match="not a Gemma 4 MTP drafter .*Gemma4AssistantForCausalLM"):
        load_engine(str(checkpoints / "target"), str(checkpoints / "target"), warm_up=False)
    assert weight_loads == []


def test_a_target_that_is_not_gemma4_is_named_before_weights_load(checkpoints, weight_loads):
    with pytest.raises(ModelError, match="not Gemma 4"):
        load_engine(str(checkpoints / "llama"), str(checkpoints / "drafter"), warm_up=False)
    assert weight_loads == []


def test_a_drafter_for_another_target_width_is_refused(checkpoints, weight_loads, tmp_path):
    config = json.loads((checkpoints / "drafter" / "config.json").read_text())
    config["backbone_hidden_size"] = 1536
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="width 1536"):
        load_engine(str(checkpoints / "target"), str(tmp_path), warm_up=False)
    assert weight_loads == []


def test_a_checkpoint_without_any_chat_template_says_so(checkpoints, tmp_path):
    build_tiny_pair()[0].config.save_pretrained(tmp_path)
    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="no chat template"):
        load_engine(str(tmp_path), None, warm_up=False)


def test_bf16_on_a_cpu_halves_the_weights_and_still_generates():
    engine = load_engine("tiny", dtype="bf16", device="cpu", warm_up=False)
    assert engine.describe()["dtype"] == "bfloat16"
    assert next(engine.target.parameters()).dtype == next(engine.drafter.parameters()).dtype == torch.bfloat16
    result = engine.generate(TASK, use_drafter=True, settings=GenerationSettings(max_new_tokens=5, draft_tokens=2))
    assert result.stats.new_tokens == 5


def test_a_whole_multimodal_target_runs_through_our_loop_like_transformers():
    """Where text-only loading fails the loader keeps the whole multimodal model: our loop uses its language model."""
    from transformers import Gemma4Config, Gemma4ForConditionalGeneration

    from inference.engine import Engine
    from inference.tiny import tiny_target_config

    torch.manual_seed(0)
    config = Gemma4Config(text_config=tiny_target_config().to_dict(), vision_config=None, audio_config=None)
    whole = Gemma4ForConditionalGeneration(config).eval()
    whole.generation_config.eos_token_id = [1, 106, 50]
    _, drafter = build_tiny_pair()
    tokenizer = build_tiny_tokenizer()
    settings = GenerationSettings(max_new_tokens=12, draft_tokens=3)
    fast, ref = (Engine(whole, drafter, tokenizer, model_id="whole", drafter_id="tiny", engine=kind)
                 for kind in ("fast", "transformers"))
    assert fast.generate(TASK, use_drafter=True, settings=settings).token_ids == \
        ref.generate(TASK, use_drafter=False, settings=settings).token_ids
