"""The page's numbers from hand-built records: stopped steps, divergence, tok/s and TTFT, the cumulative view,
segmentation by content and acceptance by content."""

from __future__ import annotations

import pytest

from agents.events import Step
from agents.report import (
    NO_REJECTIONS_NOTE, content_acceptance, cumulative_rows, run_content_acceptance, run_totals, step_rows,
)
from agents.segments import segment_text, token_categories
from protocol import Comparison, DrafterStats, GenerationResult, GenerationStats, first_divergence

Q = '<|"|>'


def result(tokens, wall_s, *, drafted=None, rejected=None, stop="eos", ttft_s=0.1, k=4):
    drafter = None
    if drafted is not None:
        rounds = max(1, sum(rejected or []) or 1)
        drafter = DrafterStats(k, rounds, rounds * k, sum(drafted), (0.5,) * k, wall_s / 4, wall_s / 2)
    stats = GenerationStats(drafted is not None, 20, len(tokens), ttft_s, wall_s - ttft_s, wall_s, None, drafter)
    return GenerationResult("".join(tokens), tuple(hash(t) % 1000 for t in tokens), tuple(tokens), stop, stats,
                            tuple(drafted) if drafted is not None else None,
                            tuple(rejected) if rejected is not None else None)


def compare_step(index, base, draft, kind="tool_call"):
    comparison = Comparison(base, draft, "baseline", first_divergence(base.token_ids, draft.token_ids))
    return Step(index, kind, "", "", (), (), 0.0, draft, comparison)


def single_step(index, run, kind="final_answer"):
    return Step(index, kind, "", "", (), (), 0.0, run)


ABC = ["a", "b", "c", "d"]
MARKS = dict(drafted=[False, True, True, False], rejected=[False, False, False, True])


def test_a_stopped_step_is_marked_and_left_out_of_speedup_and_time_saved():
    steps = [compare_step(1, result(ABC, 2.0), result(ABC, 1.0, **MARKS)),
             compare_step(2, result(ABC * 50, 25.0), result(["a"], 0.1, drafted=[False], rejected=[False],
                                                               stop="stopped")),
             compare_step(3, result(ABC, 3.0), result(ABC, 1.0, **MARKS))]
    rows, totals = step_rows(steps), run_totals(steps)
    assert [r["stopped"] for r in rows] == [False, True, False]
    assert [r["stop_reason"] for r in rows] == ["eos", "stopped", "eos"]
    assert (rows[1]["baseline_stop_reason"], rows[1]["drafter_stop_reason"]) == ("eos", "stopped")
    assert rows[1]["speedup"] is None and rows[0]["speedup"] == pytest.approx(2.0)
    assert rows[1]["divergence"] is None and rows[1]["identical"] is None  # only the lengths differ
    assert totals["speedup"] == pytest.approx(5.0 / 2.0) and totals["saved_s"] == pytest.approx(3.0)
    assert totals["excluded_steps"] == [2]
    assert (totals["compared_baseline_s"], totals["compared_drafter_s"]) == (pytest.approx(5.0), pytest.approx(2.0))
    assert totals["baseline_s"] == pytest.approx(30.0) and totals["drafter_s"] == pytest.approx(2.1)  # all time spent
    assert cumulative_rows(steps) == [
        {"step": 1, "baseline_s": pytest.approx(2.0), "drafter_s": pytest.approx(1.0), "saved_s": pytest.approx(1.0)},
        {"step": 3, "baseline_s": pytest.approx(5.0), "drafter_s": pytest.approx(2.0), "saved_s": pytest.approx(3.0)}]


def test_a_stop_during_the_baseline_run_also_excludes_the_step():
    steps = [compare_step(1, result(["a"], 0.5, stop="stopped"), result(ABC, 1.0, **MARKS))]
    assert step_rows(steps)[0]["stopped"] and run_totals(steps)["speedup"] is None
    assert run_totals(steps)["excluded_steps"] == [1] and cumulative_rows(steps) == []


@pytest.mark.parametrize("base, draft, stop, expected, identical", [
    (["a", "b", "c"], ["a", "x", "c"], "eos", {"index": 1, "baseline_token": "b", "drafter_token": "x"}, False),
    (["a", "b"], ["a", "b", "c"], "eos", {"index": 2, "baseline_token": None, "drafter_token": "c"}, False),
    (["a", "b", "c"], ["a", "b", "c"], "eos", None, True),
    (["a", "x"], ["a", "b", "c"], "stopped", {"index": 1, "baseline_token": "x", "drafter_token": "b"}, False),
    (["a"], ["a", "b", "c"], "stopped", None, None),
])
def test_divergence_names_the_position_and_both_tokens(base, draft, stop, expected, identical):
    step = compare_step(1, result(base, 1.0, stop=stop), result(draft, 1.0, drafted=[False] * len(draft),
                                                                 rejected=[False] * len(draft)))
    row = step_rows([step])[0]
    assert (row["divergence"], row["identical"]) == (expected, identical)


