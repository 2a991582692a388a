"""Presets, text-only loading of multimodal checkpoints, and load failures that name cause and fix."""

from __future__ import annotations

import pytest
import torch
from huggingface_hub import errors as hub
from transformers import Gemma4Config, Gemma4ForCausalLM, Gemma4ForConditionalGeneration

from inference import PRESETS, default_model, load_engine, resolve_model
from inference.loading import explain_load_error, load_target
from inference.tiny import tiny_target_config
from protocol import InputError, ModelError


@pytest.mark.parametrize("model, drafter, expected", [
    ("tiny", None, ("tiny", "tiny")),
    ("e2b", None, ("google/gemma-4-E2B-it", "google/gemma-4-E2B-it-assistant")),
    ("E4B", None, ("google/gemma-4-E4B-it", "google/gemma-4-E4B-it-assistant")),
    ("26b-a4b", None, ("google/gemma-4-26B-A4B-it", "google/gemma-4-26B-A4B-it-assistant")),
    ("31b", None, ("google/gemma-4-31B-it", "google/gemma-4-31B-it-assistant")),
    ("31b", "me/my-drafter", ("google/gemma-4-31B-it", "me/my-drafter")),
    ("google/gemma-4-E2B-it", None, ("google/gemma-4-E2B-it", "google/gemma-4-E2B-it-assistant")),
    ("me/gemma-finetune", None, ("me/gemma-finetune", None)),
    ("./local/checkpoint", "./local/drafter", ("./local/checkpoint", "./local/drafter")),
])
def test_resolve_model_maps_presets_ids_and_paths(model, drafter, expected):
    assert resolve_model(model, drafter) == expected


@pytest.mark.parametrize("model", ["", "   ", "gemma5", "e3b"])
def test_unknown_preset_is_refused_with_the_list(model):
    with pytest.raises(InputError, match="tiny"):
        resolve_model(model)


def test_unknown_preset_is_refused_by_the_loader_too():
    with pytest.raises(InputError, match="Unknown preset"):
        load_engine("e3b")


def test_every_preset_names_its_hardware():
    assert {"tiny", "e2b", "e4b", "26b-a4b", "31b"} <= set(PRESETS)
    assert all(p.hardware for p in PRESETS.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU default")
def test_default_model_without_cuda_is_the_offline_mini_pair():
    assert default_model() == "mini"  # trained here (inference/mini.py); `tiny` stays for the fastest tests


def test_multimodal_checkpoint_loads_text_only_with_identical_logits(tmp_path):
    torch.manual_seed(0)
    config = Gemma4Config(text_config=tiny_target_config().to_dict(), vision_config=None, audio_config=None)
    whole = Gemma4ForConditionalGeneration(config).eval()
    whole.save_pretrained(tmp_path)
    text_only = load_target(str(tmp_path), torch.device("cpu"), torch.float32, None)
    assert isinstance(text_only, Gemma4ForCausalLM)
    ids = torch.tensor([[2, 105, 300, 400, 106, 50]])
    with torch.no_grad():
        assert torch.equal(whole(input_ids=ids).logits, text_only(input_ids=ids).logits)


def test_missing_local_checkpoint_is_a_model_error(tmp_path):
    with pytest.raises(ModelError) as info:
        load_engine(str(tmp_path / "nowhere"), warm_up=False)
    assert "Traceback" not in str(info.value)


def hub_error(cls, message):
    """A Hub error as huggingface_hub raises it, without an HTTP response."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


@pytest.mark.parametrize("error, expected", [
    (hub_error(hub.GatedRepoError, "403 gated"), "HF_TOKEN"),
    (hub_error(hub.RepositoryNotFoundError, "404"), "no such model"),
    (hub.LocalEntryNotFoundError("not in cache and cannot connect"), "reach the Hugging Face Hub"),
    (ConnectionError("Failed to establish a new connection"), "reach the Hugging Face Hub"),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), "Not enough GPU memory"),
    (RuntimeError("CUDA error: out of memory"), "Not enough GPU memory"),
    (ValueError("something else"), "Loading google/gemma-4-31B-it"),
])
def test_load_errors_name_cause_and_fix(error, expected):
    message = str(explain_load_error(error, "google/gemma-4-31B-it", "google/gemma-4-31B-it-assistant"))
    assert expected in message


def test_a_transformers_that_cannot_build_the_drafter_is_named(monkeypatch):
    import inference.tiny as tiny

    def broken():
        raise ValueError("Gemma4TextConfig.kv_sharing_modes: every layer is KV-shared")
    monkeypatch.setattr(tiny, "build_tiny_drafter_on_meta", broken)
    from inference.loading import check_drafter_support
    with pytest.raises(ModelError, match="pip install transformers==5.22.2"):
        check_drafter_support()
