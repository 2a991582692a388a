"""The mini model's training corpus: tasks, hold-out, deliberate mistakes, and transcripts from the real tools."""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from agents.corpus import bugs, examples, more
from agents.corpus.build import Ctx, break_code
from agents.corpus.evaluate import HELDOUT_SEED, summarize
from agents.corpus.generate import (
    DATA, EXAMPLES_JSON, FAMILIES, SHIPPED_FAMILIES, example_tasks, is_example, is_held_out, play, read_corpus,
    sample_tasks, toolbox_tools,
)
from agents.corpus.plan import PlanError, PolicyModel, Task, call_text, invented_numbers, mentions

TOOLS = frozenset({"list_files", "read_file", "edit_file", "write_file", "run_python", "run_tests"})


@pytest.fixture(scope="module")
def sandbox():
    from agents.sandbox import open_sandbox

    box = open_sandbox()
    assert box.available, f"the corpus needs the real sandbox: {box.reason}"
    return box


def test_every_family_builds_varied_tasks_with_facts():
    for family, _ in FAMILIES:
        ctx = Ctx(random.Random(3), TOOLS)
        tasks = [family(ctx) for _ in range(12)]
        assert len({t.key for t in tasks}) > 1, family.__name__
        for t in tasks:
            assert t.text and t.facts and t.turns and t.turns[-1].calls, t.key
            assert all(c.name in TOOLS for turn in t.turns for c in turn.calls), t.key


def test_the_page_examples_map_to_tasks_with_their_exact_text():
    texts = [item["task"] for item in json.loads(EXAMPLES_JSON.read_text())]
    tasks = example_tasks(TOOLS)
    assert [t.text for t in tasks] == texts
    primes = next(t for t in tasks if t.family == "primes")
    assert primes.is_correct("There are 25 primes below 100.") and not primes.is_correct("There are 250 primes.")


def test_sampled_tasks_are_never_page_examples_and_split_by_parameters():
    texts = {t.text for t in example_tasks(TOOLS)}
    keys = {t.key for t in example_tasks(TOOLS)}
    train = sample_tasks(300, 1, TOOLS, held_out=False)
    held = sample_tasks(60, 2, TOOLS, held_out=True)
    assert not any(is_held_out(t) for t in train)
    assert all(is_held_out(t) for t in held)
    assert not any(is_example(t, texts, keys) for t in train + held)
    assert not {t.key for t in train} & {t.key for t in held}
    assert not {t.text for t in train} & texts


def test_the_committed_corpus_holds_the_examples_as_copies_and_no_held_back_task():
    header, transcripts = read_corpus(DATA)
    texts = {t.text for t in example_tasks(TOOLS)}
    keys = {t.key for t in example_tasks(TOOLS)}
    copies: Counter = Counter()
    corpus_keys = set()
    count = 0
    for t in transcripts:
        count += 1
        task_text = t["messages"][1]["content"]
        fake = Task(t["family"], task_text, t["key"], (), lambda _: "", ("x",))
        corpus_keys.add(t["key"])
        if is_example(fake, texts, keys):
            assert task_text in texts, t["key"]  # an example's exact wording (json_csv's data is drawn per copy)
            copies[task_text] += 1
        else:
            assert not is_held_out(fake), t["key"]
    assert sum(copies.values()) < 0.1 * count  # a few percent of the corpus: the rest are other variants
    assert copies == Counter({text: header["settings"]["example_copies"] for text in texts})
    held = sample_tasks(24, HELDOUT_SEED, TOOLS, held_out=True, families=SHIPPED_FAMILIES)
    assert not {t.key for t in held} & corpus_keys  # what evaluation calls held back never trained


def test_the_committed_corpus_holds_the_example_tasks_families_and_only_those():
    header, transcripts = read_corpus(DATA)
    assert header["settings"]["families"] == sorted(SHIPPED_FAMILIES)
    assert {t.family for t in example_tasks(TOOLS)} == set(SHIPPED_FAMILIES)
    assert {t["family"] for t in transcripts} == set(SHIPPED_FAMILIES)


def test_held_back_variants_can_be_drawn_from_the_shipped_families_alone():
    held = sample_tasks(40, 3, TOOLS, held_out=True, families=("primes", "roman"))
    assert {t.family for t in held} == {"primes", "roman"}


