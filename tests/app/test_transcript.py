"""The chat view of a conversation: agent events become nested messages whose text is shown as text."""

from __future__ import annotations

import dataclasses
import html
import re

from agents.events import ModelDone, RunDone, RunPhase, StepDone, StepStarted, TextDelta, ToolStarted
from protocol import Comparison
from tests.app.factories import make_result, make_step
from ui.transcript import Transcript, divergence, step_title, timing_log


def plain(markdown: str) -> str:
    """What literal_markdown output reads as on screen (backslash escapes and entities undone)."""
    return html.unescape(re.sub(r"\\(.)", r"\1", markdown))


def play(events, task: str = "add numbers") -> Transcript:
    transcript = Transcript()
    transcript.start_turn(task)
    for event in events:
        transcript.apply(event)
    return transcript


def by_title(transcript: Transcript, prefix: str) -> dict:
    return next(m for m in transcript.messages if plain(m.get("metadata", {}).get("title", "")).startswith(prefix))


def test_a_tool_step_streams_then_shows_call_output_status_and_duration():
    step = make_step(1, code="print(6*7)", output="42\n", thoughts="I should compute.", text="Running it.")
    transcript = play([StepStarted(1), RunPhase(1, "baseline"), TextDelta(1, "Let me")])
    streaming = by_title(transcript, "Step 1")
    assert streaming["metadata"]["status"] == "pending" and streaming["content"] == "```\nLet me\n```"
    assert streaming["metadata"]["title"] == "Step 1 · generating (target only)…"
    for event in (ModelDone(step), ToolStarted(1, step.tool_calls[0])):
        transcript.apply(event)
    tool = by_title(transcript, "Tool: run_python")
    assert tool["metadata"]["status"] == "pending" and "```python\nprint(6*7)\n```" in tool["content"]
    transcript.apply(StepDone(step))
    parent = by_title(transcript, "Step 1")
    assert plain(parent["content"]) == "Running it." and "calls run_python" in plain(parent["metadata"]["title"])
    assert parent["metadata"]["status"] == "done"
    assert parent["metadata"]["duration"] == round(1.0 + 0.5 + 0.25, 3)
    assert parent["metadata"]["log"] == "target 1.00s · drafter 0.50s · 2.00× faster"
    assert tool["metadata"]["status"] == "done" and "**Output**\n```\n42\n```" in tool["content"]
    assert tool["metadata"]["parent_id"] == parent["metadata"]["id"] == "t1-step-1"
    assert plain(by_title(transcript, "Thoughts")["content"]) == "I should compute."


def test_model_and_user_text_is_literal_markdown_everywhere():
    hostile = '<img src=x> [a](https://e.com/) **b**'
    step = make_step(1, code=None, text=hostile, thoughts=hostile)
    transcript = play([StepStarted(1), ModelDone(step), RunDone("answered", hostile, (step,))], task=hostile)
    prose = [m["content"] for m in transcript.messages if not m["content"].startswith("```") and m["content"]]
    assert len(prose) >= 3  # the task, the thoughts, the final answer
    for content in prose:
        assert "<" not in content and "](" not in content and "**b" not in content
        assert plain(content) == hostile


def test_final_answer_closes_every_pending_message_and_is_shown_once():
    step = make_step(1)
    final = make_step(2, code=None, text="All tests pass.\u202e")
    transcript = play([StepStarted(1), ModelDone(step), StepStarted(2), ModelDone(final),
                       RunDone("answered", "All tests pass.\u202e", (step, final))])
    assert all(m.get("metadata", {}).get("status") != "pending" for m in transcript.messages)
    assert plain(transcript.messages[-1]["content"]) == "All tests pass.\\u202e"
    assert sum("All tests pass" in plain(m["content"]) for m in transcript.messages) == 1
    assert [s.index for s in transcript.ordered_steps()] == [1, 2]


def test_stop_and_error_endings_are_announced():
    stopped = play([StepStarted(1), RunDone("stopped", "", ())])
    assert "Stopped" in stopped.messages[-1]["content"] and "left out of the totals" in stopped.messages[-1]["content"]
    failed = play([RunDone("error", "", (), error="CUDA out of memory\x1b[0m")])
    assert "The run failed" in failed.messages[-1]["content"] and "\\x1b[0m" in plain(failed.messages[-1]["content"])


def test_a_stopped_step_is_titled_stopped_and_left_out_in_its_log():
    step = make_step(1, code=None)
    cut = dataclasses.replace(step.comparison.baseline, stop_reason="stopped")
    step = dataclasses.replace(step, comparison=dataclasses.replace(step.comparison, baseline=cut))
    assert step.stopped
    transcript = play([StepStarted(1), ModelDone(step)])
    assert plain(by_title(transcript, "Step 1")["metadata"]["title"]) == "Step 1 · stopped"
    assert timing_log(step).endswith("stopped: left out of totals")


