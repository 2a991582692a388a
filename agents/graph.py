"""The coding agent as an explicit LangGraph StateGraph, and `run_agent`, which streams its events.

Owns the loop: call_model -> (tools -> call_model | call_model)* -> end, and the step records. Knows the
model only through protocol.ChatModel and code only through the Toolbox; no torch, no gradio.

Conversation state. The graph state is plain data (the chat messages and a few scalars), so it pickles
and checkpoints as is. A follow-up passes the previous RunDone.messages back as `history`: that works
wherever the run happens, including ZeroGPU, which runs the GPU function in a forked worker whose memory
never reaches the server. A LangGraph checkpointer can be given as well (`checkpointer=`, `thread_id=`, e.g.
an InMemorySaver held by a server on a dedicated GPU, keyed by the browser session): every super-step is
then saved under the thread, and a run given no history continues the thread's saved conversation.
The step records (token stats, timings) travel in the event stream, not in the checkpointed state.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from agents import prompts
from agents.events import (
    MAX_TASK_CHARS, AgentConfig, AgentEvent, EndReason, ModelDone, RunDone, RunPhase, Step, StepDone, StepStarted,
    TextDelta, ToolResult, ToolStarted,
)
from agents.tools import ToolOutcome, Toolbox, truncate
from agents.turns import (
    Reply, assistant_message, defang, feedback_message, read_reply, repeating_tail, starts_in_thought, tool_message,
)
from protocol import ChatModel, Comparison, GenerationResult, Message, ModelError, StopCheck

__all__ = ["AgentState", "build_agent", "check_task", "defang", "run_agent", "system_prompt"]
log = logging.getLogger(__name__)
ROLES = ("system", "user", "assistant", "tool")


class AgentState(TypedDict):
    messages: list[Message]  # the conversation, in the chat template's message format
    step: int  # model steps taken in this run
    pending_step: int | None  # the step whose tool calls the tools node runs next
    end: EndReason | None
    final_answer: str
    error: str | None


def system_prompt(toolbox: Toolbox) -> str:
    return prompts.system_prompt(toolbox.can_run_code)


def check_task(task: Any) -> str | None:
    """Why a task cannot start a run, or None."""
    if not isinstance(task, str) or not task.strip():
        return "The task is empty: type a task first."
    if len(task) > MAX_TASK_CHARS:
        return f"The task is {len(task):,} characters long; the limit is {MAX_TASK_CHARS:,}. Shorten it."
    return None


def start_messages(task: str, history: Sequence[Message], system: str) -> list[Message]:
    """The conversation a run starts from: this run's system prompt, the earlier turns, the new task."""
    messages = copy.deepcopy([dict(m) for m in history])
    for i, m in enumerate(messages):
        if m.get("role") not in ROLES or not isinstance(m.get("content", ""), (str, type(None))):
            raise ValueError(f"history[{i}] is not a chat message with a role ({', '.join(ROLES)}) and text content; "
                             "pass RunDone.messages of an earlier run.")
    if messages and messages[0]["role"] == "system":
        messages = messages[1:]
    return [{"role": "system", "content": system}, *messages, {"role": "user", "content": task}]


def _stopped(should_stop: StopCheck | None) -> bool:
    return bool(should_stop and should_stop())


def _describe(error: Exception) -> str:
    return str(error) if isinstance(error, ModelError) else f"{type(error).__name__}: {error}"


