"""Map the agent's event stream to chat messages (dicts gr.Chatbot accepts) and the steps seen so far.

Pure: knows the agent's event types, nothing of gradio, models or timing code. Every piece of model or
tool text passes through ui.render's escaping before it reaches a message.
"""

from __future__ import annotations

import time
from typing import Any

from agents.events import (
    AgentEvent, ModelDone, RunDone, RunPhase, Step, StepDone, StepStarted, TextDelta, ToolStarted,
)
from ui.render import escape_text, fence, tool_call_markdown

_END_NOTES = {
    "stopped": "**Stopped.** The run ended at your request.",
    "step_limit": "**Step limit reached** before the agent gave a final answer.",
}


def _llm_s(step: Step) -> float:
    if step.comparison is not None:
        return step.comparison.baseline.stats.wall_s + step.comparison.drafter.stats.wall_s
    return step.result.stats.wall_s


def _timing_log(step: Step) -> str:
    if step.comparison is not None:
        c = step.comparison
        return f"baseline {c.baseline.stats.wall_s:.2f}s · drafter {c.drafter.stats.wall_s:.2f}s · {c.speedup:.2f}×"
    which = "drafter" if step.result.stats.used_drafter else "baseline"
    return f"{which} {step.result.stats.wall_s:.2f}s · {step.result.stats.new_tokens} tokens"


class Transcript:
    """The chat view of one run, updated event by event."""

    def __init__(self, task: str) -> None:
        self.messages: list[dict[str, Any]] = [{"role": "user", "content": escape_text(task)}]
        self.steps: dict[int, Step] = {}
        self.done: RunDone | None = None
        self._by_id: dict[str, dict[str, Any]] = {}
        self._streamed: dict[int, str] = {}
        self._started_s: dict[int, float] = {}

    def _add(self, content: str, *, msg_id: str | None = None, **metadata: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if metadata or msg_id:
            message["metadata"] = {k: v for k, v in metadata.items() if v is not None}
            if msg_id:
                message["metadata"]["id"] = msg_id
        self.messages.append(message)
        if msg_id:
            self._by_id[msg_id] = message
        return message

    def apply(self, event: AgentEvent) -> None:
        """Fold one agent event into the messages."""
        if isinstance(event, StepStarted):
            self._started_s[event.index] = time.monotonic()
            self._streamed[event.index] = ""
            self._add("", msg_id=f"step-{event.index}", title=f"Step {event.index} · generating…", status="pending")
        elif isinstance(event, RunPhase):
            self._streamed[event.index] = ""
            self._step_message(event.index)["metadata"]["title"] = (
                f"Step {event.index} · generating ({event.run} run)…")
        elif isinstance(event, TextDelta):
            self._streamed[event.index] = self._streamed.get(event.index, "") + event.text
            self._step_message(event.index)["content"] = fence(self._streamed[event.index][-4000:])
        elif isinstance(event, ModelDone):
            self._show_model_output(event.step)
        elif isinstance(event, ToolStarted):
            tool = self._by_id.get(f"tool-{event.index}-{event.call.id}")
            if tool is not None:
                tool["metadata"]["status"] = "pending"
        elif isinstance(event, StepDone):
            self._show_tool_results(event.step)
        elif isinstance(event, RunDone):
            self._finish(event)

    def _step_message(self, index: int) -> dict[str, Any]:
        message = self._by_id.get(f"step-{index}")
        if message is None:  # an event for a step whose start we missed: open it now
            self.apply(StepStarted(index))
            message = self._by_id[f"step-{index}"]
        return message

    def _show_model_output(self, step: Step) -> None:
        self.steps[step.index] = step
        parent = self._step_message(step.index)
        meta = parent["metadata"]
        names = ", ".join(call.name for call in step.tool_calls)
        label = f"calls {names}" if names else "malformed tool call" if step.parse_error else "final answer"
        meta["title"] = f"Step {step.index} · {label}"
        meta["log"] = _timing_log(step)
        # A final answer is shown once, below the steps, when the run ends.
        shown = step.text if step.kind != "final_answer" else ""
        parent["content"] = escape_text(shown) if shown.strip() else ""
        parent_id = meta["id"]
        if step.thoughts.strip():
            self._add(escape_text(step.thoughts), title="Thoughts", parent_id=parent_id, status="done")
        if step.parse_error:
            self._add(fence(step.parse_error), title="Malformed tool call (sent back to the model)",
                      parent_id=parent_id, status="done")
        for call in step.tool_calls:
            self._add(tool_call_markdown(call.name, call.arguments), msg_id=f"tool-{step.index}-{call.id}",
                      title=f"Tool: {escape_text(call.name)}", parent_id=parent_id, status="pending")
        if not step.tool_calls:
            meta["status"] = "done"
            meta["duration"] = round(_llm_s(step), 3)

    def _show_tool_results(self, step: Step) -> None:
        self.steps[step.index] = step
        for result in step.tool_results:
            tool = self._by_id.get(f"tool-{step.index}-{result.call.id}")
            if tool is None:
                tool = self._add(tool_call_markdown(result.call.name, result.call.arguments),
                                 msg_id=f"tool-{step.index}-{result.call.id}", title=f"Tool: {escape_text(result.call.name)}",
                                 parent_id=f"step-{step.index}")
            label = "**Error**" if result.is_error else "**Output**"
            tool["content"] += f"\n\n{label}\n{fence(result.output or '(no output)')}"
            tool["metadata"].update(status="done", duration=round(result.duration_s, 3))
        meta = self._step_message(step.index)["metadata"]
        meta.update(status="done", duration=round(_llm_s(step) + step.tool_s, 3))

    def _finish(self, done: RunDone) -> None:
        self.done = done
        for step in done.steps:
            self.steps.setdefault(step.index, step)
        for message in self.messages:
            if message.get("metadata", {}).get("status") == "pending":
                message["metadata"]["status"] = "done"
        if done.reason == "answered" and done.final_answer.strip():
            self._add(escape_text(done.final_answer))
        if done.reason == "error":
            self._add(f"**The run failed.** {escape_text(done.error or 'unknown error')}")
        elif done.reason in _END_NOTES:
            self._add(_END_NOTES[done.reason])

    def add_error(self, message: str) -> None:
        """Show a failure that happened outside the agent (bad settings, model not loaded)."""
        for m in self.messages:
            if m.get("metadata", {}).get("status") == "pending":
                m["metadata"]["status"] = "done"
        self._add(f"**Error:** {escape_text(message)}")

    def ordered_steps(self) -> list[Step]:
        return [self.steps[i] for i in sorted(self.steps)]
