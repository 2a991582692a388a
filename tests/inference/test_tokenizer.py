"""Tests for the stand-in Gemma 4 tokenizer: real special ids, full vocabulary, exact round-trips."""

from __future__ import annotations

import time

import pytest

from inference.tokenizer import (
    CHAT_TEMPLATE_PATH,
    NAMED_TOKENS,
    SPECIAL_TOKEN_IDS,
    STOP_TOKEN_IDS,
    VOCAB_SIZE,
    build_tiny_tokenizer,
    load_chat_template,
)

# Gemma 4's ids, written out again here on purpose so a change to the module's table is caught.
GEMMA4_SPECIAL_IDS = [
    ("<pad>", 0),
    ("<eos>", 1),
    ("<bos>", 2),
    ("<unk>", 3),
    ("<mask>", 4),
    ("<|tool>", 46),
    ("<tool|>", 47),
    ("<|tool_call>", 48),
    ("<tool_call|>", 49),
    ("<|tool_response>", 50),
    ("<tool_response|>", 51),
    ('<|"|>', 52),
    ("<|think|>", 98),
    ("<|channel>", 100),
    ("<channel|>", 101),
    ("<|turn>", 105),
    ("<turn|>", 106),
    ("<|image>", 255999),
    ("<|audio>", 256000),
    ("<|image|>", 258880),
    ("<|audio|>", 258881),
    ("<image|>", 258882),
    ("<audio|>", 258883),
    ("<|video|>", 258884),
]

ROUND_TRIP_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    " leading and trailing spaces  ",
    "line one\nline two\r\nline three\n\n",
    "col1\tcol2\t\tcol3",
    "def add(a, b):\n    return a + b  # sum\n\n\tprint(add(1, 2))\n",
    'json = {"key": [1, 2.5, null], "q": "\\"quoted\\""}',
    "日本語のテキストと中文文本，한국어 텍스트",
    "emoji 🎉🚀👩🏽‍💻 and flags 🇫🇷",
    "combining e\u0301 and zero\u200bwidth and nul \x00 bytes",
    "looks special but is not: <|tool <unused5> <turn| |> <bos",
    "C:\\users\\path and \\n literal backslashes",
    "",
]


@pytest.fixture(scope="module")
def tok():
    return build_tiny_tokenizer()


@pytest.mark.parametrize("token,token_id", GEMMA4_SPECIAL_IDS)
def test_special_token_sits_at_its_gemma4_id(tok, token, token_id):
    assert SPECIAL_TOKEN_IDS[token] == token_id
    assert tok.convert_tokens_to_ids(token) == token_id
    assert tok.convert_ids_to_tokens(token_id) == token


@pytest.mark.parametrize("token,token_id", GEMMA4_SPECIAL_IDS)
def test_special_token_encodes_to_one_id_and_decodes_back(tok, token, token_id):
    assert tok.encode(token, add_special_tokens=False) == [token_id]
    assert tok.decode([token_id], skip_special_tokens=False) == token


def test_special_table_covers_every_gemma4_special(tok):
    assert dict(GEMMA4_SPECIAL_IDS) == SPECIAL_TOKEN_IDS
    assert set(tok.all_special_tokens) == set(SPECIAL_TOKEN_IDS)


def test_vocab_size_is_gemma4s(tok):
    assert VOCAB_SIZE == 262144
    assert len(tok) == VOCAB_SIZE
    assert tok.vocab_size == VOCAB_SIZE
    assert sorted(tok.get_vocab().values()) == list(range(VOCAB_SIZE))


def test_every_id_has_a_distinct_piece(tok):
    backend = tok.backend_tokenizer
    pieces = [backend.id_to_token(i) for i in range(VOCAB_SIZE)]
    assert all(pieces), "some id has no piece"
    assert len(set(pieces)) == VOCAB_SIZE


@pytest.mark.parametrize(
    "token_id", [0, 5, 45, 53, 107, 255, 256, 511, 512, 4096, 100_000, 255_998, 256_001, 258_879, 258_885, 262_143]
)
def test_any_id_decodes_to_nonempty_text(tok, token_id):
    assert tok.decode([token_id], skip_special_tokens=False) != ""