def build_agent(model: ChatModel, toolbox: Toolbox, config: AgentConfig, should_stop: StopCheck | None = None, *,
                checkpointer: Any = None, turn: int = 1):
    """Compile the agent graph for one run (`turn`: which user turn of the conversation, for call ids)."""
    tool_specs = toolbox.specs()
    # The pending step of this run until its tools ran, with the stand-in call's response (if any).
    records: dict[int, tuple[Step, Message | None]] = {}

    def generate(index: int, messages: list[Message]) -> tuple[GenerationResult, Comparison | None]:
        writer = get_stream_writer()
        on_text: Callable[[str, int], None] = lambda text, tokens: writer(TextDelta(index, text, tokens))
        if config.mode == "compare":
            comparison = model.compare(messages, tool_specs, settings=config.settings, on_text=on_text,
                                       on_run=lambda run: writer(RunPhase(index, run)), should_stop=should_stop)
            return comparison.drafter, comparison
        result = model.generate(messages, tool_specs, use_drafter=config.mode == "drafter",
                                settings=config.settings, on_text=on_text, should_stop=should_stop)
        return result, None

    def call_model(state: AgentState) -> dict:
        writer = get_stream_writer()
        if _stopped(should_stop):
            return {"end": "stopped", "pending_step": None}
        if state["step"] >= config.max_steps:
            return {"end": "step_limit", "pending_step": None, "final_answer":
                    f"Step limit reached: {config.max_steps} steps ran without a final answer."}
        index = state["step"] + 1
        writer(StepStarted(index))
        try:
            result, comparison = generate(index, state["messages"])
        except Exception as e:  # noqa: BLE001 - any model failure ends the run with its finished steps
            log.warning("model call of step %d failed: %s", index, e, exc_info=not isinstance(e, ModelError))
            return {"end": "error", "error": _describe(e), "pending_step": None, "step": index}
        reply = read_reply(result.text, result.stop_reason, max_new_tokens=config.settings.max_new_tokens,
                           call_id_prefix=f"call_{turn}_{index}",
                           starts_in_thought=starts_in_thought(state["messages"], config.settings))
        step = make_step(index, reply, result, comparison)
        writer(ModelDone(step))
        update: dict[str, Any] = {"step": index, "pending_step": None}
        if step.kind == "stopped":
            writer(StepDone(step))
            return {**update, "end": "stopped"}
        messages = [*state["messages"], assistant_message(reply)]
        loop = repeating_tail(result.text) if result.stop_reason == "max_new_tokens" and not reply.calls else None
        if loop is not None:  # the messages stay as if the run went on, so that a follow-up can go on from here
            writer(StepDone(step))
            told = feedback_message(reply)
            return {**update, "messages": [*messages, *([told] if told else [])], "end": "repeating",
                    "final_answer": f"Ended: step {index} ran to the token limit repeating {loop[-40:]!r}."}
        if reply.calls or reply.error_call:  # the tools node answers every call, the stand-in one included
            records[index] = (step, feedback_message(reply))
            return {**update, "messages": messages, "pending_step": index}
        writer(StepDone(step))
        if step.kind == "final_answer":
            return {**update, "messages": messages, "end": "answered", "final_answer": step.text}
        return {**update, "messages": [*messages, feedback_message(reply)]}  # cut off or malformed: go on

    def run_tools(state: AgentState) -> dict:
        writer = get_stream_writer()
        step, stand_in_reply = records.pop(state["pending_step"])
        results, replies = [], []
        for call in step.tool_calls:
            if _stopped(should_stop):
                outcome = ToolOutcome("Not run: the run was stopped.", True, 0.0)
            else:
                writer(ToolStarted(step.index, call))
                outcome = toolbox.call(call.name, call.arguments)
            output = _ceiling(outcome.output, config)
            results.append(ToolResult(call=call, output=output, is_error=outcome.is_error,
                                      duration_s=outcome.duration_s, exit_code=outcome.exit_code,
                                      timed_out=outcome.timed_out, killed=outcome.killed))
            replies.append(tool_message(call.id, call.name, output))
        if stand_in_reply is not None:  # why the unreadable call was not run
            replies.append({**stand_in_reply, "content": _ceiling(stand_in_reply["content"], config)})
        done = dataclasses.replace(step, tool_results=tuple(results), tool_s=sum(r.duration_s for r in results))
        writer(StepDone(done))
        return {"messages": [*state["messages"], *replies], "pending_step": None}

    def route_after_model(state: AgentState) -> Literal["tools", "call_model", "__end__"]:
        if state["pending_step"] is not None:
            return "tools"
        return END if state["end"] is not None else "call_model"

    graph = StateGraph(AgentState)
    graph.add_node("call_model", call_model)
    graph.add_node("tools", run_tools)
    graph.add_edge(START, "call_model")
    graph.add_conditional_edges("call_model", route_after_model)
    graph.add_edge("tools", "call_model")
    return graph.compile(checkpointer=checkpointer)


