"""Merge rules learned from a corpus, and the tokenizer built from them (the mini pair's own)."""

from __future__ import annotations

import pytest

from inference.tokenizer import SPECIAL_TOKEN_IDS, build_tiny_tokenizer, build_tokenizer, read_merges, write_merges
from inference.train.merges import learn_merges, number_merges, piece_counts


@pytest.mark.parametrize(("counts", "rules", "expected"), [
    ({"abab": 3}, 5, [("a", "b"), ("ab", "ab")]),  # ab occurs 6 times, ba 3; then ab+ab 3 times
    ({"xy": 2, "ab": 2}, 5, [("a", "b"), ("x", "y")]),  # a tie goes to the smaller pair
    ({"xy": 2, "ab": 2}, 1, [("a", "b")]),  # at most `rules`
    ({"ab": 1}, 5, []),  # nothing occurs twice
    ({"a1": 10, "12": 10, "1b": 10, "ab": 2}, 5, [("a", "b")]),  # no rule ever touches a digit
    ({"aaaa": 2}, 5, [("a", "a"), ("aa", "aa")]),  # non-overlapping joins, left to right: aa aa
    ({"aaa": 2}, 5, [("a", "a"), ("aa", "a")]),  # aa a: the pair it made then occurs twice
    ({"the": 5, "then": 2, "then ": 1}, 3, [("h", "e"), ("t", "he"), ("the", "n")]),
])
def test_learned_rules(counts, rules, expected):
    assert learn_merges(counts, rules) == expected


def test_pieces_are_the_tokenizers_pre_tokens_without_special_tokens():
    tokenizer = build_tiny_tokenizer()
    counts = piece_counts(tokenizer, ["<|turn>user\nsay hi hi<turn|>", "hi"])
    assert counts == {"user": 1, "Ċ": 1, "say": 1, "Ġhi": 2, "hi": 1}


def test_a_tokenizer_from_learned_rules_writes_the_corpus_words_whole_and_keeps_the_layout():
    tokenizer = build_tiny_tokenizer()
    texts = ["def is_palindrome(word):\n    return word == word[::-1]\n"] * 3 + ["palindrome 12345"]
    merges = learn_merges(piece_counts(tokenizer, texts), 200)
    learned = build_tokenizer(merges)
    assert learned.tokenize("palindrome word") == ["palindrome", "Ġword"]
    assert len(tokenizer.tokenize("palindrome")) > 1  # the stand-in spells it out
    assert learned.tokenize("12345") == list("12345")
    for text in texts + ["anything else: ünïcode, tabs\t, <|turn>", "x" * 50]:
        assert learned.decode(learned.encode(text, add_special_tokens=False)) == text
    for token, token_id in SPECIAL_TOKEN_IDS.items():
        assert learned.convert_tokens_to_ids(token) == token_id
    assert learned.convert_tokens_to_ids(merges[0][0] + merges[0][1]) == 512  # merged pieces from 512, in order
    assert len(learned) == len(tokenizer) and learned.chat_template == tokenizer.chat_template


def test_merges_round_trip_through_their_file_and_a_bad_file_says_where(tmp_path):
    merges = [("Ġ", "Ġ"), ("t", "he"), ("Ġ", "'")]
    write_merges(merges, tmp_path / "merges.txt")
    assert read_merges(tmp_path / "merges.txt") == merges
    (tmp_path / "bad.txt").write_text("#version: 0.2\na b\nab\n")
    with pytest.raises(ValueError, match="bad.txt:3"):
        read_merges(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="outside the byte-level alphabet"):
        build_tokenizer([(" ", "a")])  # a raw space is not a byte-level character


@pytest.mark.parametrize(("text", "pieces"), [
    ("7", ["7"]), ("42", ["42"]), ("100", ["100"]), ("007", ["007"]),
    (" 230", ["Ġ", "230"]),  # the space stays its own token: " 230" and "(230" hold the same number token
    ("sieve(230)", ["s", "i", "e", "v", "e", "(", "230", ")"]),
    ("2419", ["24", "19"]), ("1234567", ["12", "34", "567"]),  # longer runs split into known number tokens
])
def test_number_rules_make_every_run_of_up_to_three_digits_one_token(text, pieces):
    assert build_tokenizer(number_merges(3)).tokenize(text) == pieces


def test_number_rules_cover_every_number_once_and_one_digit_adds_none():
    assert number_merges(1) == []
    rules = number_merges(3)
    assert len(rules) == len(set(rules)) == 100 + 1000
    tokenizer = build_tokenizer(rules)
    assert all(tokenizer.tokenize(f"{n:03d}") == [f"{n:03d}"] and tokenizer.tokenize(str(n)) == [str(n)]
               for n in range(1000))