def test_sampled_ids_across_the_range_decode(tok):
    ids = list(range(0, VOCAB_SIZE, 977)) + [VOCAB_SIZE - 1]
    text = tok.decode(ids, skip_special_tokens=False)
    assert len(text) >= len(ids)
    assert all(tok.decode([i]) for i in ids)


def test_id_past_the_vocabulary_is_not_a_token(tok):
    assert tok.convert_ids_to_tokens(VOCAB_SIZE) is None


@pytest.mark.parametrize("text", ROUND_TRIP_TEXTS)
def test_text_round_trips_exactly(tok, text):
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=False) == text
    assert all(0 <= i < VOCAB_SIZE for i in ids)


def test_text_with_special_tokens_round_trips_and_keeps_them_single(tok):
    text = '<|turn>user\nhi<turn|>\n<|tool_call>call:f{a:<|"|>x "y"<|"|>}<tool_call|>'
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=False) == text
    for token in ["<|turn>", "<turn|>", "<|tool_call>", "<tool_call|>"]:
        assert ids.count(SPECIAL_TOKEN_IDS[token]) == 1
    assert ids.count(SPECIAL_TOKEN_IDS['<|"|>']) == 2


def test_skip_special_tokens_drops_control_tokens_only(tok):
    ids = tok.encode("<|turn>model\nhello world<turn|>", add_special_tokens=False)
    assert tok.decode(ids, skip_special_tokens=True) == "model\nhello world"


def test_common_words_take_one_token(tok):
    assert len(tok.encode(" return", add_special_tokens=False)) == 1
    assert len(tok.encode("def", add_special_tokens=False)) == 1
    code = "def main():\n    return None\n"
    assert len(tok.encode(code, add_special_tokens=False)) < len(code.encode()) // 2


def test_encode_prepends_bos_only_when_asked(tok):
    assert tok.encode("hi")[0] == SPECIAL_TOKEN_IDS["<bos>"]
    assert SPECIAL_TOKEN_IDS["<bos>"] not in tok.encode("hi", add_special_tokens=False)


def test_attributes_match_the_real_tokenizer_config(tok):
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == ("<bos>", "<eos>", "<pad>", "<unk>")
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.unk_token_id) == (2, 1, 0, 3)
    assert tok.padding_side == "left"
    assert tok.model_max_length == 131072
    for name, token in NAMED_TOKENS.items():
        assert getattr(tok, name) == token
    assert tok.eot_token == "<turn|>" and tok.escape_token == '<|"|>'


def test_stop_ids_are_the_generation_configs_eos_list(tok):
    assert list(STOP_TOKEN_IDS) == [1, 106, 50]
    assert tok.convert_ids_to_tokens(list(STOP_TOKEN_IDS)) == ["<eos>", "<turn|>", "<|tool_response>"]


def test_chat_template_is_ours(tok):
    assert CHAT_TEMPLATE_PATH.is_file()
    assert tok.chat_template == load_chat_template()
    assert "<|tool_call>" in tok.chat_template


def test_batches_pad_on_the_left(tok):
    batch = tok(["hi", "a much longer line of text"], padding=True, add_special_tokens=False)
    short_ids, long_ids = batch["input_ids"]
    assert len(short_ids) == len(long_ids)
    assert short_ids[0] == tok.pad_token_id and short_ids[-1] != tok.pad_token_id
    assert batch["attention_mask"][0][0] == 0 and batch["attention_mask"][0][-1] == 1


def test_builds_are_deterministic_and_independent(tok):
    other = build_tiny_tokenizer()
    assert other is not tok
    assert other.get_vocab() == tok.get_vocab()
    other.add_tokens(["<only-in-other>"])
    assert "<only-in-other>" not in tok.get_vocab()
    assert len(tok) == VOCAB_SIZE


def test_build_takes_under_two_seconds():
    start_s = time.perf_counter()
    build_tiny_tokenizer()
    assert time.perf_counter() - start_s < 2.0
