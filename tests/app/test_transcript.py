"""The chat view of a run: agent events become nested, escaped messages with status and duration."""

from __future__ import annotations

from agents.events import ModelDone, RunDone, RunPhase, StepDone, StepStarted, TextDelta, ToolStarted
from tests.app.factories import make_step
from ui.transcript import Transcript


def play(events) -> Transcript:
    transcript = Transcript("add numbers")
    for event in events:
        transcript.apply(event)
    return transcript


def by_title(transcript: Transcript, prefix: str) -> dict:
    return next(m for m in transcript.messages if m.get("metadata", {}).get("title", "").startswith(prefix))


def test_a_tool_step_streams_then_shows_call_output_status_and_duration():
    step = make_step(1, code="print(6*7)", output="42\n", thoughts="I should compute.", text="Running it.")
    transcript = play([StepStarted(1), RunPhase(1, "baseline"), TextDelta(1, "Let me")])
    streaming = by_title(transcript, "Step 1")
    assert streaming["metadata"]["status"] == "pending" and "Let me" in streaming["content"]
    for event in (ModelDone(step), ToolStarted(1, step.tool_calls[0])):
        transcript.apply(event)
    tool = by_title(transcript, "Tool: run_python")
    assert tool["metadata"]["status"] == "pending" and "```python\nprint(6*7)\n```" in tool["content"]
    transcript.apply(StepDone(step))
    parent = by_title(transcript, "Step 1")
    assert parent["content"] == "Running it." and "calls run_python" in parent["metadata"]["title"]
    assert parent["metadata"]["status"] == "done"
    assert parent["metadata"]["duration"] == round(1.0 + 0.5 + 0.25, 3)
    assert "baseline 1.00s · drafter 0.50s · 2.00×" == parent["metadata"]["log"]
    assert tool["metadata"]["status"] == "done" and "**Output**\n```\n42\n```" in tool["content"]
    assert tool["metadata"]["parent_id"] == parent["metadata"]["id"]
    assert by_title(transcript, "Thoughts")["content"] == "I should compute."


def test_final_answer_closes_every_pending_message_and_is_shown_escaped():
    step = make_step(1)
    final = make_step(2, code=None, text="The answer is 42\u202e")
    transcript = play([StepStarted(1), ModelDone(step), StepStarted(2), ModelDone(final),
                       RunDone("answered", "The answer is 42\u202e", (step, final))])
    assert all(m.get("metadata", {}).get("status") != "pending" for m in transcript.messages)
    assert transcript.messages[-1] == {"role": "assistant", "content": "The answer is 42\\u202e"}
    assert [s.index for s in transcript.ordered_steps()] == [1, 2]


def test_stop_and_error_endings_are_announced():
    stopped = play([StepStarted(1), RunDone("stopped", "", ())])
    assert "Stopped" in stopped.messages[-1]["content"]
    failed = play([RunDone("error", "", (), error="CUDA out of memory\x1b[0m")])
    assert "The run failed" in failed.messages[-1]["content"] and "\\x1b[0m" in failed.messages[-1]["content"]


def test_tool_output_with_control_characters_is_escaped():
    step = make_step(1, output="ok\x00\x1b]0;pwned\x07\udcff")
    transcript = play([StepStarted(1), ModelDone(step), StepDone(step)])
    content = by_title(transcript, "Tool: run_python")["content"]
    assert "\\x00\\x1b]0;pwned\\x07\\udcff" in content
    content.encode("utf-8")


def test_user_task_is_escaped():
    assert Transcript("hi\u202eevil").messages[0] == {"role": "user", "content": "hi\\u202eevil"}


def test_the_final_answer_is_shown_once():
    final = make_step(1, code=None, text="All tests pass.")
    transcript = play([StepStarted(1), ModelDone(final), RunDone("answered", "All tests pass.", (final,))])
    assert sum("All tests pass." in m["content"] for m in transcript.messages) == 1
    assert "final answer" in by_title(transcript, "Step 1")["metadata"]["title"]


def test_a_step_limit_shows_its_note_not_the_agents_message():
    step = make_step(1)
    transcript = play([StepStarted(1), ModelDone(step), StepDone(step),
                       RunDone("step_limit", "Step limit reached: 1 steps ran without a final answer.", (step,))])
    assert [m["content"] for m in transcript.messages].count(transcript.messages[-1]["content"]) == 1
    assert "Step limit reached" in transcript.messages[-1]["content"]
    assert not any("steps ran without" in m["content"] for m in transcript.messages)


def test_a_step_with_only_a_malformed_call_is_titled_as_such():
    import dataclasses
    bad = dataclasses.replace(make_step(1, code=None), kind="tool_call", parse_error="unterminated string")
    transcript = play([StepStarted(1), ModelDone(bad)])
    assert "malformed tool call" in by_title(transcript, "Step 1")["metadata"]["title"]