def test_the_committed_corpus_was_made_with_todays_tools_and_system_prompt(tmp_path):
    """Regenerate the corpus (python -m agents.corpus) and retrain when the tools or the prompt change."""
    from agents.graph import system_prompt
    from agents.tools import Toolbox

    header, transcripts = read_corpus(DATA)
    first = next(transcripts)

    class Box:
        available, reason = True, "stand-in sandbox"

    toolbox = Toolbox(tmp_path, Box())
    assert header["tools"] == toolbox.specs()
    assert first["messages"][0] == {"role": "system", "content": system_prompt(toolbox)}


FIRST_LINES = [
    # (family, parameters, the first statement after the quoted task, literals the code below the quote holds once)
    (examples.primes, {"limit": 190, "kind": "count"}, "LIMIT = 190", ["190"]),
    (examples.fizzbuzz, {"n": 24, "fn": "fb"}, "N = 24", ["24"]),
    (examples.roman, {"top": 3999}, "TOP = 3999", ["3999"]),
    (examples.roman, {"numbers": (4, 1990)}, "NUMBERS = [4, 1990]", ["1990"]),
    (bugs.fix_bug, {"bug": "median", "inputs": ([3, 1, 4, 1], [5, 2, 9])}, "def median(xs):", []),
    (examples.fib_timing, {"agree": 15, "n": 22}, "AGREE = 15", ["15", "22"]),
    (examples.brackets, {"cases": ("()", "((")}, "CASES = ['()', '((']", ["'(('"]),
    (examples.word_freq, {"sentence": "a b a", "top": 3, "path": "words.txt"}, "TOP = 3", []),  # "three" or "3"
]


@pytest.mark.parametrize("family,params,first,once", FIRST_LINES)
def test_the_planned_code_states_the_tasks_numbers_first_and_once(family, params, first, once):
    """A small model copies best from close by: the code opens by quoting the task's last line (a copy by
    induction), names the task's values right below it and uses the names after that, rather than writing a
    literal a function body later; the code is written before any data file it reads."""
    task = family(Ctx(random.Random(0), TOOLS), **params)
    first_call = task.turns[-1].calls[0]
    assert first_call.name == "write_file" and first_call.arguments["path"].endswith(".py")
    quote, body = first_call.arguments["content"].split("\n", 1)
    assert quote == '"""' + task.text.splitlines()[-1] + '"""'
    statements = [line for line in body.splitlines() if line and not line.startswith(("import ", "from "))]
    assert statements[0] == first
    for literal in once:
        assert literal in quote and body.count(literal) == 1, literal


def test_a_broken_line_occurs_once_and_differs_from_the_original():
    source = "def f(values):\n    total = sum(values)\n    return total\n\n\nprint(f([1, 2]))\n"
    for seed in range(20):
        broken = break_code(source, random.Random(seed))
        assert broken is not None
        text, bad, good = broken
        assert text.count(bad) == 1 and source.count(good) == 1 and bad != good
        assert text.replace(bad, good) == source


def test_mentions_matches_whole_words_only():
    assert mentions("There are 25 primes.", "25")
    assert not mentions("There are 250 primes.", "25")
    assert not mentions("version 1.25", "25")
    assert mentions("'((': False, '': True", "'': True")


def test_policy_text_is_the_native_call_format():
    from agents.corpus.plan import Call
    from agents.parser import parse_output

    text = call_text([Call("write_file", {"path": "a.py", "content": 'print("x")\n'}), Call("run_python", {"path": "a.py"})])
    parsed = parse_output(text)
    assert [c.name for c in parsed.tool_calls] == ["write_file", "run_python"]
    assert parsed.tool_calls[0].arguments == {"path": "a.py", "content": 'print("x")\n'}


def test_a_task_played_through_the_real_tools_gives_a_transcript_with_real_output(sandbox):
    task = examples.primes(Ctx(random.Random(0), toolbox_tools(sandbox)), limit=30, kind="count")
    transcript = play(task, sandbox)
    roles = [m["role"] for m in transcript.messages]
    assert roles[:3] == ["system", "user", "assistant"] and roles[-1] == "assistant"
    tool_output = "\n".join(m["content"] for m in transcript.messages if m["role"] == "tool")
    assert "There are 10 primes below 30; the largest is 29." in tool_output  # the sandbox really ran the sieve
    assert "10 primes below 30" in transcript.messages[-1]["content"]
    assert transcript.no_loss == []


