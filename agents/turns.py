"""One path from a raw model reply to what the agent does with it: the parse, the kind of step, the tool
calls with their ids, and the chat messages that record the reply and what the agent says back about it.

Shared by the graph and the LangChain adapter. Pure functions over strings and plain dicts; no LangGraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agents import prompts
from agents.events import StepKind, ToolCall
from agents.parser import ParsedOutput, parse_output
from protocol import Message, StopReason

UNREADABLE_CALL = "unreadable_call"  # the name of the stand-in call when not even a name could be read


@dataclass(frozen=True)
class Reply:
    """A model reply, read: what it says, the calls to run, and what the agent must tell the model."""

    kind: StepKind
    text: str  # visible answer text (thoughts, calls and special tokens removed)
    thoughts: str
    calls: tuple[ToolCall, ...]
    parse_error: str | None  # the parser's words on an unreadable call
    feedback: str | None  # what the agent tells the model about the reply itself; None when nothing
    error_call: ToolCall | None  # a stand-in for an unreadable call: `feedback` goes back as its tool response


def read_reply(raw: str, stop_reason: StopReason, *, max_new_tokens: int, call_id_prefix: str) -> Reply:
    """Read one model reply. An answer counts only when the model stopped by itself; a reply cut at
    max_new_tokens, an unreadable call, a foreign call format or an empty reply gets feedback instead."""
    parsed = parse_output(raw)
    calls = tuple(ToolCall(c.name, c.arguments, f"{call_id_prefix}_{i}") for i, c in enumerate(parsed.tool_calls, 1))
    kind, feedback = classify(parsed, bool(calls), stop_reason, max_new_tokens)
    error_call = None
    if parsed.error and feedback is not None:
        error_call = ToolCall(parsed.error_name or UNREADABLE_CALL, {}, f"{call_id_prefix}_error")
    return Reply(kind, parsed.answer, parsed.thoughts, calls, parsed.error, feedback, error_call)


def classify(parsed: ParsedOutput, has_calls: bool, stop_reason: StopReason,
             max_new_tokens: int) -> tuple[StepKind, str | None]:
    """(step kind, feedback for the model) of a parsed reply."""
    if stop_reason == "stopped":
        return "stopped", None
    cut = stop_reason == "max_new_tokens"
    in_call = parsed.error is not None or parsed.format_error is not None
    if has_calls:
        if parsed.error is None:
            return "tool_call", None
        return "tool_call", prompts.cut_off_note(max_new_tokens, in_call=True) if cut else parsed.error
    if cut:
        return "cut_off", prompts.cut_off_note(max_new_tokens, in_call=in_call)
    if parsed.error or parsed.format_error:
        return "format_error", parsed.error or parsed.format_error
    if not parsed.answer:
        return "format_error", prompts.EMPTY_REPLY_NOTE
    return "final_answer", None


def assistant_message(reply: Reply) -> Message:
    """The reply as the chat template expects it: calls only when there are calls (text after calls
    would close the turn), else the text; thoughts as `reasoning`."""
    calls = [*reply.calls, *([reply.error_call] if reply.error_call else [])]
    message: Message = {"role": "assistant", "content": "" if calls else reply.text}
    if calls:
        message["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                                 for c in calls]
    if reply.thoughts:
        message["reasoning"] = reply.thoughts
    return message


def feedback_message(reply: Reply) -> Message | None:
    """What the agent says back about the reply: the tool response of the stand-in call, or a user note."""
    if reply.feedback is None:
        return None
    if reply.error_call is not None:
        return tool_message(reply.error_call.id, reply.error_call.name, reply.feedback)
    return {"role": "user", "content": reply.feedback}


# Special-token spellings in tool output would become real tokens in the prompt: break them up.
_SPECIAL = re.compile(r"<\|([^<>|]{0,20})>|<([^<>|]{0,20})\|>|<\|\"\|>")


def defang(text: str) -> str:
    """Tool output as the model may see it: `<|x>` and `<x|>` lose their power as special tokens."""
    return _SPECIAL.sub(lambda m: m.group(0).replace("|", "¦"), text)


def tool_message(call_id: str, name: str, output: str) -> Message:
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": defang(output)}
