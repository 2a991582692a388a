"""Map the agent's event stream to chat messages (dicts gr.Chatbot accepts), turn by turn.

Pure: knows the agent's event types, nothing of gradio, models or timing code. Every piece of model, tool
or user text passes through ui.render (literal_markdown or fence) before it reaches a message, so it is
shown as text. A conversation has turns (the task, then follow-ups); message ids carry the turn.
"""

from __future__ import annotations

from typing import Any

from agents.events import (
    AgentEvent, ModelDone, RunDone, RunPhase, Step, StepDone, StepStarted, TextDelta, ToolStarted,
)
from agents.report import divergence
from ui.render import divergence_note, fence, literal_markdown, tool_call_markdown

_END_NOTES = {
    "stopped": "**Stopped.** The run ended at your request; a step cut short is left out of the totals.",
    "step_limit": "**Step limit reached** before the agent gave a final answer. Ask a follow-up to go on.",
    "repeating": "**Ended: the model was repeating itself.** Its last reply ran to the token limit repeating the "
                 "same few words; told to go on, greedy decoding would repeat them again. Ask a follow-up or "
                 "rephrase the task.",
}
STREAM_TAIL_CHARS = 4000


def llm_s(step: Step) -> float:
    if step.comparison is not None:
        return step.comparison.baseline.stats.wall_s + step.comparison.drafter.stats.wall_s
    return step.result.stats.wall_s


_KIND_TITLES = {"final_answer": "final answer", "cut_off": "cut off at the token limit (the model was told)",
                "format_error": "format error (the model was told)", "stopped": "stopped"}


def step_title(step: Step) -> str:
    """What the step came to, for its title: the calls it made, or its kind."""
    if step.stopped:
        return "stopped"
    if step.tool_calls:
        return "calls " + ", ".join(call.name for call in step.tool_calls)
    if step.parse_error and step.kind == "tool_call":
        return "malformed tool call"
    return _KIND_TITLES.get(step.kind, str(step.kind).replace("_", " "))


def timing_log(step: Step) -> str:
    """The step's numbers next to its title: both latencies, speedup (or stopped), divergence."""
    if step.comparison is not None:
        c = step.comparison
        base, draft = c.baseline.stats, c.drafter.stats
        log = f"target {base.wall_s:.2f}s · drafter {draft.wall_s:.2f}s · "
        if step.stopped:
            log += "stopped: left out of totals"
        else:
            log += f"{c.speedup:.2f}× {'faster' if c.speedup >= 1 else 'SLOWER'}"
        differs = divergence(step)
        if differs is not None:
            log += f" · outputs differ at token {differs['index']}"
        return log
    which = "drafter" if step.result.stats.used_drafter else "target only"
    log = f"{which} {step.result.stats.wall_s:.2f}s · {step.result.stats.new_tokens} tokens"
    return log + (" · stopped" if step.stopped else "")