def _ceiling(text: str, config: AgentConfig) -> str:
    return text if config.tool_output_chars is None else truncate(text, config.tool_output_chars)


def make_step(index: int, reply: Reply, result: GenerationResult, comparison: Comparison | None) -> Step:
    """The step record of one model call, before its tools run."""
    return Step(index=index, kind=reply.kind, text=reply.text, thoughts=reply.thoughts, tool_calls=reply.calls,
                tool_results=(), tool_s=0.0, result=result, comparison=comparison, parse_error=reply.parse_error,
                feedback=reply.feedback)


def run_agent(model: ChatModel, task: str, *, config: AgentConfig = AgentConfig(), workspace: Path,
              sandbox=None, should_stop: StopCheck | None = None, history: Sequence[Message] = (),
              checkpointer: Any = None, thread_id: str | None = None) -> Iterator[AgentEvent]:
    """Run the agent on `task`, yielding its events as they happen; the last one is always a RunDone.

    `history`: the messages of earlier turns of this conversation (a previous RunDone.messages). With a
    `checkpointer`, the run is saved under `thread_id`, and with no history continues that thread.
    """
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    Path(workspace).mkdir(parents=True, exist_ok=True)
    toolbox = Toolbox(Path(workspace), sandbox, should_stop=should_stop)
    system = system_prompt(toolbox)
    run_config = {"recursion_limit": 2 * config.max_steps + 8,
                  "configurable": {"thread_id": thread_id or f"run-{uuid.uuid4().hex}"}}
    if not history and checkpointer is not None and thread_id is not None:
        saved = checkpointer.get_tuple({"configurable": {"thread_id": thread_id}})
        history = (saved.checkpoint["channel_values"].get("messages") or ()) if saved else ()
    graph = build_agent(model, toolbox, config, should_stop, checkpointer=checkpointer,
                        turn=1 + sum(m.get("role") == "user" for m in history))

    def finish(reason: EndReason, steps: Sequence[Step], messages: Sequence[Message], *, final_answer: str = "",
               error: str | None = None) -> RunDone:
        return RunDone(reason=reason, final_answer=final_answer, steps=tuple(steps), error=error,
                       messages=tuple(messages), task=task if isinstance(task, str) else "", system_prompt=system,
                       tool_specs=tuple(toolbox.specs()), started_at=started_at)

    problem = check_task(task)
    try:
        messages = start_messages(task, history, system) if problem is None else list(history)
    except ValueError as e:
        problem, messages = str(e), []
    if problem is not None:
        yield finish("error", (), list(history) if not messages else messages, error=problem)
        return
    state = AgentState(messages=messages, step=0, pending_step=None, end=None, final_answer="", error=None)
    steps: list[Step] = []
    try:
        for mode, chunk in graph.stream(state, run_config, stream_mode=["custom", "values"]):
            if mode == "custom":
                if isinstance(chunk, StepDone):
                    steps.append(chunk.step)
                yield chunk
            else:
                state = chunk
    except Exception as e:  # noqa: BLE001 - whatever broke, the run ends with a RunDone that keeps its steps
        log.exception("agent run failed")
        yield finish("error", steps, state["messages"], error=f"Internal error: {_describe(e)}")
        return
    reason = state["end"] or "error"
    yield finish(reason, steps, state["messages"], final_answer=state["final_answer"],
                 error=(state["error"] or "the run ended without a reason") if reason == "error" else None)
