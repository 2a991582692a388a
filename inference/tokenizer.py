"""Stand-in Gemma 4 tokenizer built in code, plus our chat template; knows nothing of models or agents.

The real Gemma 4 tokenizer cannot be downloaded here, so `build_tiny_tokenizer()` makes a byte-level BPE
tokenizer with the real vocabulary size (262144) and Gemma 4's special tokens at their real ids. Any UTF-8
text round-trips exactly (every byte has a token), every id in the vocabulary decodes to something (a
random-weight model may emit any id), and the chat template is our own rendering of the Gemma 4 format.
`build_tokenizer(merges)` is the same layout with other merge rules (the mini pair's, learned from its corpus
and shipped with its weights as a merges.txt).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

VOCAB_SIZE = 262144
MODEL_MAX_LENGTH = 131072
CHAT_TEMPLATE_PATH = Path(__file__).resolve().parent / "templates" / "gemma4_chat.jinja"

# Gemma 4's special tokens at their real ids. Where each id was confirmed (public copies found with the
# code search index; "index id" is that index's file id):
# * 0-3, 105, 106, 98, 100, 101: a Gemma 4 tokenizer drift check pinning EXPECTED_IDS
#   {<pad>:0, <eos>:1, <bos>:2, <unk>:3, <|think|>:98, <|channel>:100, <channel|>:101, <|turn>:105,
#   <turn|>:106} (index id 55287459612); the same values appear in several other Gemma 4 fakes.
# * 48, 49, 50, 52: a Gemma 4 contract test whose vocabulary is {<|tool_call>:48, <tool_call|>:49,
#   <|tool_response>:50, <|"|>:52, ...} next to "generation_config.json states eos_token_id [1, 106, 50]"
#   (index id 70146223165). 52 for <|"|> also matches vLLM's docs (outputs/README.md).
# * 46, 47, 51: a test that mirrors "the REAL tokenizer" with {<|tool>:46, <tool|>:47,
#   <|tool_response>:50, <tool_response|>:51, <|"|>:52} (index id 57025387320).
# * 4 (<mask>): a Gemma 4-style tokenizer.json fixture listing pad/eos/bos/unk/mask at 0-4 with
#   <|tool_response>:50, <|turn>:105, <turn|>:106 (index id 62825848384).
# * 255999, 256000, 258880-258883: boi/boa/image/audio/eoi/eoa token ids in the byte-verified
#   `google/gemma-4-E2B-it-assistant/config.json` (../shared/gemma4/E2B-it-assistant.config.json);
#   255999/258880/258882 also in mlx-lm's Gemma 4 multimodal test (index id 68420698922).
# * 258884 (<|video|>): `video_token_id` of the config rebuilt from transformers' Gemma 4 conversion
#   script (../shared/gemma4/reconstructed/E2B-it.config.RECONSTRUCTED.json).
SPECIAL_TOKEN_IDS: dict[str, int] = {
    "<pad>": 0,
    "<eos>": 1,
    "<bos>": 2,
    "<unk>": 3,
    "<mask>": 4,
    "<|tool>": 46,
    "<tool|>": 47,
    "<|tool_call>": 48,
    "<tool_call|>": 49,
    "<|tool_response>": 50,
    "<tool_response|>": 51,
    '<|"|>': 52,
    "<|think|>": 98,
    "<|channel>": 100,
    "<channel|>": 101,
    "<|turn>": 105,
    "<turn|>": 106,
    "<|image>": 255999,
    "<|audio>": 256000,
    "<|image|>": 258880,
    "<|audio|>": 258881,
    "<image|>": 258882,
    "<audio|>": 258883,
    "<|video|>": 258884,
}

# Generation stops at <eos>, <turn|> or <|tool_response>: `eos_token_id` [1, 106, 50] of the real
# generation_config.json (../shared/gemma4/E2B-it.generation_config.json, byte-verified).
STOP_TOKEN_IDS: tuple[int, ...] = (
    SPECIAL_TOKEN_IDS["<eos>"],
    SPECIAL_TOKEN_IDS["<turn|>"],
    SPECIAL_TOKEN_IDS["<|tool_response>"],
)

# The named tokens of the real tokenizer_config.json (../shared/gemma4/E2B-it.tokenizer_config.json).
NAMED_TOKENS: dict[str, str] = {
    "sot_token": "<|turn>",
    "eot_token": "<turn|>",
    "soc_token": "<|channel>",
    "eoc_token": "<channel|>",
    "think_token": "<|think|>",
    "std_token": "<|tool>",
    "etd_token": "<tool|>",
    "stc_token": "<|tool_call>",
    "etc_token": "<tool_call|>",
    "str_token": "<|tool_response>",
    "etr_token": "<tool_response|>",
    "escape_token": '<|"|>',
    "boi_token": "<|image>",
    "eoi_token": "<image|>",
    "image_token": "<|image|>",
    "boa_token": "<|audio>",
    "eoa_token": "<audio|>",
    "audio_token": "<|audio|>",
    "video_token": "<|video|>",
}

_BYTE_TOKENS_FIRST_ID = 256  # ids 256..511 hold the 256 byte-level pieces
_MERGED_TOKENS_FIRST_ID = 512

# Common words and code fragments that get merge rules, so ordinary text takes fewer tokens than bytes.
_COMMON_WORDS = """
the of and to in is it that for on with as was be by this are or from at an not have has but you
all can if will one which their there been were what when would so out up about into who them more
some other than then its time only new my we do how also two like our these may first any use just
def return import class self None True False print range len str int float list dict set tuple try
except finally raise while else elif yield lambda assert pass break continue global with async await
file path name value result error data test code tool call response thought model user system turn
function args kwargs type object string number boolean array items properties required description
open read write line lines text json main os sys re time np torch __init__ __name__ __main__
"""
_SYLLABLE_CONSONANTS = "bcdfghjklmnprstvwz"
_SYLLABLE_VOWELS = "aeiou"


def byte_level_alphabet() -> list[str]:
    """The 256 printable characters GPT-2 style byte-level BPE uses for the bytes 0..255, in byte order."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    mapping: dict[int, int] = {b: b for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = 256 + extra
            extra += 1
    return [chr(mapping[b]) for b in range(256)]