class Transcript:
    """The chat view of a conversation, updated event by event; `steps` holds the current turn's steps."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.turn = 0
        self.steps: dict[int, Step] = {}
        self.done: RunDone | None = None
        self._by_id: dict[str, dict[str, Any]] = {}
        self._streamed: dict[int, str] = {}

    def start_turn(self, task: str) -> None:
        """A new run of the conversation: the task (or follow-up) as the user's message."""
        self.turn += 1
        self.steps, self.done, self._streamed = {}, None, {}
        self.messages.append({"role": "user", "content": literal_markdown(task)})

    def _id(self, name: str) -> str:
        return f"t{self.turn}-{name}"

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
            self._streamed[event.index] = ""
            self._add("", msg_id=self._id(f"step-{event.index}"), title=f"Step {event.index} · generating…",
                      status="pending")
        elif isinstance(event, RunPhase):
            self._streamed[event.index] = ""
            run = "target only" if event.run == "baseline" else "with the drafter"
            self._step_message(event.index)["metadata"]["title"] = f"Step {event.index} · generating ({run})…"
        elif isinstance(event, TextDelta):
            self._streamed[event.index] = (self._streamed.get(event.index, "") + event.text)[-STREAM_TAIL_CHARS:]
            self._step_message(event.index)["content"] = fence(self._streamed[event.index])
        elif isinstance(event, ModelDone):
            self._show_model_output(event.step)
        elif isinstance(event, ToolStarted):
            tool = self._by_id.get(self._id(f"tool-{event.index}-{event.call.id}"))
            if tool is not None:
                tool["metadata"]["status"] = "pending"
        elif isinstance(event, StepDone):
            self._show_tool_results(event.step)
        elif isinstance(event, RunDone):
            self._finish(event)

    def _step_message(self, index: int) -> dict[str, Any]:
        message = self._by_id.get(self._id(f"step-{index}"))
        if message is None:  # an event for a step whose start we missed: open it now
            self.apply(StepStarted(index))
            message = self._by_id[self._id(f"step-{index}")]
        return message

    def _show_model_output(self, step: Step) -> None:
        self.steps[step.index] = step
        parent = self._step_message(step.index)
        meta = parent["metadata"]
        meta["title"] = f"Step {step.index} · {literal_markdown(step_title(step))}"
        meta["log"] = timing_log(step)
        # A final answer is shown once, below the steps, when the run ends.
        shown = step.text if step.kind != "final_answer" else ""
        parent["content"] = literal_markdown(shown) if shown.strip() else ""
        note = divergence_note(divergence(step))
        if note:
            parent["content"] += ("\n\n" if parent["content"] else "") + \
                f"**Outputs differ** at {literal_markdown(note)} (the agent continued with the drafter's)."
        parent_id = meta["id"]
        if step.thoughts.strip():
            self._add(literal_markdown(step.thoughts), title="Thoughts", parent_id=parent_id, status="done")
        if step.parse_error:
            self._add(fence(step.parse_error), title="Unreadable tool call", parent_id=parent_id, status="done")
        if step.feedback:
            self._add(literal_markdown(step.feedback), title="What the agent told the model", parent_id=parent_id,
                      status="done")
        for call in step.tool_calls:
            self._add(tool_call_markdown(call.name, call.arguments), msg_id=self._id(f"tool-{step.index}-{call.id}"),
                      title=f"Tool: {literal_markdown(call.name)}", parent_id=parent_id, status="pending")
        if not step.tool_calls:
            meta["status"] = "done"
            meta["duration"] = round(llm_s(step), 3)

    def _show_tool_results(self, step: Step) -> None:
        self.steps[step.index] = step
        for result in step.tool_results:
            tool_id = self._id(f"tool-{step.index}-{result.call.id}")
            tool = self._by_id.get(tool_id)
            if tool is None:
                tool = self._add(tool_call_markdown(result.call.name, result.call.arguments), msg_id=tool_id,
                                 title=f"Tool: {literal_markdown(result.call.name)}",
                                 parent_id=self._id(f"step-{step.index}"))
            label = "**Error**" if result.is_error else "**Output**"
            tool["content"] += f"\n\n{label}\n{fence(result.output or '(no output)')}"
            tool["metadata"].update(status="done", duration=round(result.duration_s, 3))
        meta = self._step_message(step.index)["metadata"]
        meta.update(status="done", duration=round(llm_s(step) + step.tool_s, 3))

    def _close_pending(self) -> None:
        for message in self.messages:
            if message.get("metadata", {}).get("status") == "pending":
                message["metadata"]["status"] = "done"

    def _finish(self, done: RunDone) -> None:
        self.done = done
        for step in done.steps:
            self.steps.setdefault(step.index, step)
        self._close_pending()
        if done.reason == "answered" and done.final_answer.strip():
            self._add(literal_markdown(done.final_answer))
        if done.reason == "error":
            self._add(f"**The run failed.** {literal_markdown(done.error or 'unknown error')}")
        elif done.reason in _END_NOTES:
            self._add(_END_NOTES[done.reason])

    def add_error(self, message: str) -> None:
        """Show a failure that happened outside the agent (bad settings, model not loaded, GPU aborted)."""
        self._close_pending()
        self._add(f"**Error:** {literal_markdown(message)}")

    def ordered_steps(self) -> list[Step]:
        return [self.steps[i] for i in sorted(self.steps)]
