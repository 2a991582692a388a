"""The coding agent as an explicit LangGraph StateGraph, and `run_agent`, which streams its events.

Owns the loop: model node -> (tools node -> model node)* -> end, the chat messages it builds, and the
step records. Knows the model only through protocol.ChatModel and code only through the Toolbox; no
torch, no gradio.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Callable, Iterator, Literal, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from agents.events import (
    AgentConfig, AgentEvent, EndReason, ModelDone, RunDone, RunPhase, Step, StepDone, StepStarted, TextDelta,
    ToolCall, ToolResult, ToolStarted,
)
from agents import prompts
from agents.parser import ParsedOutput, parse_output
from agents.tools import ToolOutcome, Toolbox, truncate
from protocol import ChatModel, Comparison, GenerationResult, Message, ModelError, StopCheck



class AgentState(TypedDict):
    messages: list[Message]  # the chat so far, in the chat template's message format
    steps: list[Step]  # finished steps
    pending: Step | None  # the model's latest step, whose tool calls the tools node runs next
    end: EndReason | None
    final_answer: str
    error: str | None


def system_prompt(toolbox: Toolbox) -> str:
    return prompts.system_prompt(toolbox.can_run_code)


def initial_state(task: str, toolbox: Toolbox) -> AgentState:
    messages = [{"role": "system", "content": system_prompt(toolbox)}, {"role": "user", "content": task}]
    return AgentState(messages=messages, steps=[], pending=None, end=None, final_answer="", error=None)


# Special-token spellings in tool output would become real tokens in the prompt: break them up.
_SPECIAL = re.compile(r"<\|([^<>|]{0,20})>|<([^<>|]{0,20})\|>|<\|\"\|>")


def defang(text: str) -> str:
    """Tool output as the model may see it: `<|x>` and `<x|>` lose their power as special tokens."""
    return _SPECIAL.sub(lambda m: m.group(0).replace("|", "¦"), text)


def _stopped(should_stop: StopCheck | None) -> bool:
    return bool(should_stop and should_stop())


def build_agent(model: ChatModel, toolbox: Toolbox, config: AgentConfig, should_stop: StopCheck | None = None):
    """Compile the agent graph for one run."""
    tool_specs = toolbox.specs()

    def generate(index: int, messages: list[Message]) -> tuple[GenerationResult, Comparison | None]:
        writer = get_stream_writer()
        on_text: Callable[[str], None] = lambda text: writer(TextDelta(index, text))
        if config.mode == "compare":
            comparison = model.compare(messages, tool_specs, settings=config.settings, on_text=on_text,
                                       on_run=lambda run: writer(RunPhase(index, run)), should_stop=should_stop)
            return comparison.drafter, comparison
        result = model.generate(messages, tool_specs, use_drafter=config.mode == "drafter",
                                settings=config.settings, on_text=on_text, should_stop=should_stop)
        return result, None

    def call_model(state: AgentState) -> dict:
        writer = get_stream_writer()
        steps = state["steps"]
        if _stopped(should_stop):
            return {"end": "stopped", "pending": None}
        if len(steps) >= config.max_steps:
            return {"end": "step_limit", "pending": None, "final_answer":
                    f"Step limit reached: {config.max_steps} steps ran without a final answer."}
        index = len(steps) + 1
        writer(StepStarted(index))
        try:
            result, comparison = generate(index, state["messages"])
        except ModelError as e:  # InputError included
            return {"end": "error", "error": str(e), "pending": None}
        parsed = parse_output(result.text)
        step = make_step(index, parsed, result, comparison)
        writer(ModelDone(step))
        if result.stop_reason == "stopped" or _stopped(should_stop):
            writer(StepDone(step))
            return {"steps": [*steps, step], "end": "stopped", "pending": None}
        if step.kind == "final_answer":
            writer(StepDone(step))
            return {"steps": [*steps, step], "end": "answered", "final_answer": step.text, "pending": None}
        return {"pending": step, "messages": [*state["messages"], _assistant_message(step, parsed.error_name)]}

    def run_tools(state: AgentState) -> dict:
        writer = get_stream_writer()
        step = state["pending"]
        assert step is not None, "the router sends only pending steps to the tools node"
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
            replies.append(_tool_message(call.id, call.name, output))
        if step.parse_error:
            replies.append(_tool_message(_error_call_id(step), _error_call_name(state["messages"][-1]),
                                         _ceiling(step.parse_error, config)))
        done = dataclasses.replace(step, tool_results=tuple(results), tool_s=sum(r.duration_s for r in results))
        writer(StepDone(done))
        return {"messages": [*state["messages"], *replies], "steps": [*state["steps"], done], "pending": None}

    def route_after_model(state: AgentState) -> Literal["tools", "__end__"]:
        return "tools" if state["pending"] is not None else END

    graph = StateGraph(AgentState)
    graph.add_node("call_model", call_model)
    graph.add_node("tools", run_tools)
    graph.add_edge(START, "call_model")
    graph.add_conditional_edges("call_model", route_after_model)
    graph.add_edge("tools", "call_model")
    return graph.compile()


def _ceiling(text: str, config: AgentConfig) -> str:
    return text if config.tool_output_chars is None else truncate(text, config.tool_output_chars)


def make_step(index: int, parsed: ParsedOutput, result: GenerationResult, comparison: Comparison | None) -> Step:
    """The step record of one model call, before its tools run; a malformed call makes it a tool step."""
    calls = tuple(ToolCall(c.name, c.arguments, f"call_{index}_{i}") for i, c in enumerate(parsed.tool_calls, 1))
    return Step(index=index, kind="tool_call" if calls or parsed.error else "final_answer", text=parsed.answer,
                thoughts=parsed.thoughts, tool_calls=calls, tool_results=(), tool_s=0.0, result=result,
                comparison=comparison, parse_error=parsed.error)


def _assistant_message(step: Step, error_name: str | None) -> Message:
    """The model's turn as the chat template expects it: calls only (text after calls would close the turn)."""
    calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
             for c in step.tool_calls]
    if step.parse_error:  # the unreadable call, so that its error has a call to answer
        calls.append({"id": _error_call_id(step), "type": "function",
                      "function": {"name": error_name or "unreadable_call", "arguments": {}}})
    message: Message = {"role": "assistant", "content": "", "tool_calls": calls}
    if step.thoughts:
        message["reasoning"] = step.thoughts
    return message