def _merge_chains(alphabet: list[str]) -> list[tuple[str, str]]:
    """Merge rules that turn each common word (bare, capitalised, space-prefixed) and space run into one token.

    Each piece is first split the way the rules so far would split it (a small BPE simulation), then rules
    joining those parts left to right are appended, so later rules never undo what earlier ones built.
    """
    space, newline = alphabet[ord(" ")], alphabet[ord("\n")]
    pieces = [space * n for n in range(2, 17)] + [newline + space * n for n in range(1, 13)]
    for word in _COMMON_WORDS.split():
        pieces += [space + word, word, space + word.capitalize(), word.capitalize()]
    rank: dict[tuple[str, str], int] = {}
    for piece in dict.fromkeys(pieces):
        parts = apply_merges(list(piece), rank)
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            rank.setdefault(pair, len(rank))
            parts = [parts[0] + parts[1]] + parts[2:]
    return sorted(rank, key=rank.__getitem__)


def apply_merges(parts: list[str], rank: dict[tuple[str, str], int]) -> list[str]:
    """BPE on one piece: repeatedly join the leftmost adjacent pair with the lowest rank."""
    while len(parts) > 1:
        ranked = [(rank[pair], i) for i, pair in enumerate(itertools.pairwise(parts)) if pair in rank]
        if not ranked:
            break
        _, i = min(ranked)
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2 :]
    return parts


def _filler_words() -> Iterator[str]:
    """Readable pseudo-words for unused ids: all 1-, 2-, then 3-syllable consonant-vowel words, in order."""
    syllables = [c + v for c, v in itertools.product(_SYLLABLE_CONSONANTS, _SYLLABLE_VOWELS)]
    for length in itertools.count(1):
        for parts in itertools.product(syllables, repeat=length):
            yield "".join(parts)


