"""The shipped mini pair: its files, its shape (E2B's classes and layer pattern), and what it does in generation."""

from __future__ import annotations

import pytest
import torch
from transformers import Gemma4AssistantForCausalLM, Gemma4ForCausalLM

from inference.loading import default_model
from inference.mini import (DRAFTER_FILE, MERGES_FILE, TARGET_FILE, WEIGHTS_DIR, MiniShape, load_mini_pair,
                           read_manifest, sha256)
from inference.presets import PRESETS, draft_tokens_for
from inference.train.config import TrainConfig
from inference.train.data import CORPUS
from protocol import GenerationSettings


@pytest.fixture(scope="module")
def pair():
    return load_mini_pair()


@pytest.fixture(scope="module")
def mini_engine():
    from inference import load_engine

    engine = load_engine("mini", dtype="fp32")
    yield engine
    engine.close()


def test_the_shipped_files_match_their_checksums_and_stay_small():
    manifest = read_manifest()
    assert set(manifest["files"]) == {TARGET_FILE, DRAFTER_FILE, MERGES_FILE}  # the pair's own tokenizer rules
    for name, digest in manifest["files"].items():
        assert sha256(WEIGHTS_DIR / name) == digest, name
    assert sum((WEIGHTS_DIR / name).stat().st_size for name in manifest["files"]) < 10 << 20


def test_the_shipped_weights_come_from_the_training_scripts_config_and_the_committed_corpus():
    manifest = read_manifest()
    assert manifest["train_config"] == TrainConfig().to_dict()
    assert MiniShape(**manifest["shape"]) == TrainConfig().shape
    assert manifest["corpus_sha256"] == sha256(CORPUS)
    assert manifest["limit"] is None


def test_a_damaged_weight_file_is_refused(tmp_path):
    for name in (*read_manifest()["files"], "manifest.json"):
        (tmp_path / name).write_bytes((WEIGHTS_DIR / name).read_bytes())
    data = bytearray((tmp_path / TARGET_FILE).read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / TARGET_FILE).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        load_mini_pair(folder=tmp_path)


def test_the_pair_has_e2bs_classes_and_layer_pattern(pair):
    target, drafter = pair
    config = target.config
    assert isinstance(target, Gemma4ForCausalLM) and isinstance(drafter, Gemma4AssistantForCausalLM)
    assert config.num_hidden_layers == 35 and config.num_kv_shared_layers == 20
    assert config.layer_types == (["sliding_attention"] * 4 + ["full_attention"]) * 7
    assert config.hidden_size_per_layer_input > 0 and config.vocab_size == config.vocab_size_per_layer_input == 262144
    text = drafter.config.get_text_config()
    assert drafter.config.use_ordered_embeddings and text.num_kv_shared_layers == text.num_hidden_layers == 4
    assert drafter.config.backbone_hidden_size == config.hidden_size
    ordering = drafter.masked_embedding.token_ordering
    assert torch.equal(ordering.sort().values, torch.arange(262144))  # a real permutation


def test_untrained_rows_are_zero_and_score_below_every_likely_token(pair):
    target, _ = pair
    rows = target.model.embed_tokens.weight
    trained = rows.abs().sum(1) > 0
    assert 100 < int(trained.sum()) < 2000
    assert target.model.embed_tokens_per_layer.weight[~trained].abs().max() == 0


def test_mini_is_the_default_without_a_gpu_and_says_what_it_is():
    if not torch.cuda.is_available():
        assert default_model() == "mini"
    stand_in = PRESETS["mini"].stand_in
    assert "trained here" in stand_in and "not Gemma 4's weights" in stand_in


def test_the_page_starts_at_the_draft_length_the_drafter_was_trained_for(pair):
    _, drafter = pair
    trained_k = read_manifest()["draft_tokens"]
    assert draft_tokens_for("mini") == trained_k == drafter.generation_config.num_assistant_tokens == 4
    assert draft_tokens_for("e2b") == draft_tokens_for("google/gemma-4-E4B-it") == 6  # Google's -assistant configs


def test_greedy_with_the_drafter_is_the_target_alone_with_partial_acceptance(mini_engine):
    from agents.corpus.generate import read_corpus

    header, transcripts = read_corpus()  # the agent's own system prompt and tool declarations, as it was trained
    system = next(transcripts)["messages"][0]
    messages = [system, {"role": "user", "content": "Write and run Python code that prints all prime numbers below 60 "
                                                    "using a sieve of Eratosthenes, then tell me how many there are."}]
    settings = GenerationSettings(max_new_tokens=64, draft_tokens=4)
    base = mini_engine.generate(messages, header["tools"], use_drafter=False, settings=settings)
    draft = mini_engine.generate(messages, header["tools"], use_drafter=True, settings=settings)
    assert draft.token_ids == base.token_ids
    stats = draft.stats.drafter
    assert 0 < stats.accepted_tokens < stats.drafted_tokens
    # It drafts the next token, not the one it was handed: a drafter trained one token off stays near 0.05 here.
    assert stats.accepted_by_position[0] > 0.15, stats.accepted_by_position
    assert base.text.startswith("<|tool_call>call:")  # it answers a coding task with a call in Gemma 4's format