def _error_call_id(step: Step) -> str:
    return f"call_{step.index}_error"


def _error_call_name(assistant: Message) -> str:
    return assistant["tool_calls"][-1]["function"]["name"]


def _tool_message(call_id: str, name: str, output: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": defang(output)}


def run_agent(model: ChatModel, task: str, *, config: AgentConfig = AgentConfig(), workspace: Path,
              sandbox=None, should_stop: StopCheck | None = None) -> Iterator[AgentEvent]:
    """Run the agent on `task`, yielding its events as they happen; the last one is always a RunDone."""
    if not (task or "").strip():
        yield RunDone(reason="error", final_answer="", steps=(), error="The task is empty: type a task first.")
        return
    Path(workspace).mkdir(parents=True, exist_ok=True)
    toolbox = Toolbox(Path(workspace), sandbox, should_stop=should_stop)
    graph = build_agent(model, toolbox, config, should_stop)
    final = initial_state(task, toolbox)
    for mode, chunk in graph.stream(final, {"recursion_limit": 2 * config.max_steps + 8},
                                    stream_mode=["custom", "values"]):
        if mode == "custom":
            yield chunk
        else:
            final = chunk
    reason = final["end"] or "error"
    yield RunDone(reason=reason, final_answer=final["final_answer"], steps=tuple(final["steps"]),
                  error=final["error"] if reason == "error" else None)