def _build_vocab(alphabet: list[str], merges: list[tuple[str, str]]) -> dict[str, int]:
    """Every id in [0, VOCAB_SIZE) gets exactly one distinct piece."""
    by_id: dict[int, str] = {token_id: token for token, token_id in SPECIAL_TOKEN_IDS.items()}
    for byte, char in enumerate(alphabet):
        by_id[_BYTE_TOKENS_FIRST_ID + byte] = char
    merged = list(dict.fromkeys(left + right for left, right in merges))
    for offset, token in enumerate(merged):
        by_id[_MERGED_TOKENS_FIRST_ID + offset] = token
    used = set(by_id.values())
    space = alphabet[ord(" ")]
    fillers = _filler_words()
    for token_id in range(VOCAB_SIZE):
        if token_id in by_id:
            continue
        if token_id < _BYTE_TOKENS_FIRST_ID:
            token = f"<unused{token_id}>"
        else:
            token = space + next(fillers)
            if token in used:
                token = f"<unused{token_id}>"
        by_id[token_id] = token
        used.add(token)
    vocab = {token: token_id for token_id, token in by_id.items()}
    if len(vocab) != VOCAB_SIZE:
        raise ValueError(f"stand-in vocabulary has {len(vocab)} distinct pieces, expected {VOCAB_SIZE}")
    return vocab


def load_chat_template() -> str:
    """Our Gemma 4 chat template (Jinja text), read from CHAT_TEMPLATE_PATH."""
    return CHAT_TEMPLATE_PATH.read_text(encoding="utf-8")


def read_merges(path: Path) -> list[tuple[str, str]]:
    """Merge rules from a merges.txt: a `#version` line, then one rule per line, its two pieces space-separated."""
    rules = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("#version") or not line:
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{path}:{number}: a merge rule is two pieces separated by one space, not {line!r}")
        rules.append((parts[0], parts[1]))
    return rules


def write_merges(merges: list[tuple[str, str]], path: Path) -> None:
    """Write merge rules in the merges.txt format `read_merges` reads (byte-level pieces never hold a space)."""
    Path(path).write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")


@functools.lru_cache(maxsize=4)
def _build_backend(merges: tuple[tuple[str, str], ...] | None = None) -> Tokenizer:
    """The `tokenizers` object for these merge rules (None: the stand-in's), built once; each wrapper copies it."""
    alphabet = byte_level_alphabet()
    merges = list(merges) if merges is not None else _merge_chains(alphabet)
    backend = Tokenizer(models.BPE(vocab=_build_vocab(alphabet, merges), merges=merges, unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", SPECIAL_TOKEN_IDS["<bos>"])]
    )
    return backend


def build_tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A fresh stand-in Gemma 4 tokenizer: vocab 262144, real special ids, our chat template, left padding."""
    return build_tokenizer(None)


def build_tokenizer(merges: list[tuple[str, str]] | None) -> PreTrainedTokenizerFast:
    """The stand-in tokenizer's layout and template with these byte-level merge rules (None: the stand-in's own).

    The merged pieces take ids from 512 up in rule order; special tokens and the 256 bytes keep their ids."""
    alphabet = set(byte_level_alphabet())
    for left, right in merges or ():
        if not set(left + right) <= alphabet:
            raise ValueError(f"merge rule {left!r} {right!r} has a character outside the byte-level alphabet")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_build_backend(None if merges is None else tuple(merges)),
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        padding_side="left",
        model_max_length=MODEL_MAX_LENGTH,
        clean_up_tokenization_spaces=False,
    )
    specials = [token for token in SPECIAL_TOKEN_IDS if token not in {"<bos>", "<eos>", "<pad>", "<unk>", "<mask>"}]
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    for name, token in NAMED_TOKENS.items():
        setattr(tokenizer, name, token)
    tokenizer.chat_template = load_chat_template()
    for token, token_id in SPECIAL_TOKEN_IDS.items():
        if tokenizer.convert_tokens_to_ids(token) != token_id:
            raise ValueError(f"special token {token!r} landed at the wrong id; the vocabulary layout is broken")
    return tokenizer
