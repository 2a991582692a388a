"""agents.turns: what a reply leads to (kind and feedback), and streaming that adds up to the final read."""

from __future__ import annotations

import pytest

from agents.scripted import split_pieces
from agents.turns import ReplyStreamer, read_reply, repeating_tail
from tests.agents.helpers import Q, call
from tests.agents.test_parser import CASES

# (raw reply, stop reason, kind, feedback contains)
KINDS = [
    ("The answer is 4.", "eos", "final_answer", None),
    ("The answer is", "max_new_tokens", "cut_off", "limit of 64 new tokens. Continue"),
    ("<|channel>thought\nStill thinking", "max_new_tokens", "cut_off", "limit of 64 new tokens"),
    (f"<|tool_call>call:write_file{{path:{Q}a.py{Q},content:{Q}x = ", "max_new_tokens", "cut_off",
     "inside a tool call, so the call was not run"),
    (call("list_files") + " and then", "max_new_tokens", "tool_call", None),
    (call("list_files") + f"<|tool_call>call:read_file{{path:{Q}a", "max_new_tokens", "tool_call", "inside a tool call"),
    (f"<|tool_call>call:f{{a:]}}<tool_call|>", "eos", "format_error", "Could not read your tool call"),
    ("```tool_code\nimport os\n```", "eos", "format_error", "tool_code block"),
    ("<|channel>thought\nhmm<channel|>", "eos", "format_error", "Your reply was empty"),
    ("Half an ans", "stopped", "stopped", None),
]


@pytest.mark.parametrize("raw, stop_reason, kind, feedback", KINDS)
def test_a_reply_is_an_answer_only_when_the_model_stopped_by_itself(raw, stop_reason, kind, feedback):
    reply = read_reply(raw, stop_reason, max_new_tokens=64, call_id_prefix="call_1_1")
    assert reply.kind == kind
    assert (reply.feedback is None) if feedback is None else (feedback in reply.feedback)
    assert (reply.error_call is not None) == (reply.parse_error is not None and feedback is not None)


STREAMED = [raw for raw, *_ in KINDS] + [
    "Some text\ncall:list_files{}",
    "Let me see.\n```tool_code\nread_file(path='a.py')\n```\nThen more.",
    "<|channel>thought\nplan<|channel>response\nThe visible answer.<channel|>",
    "<|channel>thought\nA<channel|>B<|channel>thought\nC<channel|>D",
    "Code:\n```python\nprint('call:x')\n```\ncalled it.",
    "calling all units: ready.",
]


def opened_by_the_prompt(raw: str) -> bool:
    """A close before any opener: the prompt opened the thinking channel (what starts_in_thought tells)."""
    close, opener = raw.find("<channel|>"), raw.find("<|channel>")
    return close != -1 and (opener == -1 or close < opener)


@pytest.mark.parametrize("raw", STREAMED + [c["raw"] for c in CASES])
def test_streamed_increments_add_up_to_the_final_read(raw):
    inside = opened_by_the_prompt(raw)
    streamer = ReplyStreamer(starts_in_thought=inside)
    content, reasoning = [], []
    for piece in split_pieces(raw):
        c, r = streamer.feed(piece)
        content.append(c)
        reasoning.append(r)
    reply = read_reply(raw, "eos", max_new_tokens=512, call_id_prefix="call_1", starts_in_thought=inside)
    c, r = streamer.finish(reply)
    assert "".join(content) + c == reply.text
    assert "".join(reasoning) + r == reply.thoughts


def test_a_reply_that_starts_inside_a_thought_is_read_as_one():
    raw = "I should list the files.<channel|>" + call("list_files")
    inside = read_reply("I should list", "max_new_tokens", max_new_tokens=8, call_id_prefix="c", starts_in_thought=True)
    assert inside.thoughts == "I should list" and inside.text == ""
    streamer = ReplyStreamer(starts_in_thought=True)
    pieces = [streamer.feed(p) for p in split_pieces(raw)]
    assert "".join(c for c, _ in pieces) == "" and "".join(r for _, r in pieces) == "I should list the files."


PROSE = "The sieve marks every multiple of each prime as composite, then prints what is left. " * 3
# (reply, the unit its tail repeats, or None)
LOOPS = [
    ("There are 25 primes below 100; the largest is 34" + "Foo" * 70, "Foo"),
    ("x" * 200, "x"),
    ("print(i)\n" * 23, "print(i)\n"),
    ("a" * 199, None),  # shorter than the span
    ("b" + "ab" * 100, "ab"),
    ("c" + "ab" * 99 + "a", None),  # exactly the span, and its first character breaks the period
    (PROSE, None),  # a period of 85 characters: longer than any loop it stops
    ("abcdefghij" * 20, "abcdefghij"),
    ((("q" * 79) + "!") * 3, "q" * 79 + "!"),  # a period of 80 characters, the longest it stops
    ((("q" * 80) + "!") * 3, None),
]


@pytest.mark.parametrize("raw, unit", LOOPS)
def test_a_reply_whose_tail_repeats_one_short_unit_is_found_and_no_other(raw, unit):
    assert repeating_tail(raw) == unit
