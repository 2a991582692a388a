"""The mini pair's byte-level BPE merge rules, learned from its corpus: fewer, whole-word tokens for what it writes.

The stand-in tokenizer's merges cover ~100 common English and Python words; everything else (tool names, the
tasks' words, identifiers) is spelled out byte by byte, so a transcript is long and copying a word from the task
is many steps. Learning the merges from the rendered transcripts (classic BPE: join the most frequent adjacent
pair, repeat) writes the corpus in about 0.6x the tokens. Learned rules never touch a digit; `number_merges`
adds rules that make every run of up to N digits one token (Gemma's own tokenizer keeps one token per digit, and
so does this one with N = 1): a copied number is then one lookup, not a chain of digits that each recur
everywhere. Special tokens are never part of a piece.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from inference.tokenizer import SPECIAL_TOKEN_IDS, apply_merges

_SPECIAL = re.compile("|".join(re.escape(token) for token in sorted(SPECIAL_TOKEN_IDS, key=len, reverse=True)))
_DIGITS = frozenset("0123456789")  # the byte-level alphabet writes the ASCII digits as themselves


def piece_counts(tokenizer, texts: Iterable[str]) -> Counter[str]:
    """How often each pre-tokenized piece (byte-level characters, as the tokenizer splits text before its merges)
    occurs in `texts`; special tokens are cut out first, as the tokenizer does."""
    split = tokenizer.backend_tokenizer.pre_tokenizer.pre_tokenize_str
    counts: Counter[str] = Counter()
    for text in texts:
        for segment in _SPECIAL.split(text):
            if segment:
                counts.update(piece for piece, _ in split(segment))
    return counts


def learn_merges(counts: dict[str, int], rules: int, min_count: int = 2) -> list[tuple[str, str]]:
    """At most `rules` merge rules, in order: each joins the adjacent pair of symbols that occurs most often in
    the pieces (weighted by `counts`) after the rules before it; ties go to the smaller pair, so the result is a
    function of the counts. Pairs with a digit are never joined; learning stops when no pair occurs `min_count`
    times."""
    words = [list(piece) for piece in counts]
    weights = list(counts.values())
    pair_count: Counter[tuple[str, str]] = Counter()
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)

    def tally(i: int, sign: int) -> None:
        for pair in itertools.pairwise(words[i]):
            if _DIGITS.isdisjoint(pair[0] + pair[1]):
                pair_count[pair] += sign * weights[i]
                if sign > 0:
                    holders[pair].add(i)

    for i in range(len(words)):
        tally(i, +1)
    merges: list[tuple[str, str]] = []
    while len(merges) < rules:
        best_count = max(pair_count.values(), default=0)
        if best_count < min_count:
            break
        best = min(pair for pair, c in pair_count.items() if c == best_count)
        merges.append(best)
        for i in sorted(holders.pop(best)):
            tally(i, -1)
            words[i] = _join(words[i], best)
            tally(i, +1)
        for pair in [p for p, c in pair_count.items() if c <= 0]:
            del pair_count[pair]
    return merges


def _join(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    """The symbols with every non-overlapping occurrence of `pair` joined, left to right."""
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            out.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out


def number_merges(digits: int) -> list[tuple[str, str]]:
    """Rules that make every string of 2..`digits` digits one token ("00" to "99", then "000" to "999", ...).

    Each string is split the way the rules so far split it, and rules joining those parts left to right are
    added, so a longer number never depends on a rule that is missing. Longer runs split into such tokens."""
    rank: dict[tuple[str, str], int] = {}
    for length in range(2, digits + 1):
        for combo in itertools.product("0123456789", repeat=length):
            parts = apply_merges(list(combo), rank)
            while len(parts) > 1:
                rank.setdefault((parts[0], parts[1]), len(rank))
                parts = [parts[0] + parts[1]] + parts[2:]
    return sorted(rank, key=rank.__getitem__)