def test_a_deliberate_mistake_really_fails_and_the_fix_is_kept_for_training(sandbox):
    tools = toolbox_tools(sandbox)
    ctx = Ctx(random.Random(5), tools, mistake_rate=1.0)
    task = next(t for t in (more.gcd_lcm(ctx) for _ in range(20)) if len(t.turns) == 2)
    transcript = play(task, sandbox)
    assistant = [i for i, m in enumerate(transcript.messages) if m["role"] == "assistant"]
    assert transcript.no_loss == [assistant[0]]  # the broken attempt is context, never a target
    first_reply = transcript.messages[assistant[0] + 1:assistant[1]]
    assert any("Error" in m["content"] or "exit code 1" in m["content"] for m in first_reply)
    assert task.is_correct(transcript.messages[-1]["content"])


def test_a_plan_that_goes_wrong_raises_instead_of_being_kept(sandbox):
    task = bugs.fix_bug(Ctx(random.Random(1), toolbox_tools(sandbox)), bug="median", inputs=([1, 2], [3]))
    wrong = Task(task.family, task.text, task.key, task.turns, task.answer, ("42",), task.output_facts)
    with pytest.raises(PlanError):
        play(wrong, sandbox, tries=1)


def test_the_policy_refuses_a_tool_the_toolbox_lacks():
    task = examples.primes(Ctx(random.Random(0), TOOLS), limit=30)
    policy = PolicyModel(task, ["read_file"])
    with pytest.raises(PlanError):
        policy.generate([{"role": "user", "content": task.text}], use_drafter=False)


INVENTED_CASES = [
    # (final answer, task text, tool output, numbers it invents)
    ("There are 25 primes below 100.", "primes below 100", "count: 25", []),
    ("There are 25 primes below 200; the largest is 17.", "primes below 100", "[2, 3, 5, 7, 11, 13, 17]\ncount: 25",
     ["200"]),
    ("It took 0.011111 s, about 133x faster.", "time both", "recursive: 0.012 s\niterative is 9000x faster",
     ["0.011111", "133"]),
    ("median([3, 1, 4, 1]) = 2.0", "run it on [3, 1, 4, 1]", "2.0", []),
    ("250 primes", "primes below 100", "count: 25", ["250"]),  # not matched inside a longer number
    ("Done, no numbers here.", "", "", []),
    ("a header row and 12 rows: Ada,42", "a list of twelve people", "Ada,42", []),  # number words count
    ("a header row and 13 rows: Ada,41", "a list of twelve people", "Ada,42", ["13", "41"]),
    ("it indexes with -1; last_item([2]) = 2", "", "", []),  # single digits are structure, never flagged
]


@pytest.mark.parametrize("answer,task,output,invented", INVENTED_CASES)
def test_invented_numbers_are_those_in_neither_the_task_nor_the_output(answer, task, output, invented):
    assert invented_numbers(answer, [task, output]) == invented


def test_a_planned_answer_repeats_what_the_code_printed_and_invents_nothing(sandbox):
    """Every fact a planned answer states was printed by the last tool call, so the model copies it from a few
    tokens back; and the evaluation's invented-number check passes the corpus's own answers."""
    tools = toolbox_tools(sandbox)
    tasks = example_tasks(tools) + sample_tasks(24, 5, tools, held_out=False, mistake_rate=0.0,
                                                families=SHIPPED_FAMILIES)
    assert len({t.family for t in tasks}) == len(SHIPPED_FAMILIES)
    for task in tasks:
        transcript = play(task, sandbox)
        outputs = [m["content"] for m in transcript.messages if m["role"] == "tool"]
        answer = transcript.messages[-1]["content"]
        assert invented_numbers(answer, [task.text, *outputs]) == [], (task.key, answer)
        for fact in task.facts:
            assert fact.lower() in outputs[-1].lower(), (task.key, fact, outputs[-1])


def test_the_evaluation_counts_how_each_run_ended():
    def record(reason, correct=False):
        return {"reason": reason, "correct": correct, "answer_correct": correct, "invented_numbers": [],
                "tool_calls": ["run_python"], "ran_code": True, "malformed_calls": 0, "step_stats": [], "content": None}
    summary = summarize([record("answered", True), record("answered"), record("repeating"), record("step_limit"),
                         record("repeating")])
    assert (summary["runs"], summary["correct"], summary["answered"], summary["ended_repeating"],
            summary["step_limit"]) == (5, 1, 2, 2, 1)