def test_a_divergent_step_names_the_position_and_both_tokens():
    base = make_result(["a", "<b>", "c"], 1.0)
    draft = make_result(["a", "<i>", "c"], 0.5, drafted=[True, False, True])
    step = dataclasses.replace(make_step(1, code=None), result=draft,
                               comparison=Comparison(base, draft, "baseline", first_divergence=1))
    assert divergence(step) == {"index": 1, "baseline_token": "<b>", "drafter_token": "<i>"}
    transcript = play([StepStarted(1), ModelDone(step)])
    parent = by_title(transcript, "Step 1")
    assert "outputs differ at token 1" in parent["metadata"]["log"]
    assert "Outputs differ** at token 1: baseline “<b>” vs drafter “<i>”" in plain(parent["content"])
    assert "<b>" not in parent["content"]


def test_a_slower_drafter_run_says_slower():
    assert "0.50× SLOWER" in timing_log(make_step(1, baseline_s=0.5, drafter_s=1.0))


def test_tool_output_with_control_characters_is_escaped():
    step = make_step(1, output="ok\x00\x1b]0;pwned\x07\udcff")
    transcript = play([StepStarted(1), ModelDone(step), StepDone(step)])
    content = by_title(transcript, "Tool: run_python")["content"]
    assert "\\x00\\x1b]0;pwned\\x07\\udcff" in content
    content.encode("utf-8")


def test_a_follow_up_is_a_new_turn_in_the_same_chat_with_its_own_ids():
    first = make_step(1, code=None, text="Done.")
    transcript = play([StepStarted(1), ModelDone(first), RunDone("answered", "Done.", (first,))])
    transcript.start_turn("now add type hints")
    assert transcript.steps == {} and transcript.done is None and transcript.turn == 2
    second = make_step(1, code=None, text="Added.")
    for event in (StepStarted(1), ModelDone(second), RunDone("answered", "Added.", (second,))):
        transcript.apply(event)
    users = [plain(m["content"]) for m in transcript.messages if m["role"] == "user"]
    assert users == ["add numbers", "now add type hints"]
    ids = [m["metadata"]["id"] for m in transcript.messages if "id" in m.get("metadata", {})]
    assert ids == ["t1-step-1", "t2-step-1"]
    assert list(transcript.steps) == [1] and transcript.steps[1] is second


def test_a_step_limit_shows_its_note_not_the_agents_message():
    step = make_step(1)
    transcript = play([StepStarted(1), ModelDone(step), StepDone(step),
                       RunDone("step_limit", "Step limit reached: 1 steps ran without a final answer.", (step,))])
    assert "Step limit reached" in transcript.messages[-1]["content"]
    assert not any("steps ran without" in m["content"] for m in transcript.messages)


def test_a_run_ended_for_repeating_itself_says_so_and_how_to_go_on():
    step = make_step(1)
    transcript = play([StepStarted(1), ModelDone(step), StepDone(step),
                       RunDone("repeating", "Ended: step 1 ran to the token limit repeating 'Foo'.", (step,))])
    assert "repeating itself" in transcript.messages[-1]["content"]
    assert "follow-up" in transcript.messages[-1]["content"]


def test_a_step_with_only_a_malformed_call_is_titled_as_such():
    bad = dataclasses.replace(make_step(1, code=None), kind="tool_call", parse_error="unterminated string")
    transcript = play([StepStarted(1), ModelDone(bad)])
    assert "malformed tool call" in plain(by_title(transcript, "Step 1")["metadata"]["title"])


def test_every_step_kind_has_a_title_and_feedback_to_the_model_is_shown():
    base = make_step(1, code=None)
    titles = {kind: step_title(dataclasses.replace(base, kind=kind))
              for kind in ("final_answer", "cut_off", "format_error", "stopped")}
    assert titles == {"final_answer": "final answer", "cut_off": "cut off at the token limit (the model was told)",
                      "format_error": "format error (the model was told)", "stopped": "stopped"}
    cut = dataclasses.replace(base, kind="cut_off", feedback="Your reply hit max_new_tokens=512 <b>; go on.")
    transcript = play([StepStarted(1), ModelDone(cut)])
    told = by_title(transcript, "What the agent told the model")
    assert plain(told["content"]) == "Your reply hit max_new_tokens=512 <b>; go on." and "<b>" not in told["content"]
    assert told["metadata"]["parent_id"] == "t1-step-1"