def test_tokens_per_second_and_time_to_first_token_per_side():
    base, draft = result(ABC, 2.0, ttft_s=0.4), result(ABC, 0.5, ttft_s=0.25, **MARKS)
    row = step_rows([compare_step(1, base, draft)])[0]
    assert (row["baseline_tokens_per_s"], row["drafter_tokens_per_s"]) == (pytest.approx(2.0), pytest.approx(8.0))
    assert (row["baseline_ttft_s"], row["drafter_ttft_s"]) == (0.4, 0.25)
    single = step_rows([single_step(1, result(ABC, 1.0))])[0]
    assert single["baseline_tokens_per_s"] == 4.0 and single["drafter_tokens_per_s"] is None
    assert single["drafter_ttft_s"] is None and single["divergence"] is None


# ---- segmentation: the parser's layout, token by token ----

CALL_TOKENS = ["<|channel>", "thought\n", "plan", "<channel|>", "Here", " it", " is", "<|tool_call>", "call", ":",
               "write_file", "{", "content", ":", Q, "x", " =", " 1", Q, ",", "path", ":", Q, "a.py", Q, "}",
               "<tool_call|>"]
CALL_CATEGORIES = (["thought"] * 4 + ["prose"] * 3 + ["tool_call"] * 8 + ["code"] * 3 + ["tool_call"] * 9)


@pytest.mark.parametrize("tokens, categories", [
    (CALL_TOKENS, CALL_CATEGORIES),
    (["Use", " this", ":\n", "```", "python", "\n", "x", " = 1", "\n", "```", "\n", "Done", "."],
     ["prose"] * 3 + ["code"] * 7 + ["prose"] * 3),
    (["I", " think", "<channel|>", "Answer"], ["thought"] * 3 + ["prose"]),  # the prompt opened the channel
    (["<|tool_call>", "call", ":", "f", "{", "a", ":", "]", "}", "<tool_call|>"], ["tool_call"] * 10),  # unreadable
    (["<|tool_call>", "call:run_python{code:", Q, "print(1)", "\n", Q, "}", "<tool_call|>"],
     ["tool_call"] * 3 + ["code"] * 2 + ["tool_call"] * 3),
    (["plain", " ", "text"], ["prose"] * 3),
])
def test_tokens_fall_into_the_parsers_segments(tokens, categories):
    assert token_categories(tokens) == tuple(categories)


def test_segments_cover_the_text_in_order():
    text = "".join(CALL_TOKENS)
    spans = segment_text(text)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


# ---- acceptance by content ----

def test_acceptance_by_content_counts_accepted_and_tried_per_category():
    n = len(CALL_TOKENS)
    drafted = [False] * n
    rejected = [False] * n
    for i in (5, 6, 15, 16, 17, 20):  # accepted: " it", " is", the three code tokens, "path"
        drafted[i] = True
    for i in (4, 14, 21, 22):  # rejected: "Here", the code-opening delimiter, ":", a delimiter
        rejected[i] = True
    acceptance = content_acceptance(result(CALL_TOKENS, 1.0, drafted=drafted, rejected=rejected))
    assert {c: (r["tokens"], r["accepted"], r["tried"]) for c, r in acceptance.items()} == {
        "thought": (4, 0, 0), "prose": (3, 2, 3), "code": (3, 3, 3), "tool_call": (17, 1, 4)}
    assert acceptance["code"]["rate"] == 1.0 and acceptance["tool_call"]["rate"] == 0.25
    assert acceptance["thought"]["rate"] is None and acceptance["prose"]["rate"] == pytest.approx(2 / 3)
    assert all(r["note"] is None for r in acceptance.values())


def test_without_draft_rejected_the_unknowns_are_none_and_say_why():
    acceptance = content_acceptance(result(ABC, 1.0, drafted=[False, True, True, False]))
    assert acceptance["prose"]["accepted"] == 2 and acceptance["prose"]["tokens"] == 4
    assert acceptance["prose"]["tried"] is None and acceptance["prose"]["rate"] is None
    assert acceptance["prose"]["accepted_share"] == 0.5 and acceptance["prose"]["note"] == NO_REJECTIONS_NOTE


def test_acceptance_by_content_of_steps_and_runs():
    one = compare_step(1, result(ABC, 2.0), result(ABC, 1.0, **MARKS))
    two = single_step(2, result(ABC, 1.0, **MARKS))
    assert content_acceptance(one)["prose"] == {"tokens": 4, "accepted": 2, "tried": 3, "rate": pytest.approx(2 / 3),
                                                "accepted_share": 0.5, "note": None}
    assert run_content_acceptance([one, two])["prose"]["tried"] == 6
    baseline_only = single_step(3, result(ABC, 1.0))
    assert content_acceptance(baseline_only) is None and run_content_acceptance([baseline_only]) is None
