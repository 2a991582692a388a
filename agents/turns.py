"""One path from a raw model reply to what the agent does with it: the parse, the kind of step, the tool
calls with their ids, and the chat messages that record the reply and what the agent says back about it.

Shared by the graph and the LangChain adapter. Pure functions over strings and plain dicts; no LangGraph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from typing import Sequence

from agents import prompts
from agents.events import StepKind, ToolCall
from agents.parser import RESPONSE_LABEL, THINK_OPEN, THOUGHT_LABEL, ParsedOutput, layout, parse_output
from protocol import GenerationSettings, Message, StopReason

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


# The prompt that opens the channel ends with `<|channel>thought\n`; the reply is read after the opener alone,
# so that a label the model writes again is taken as the label.
OPENED_THOUGHT = THINK_OPEN


def starts_in_thought(messages: Sequence[Message], settings: GenerationSettings) -> bool:
    """Whether the prompt opened the thinking channel, so the reply starts inside a thought: the chat
    template does that with thinking on when the conversation ends in tool results."""
    return settings.enable_thinking and bool(messages) and messages[-1].get("role") == "tool"


def read_reply(raw: str, stop_reason: StopReason, *, max_new_tokens: int, call_id_prefix: str,
               starts_in_thought: bool = False) -> Reply:
    """Read one model reply. An answer counts only when the model stopped by itself; a reply cut at
    max_new_tokens, an unreadable call, a foreign call format or an empty reply gets feedback instead."""
    parsed = parse_output(OPENED_THOUGHT + raw if starts_in_thought else raw)
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


REPEAT_SPAN_CHARS = 200  # a reply cut at the token limit whose last this many characters ...
REPEAT_MAX_PERIOD = 80  # ... repeat one unit of at most this many characters has degenerated


def repeating_tail(raw: str, *, span_chars: int = REPEAT_SPAN_CHARS, max_period: int = REPEAT_MAX_PERIOD
                   ) -> str | None:
    """The unit that the last `span_chars` characters of a reply repeat over and over (the shortest, as it
    ends the reply), or None: greedy decoding that fell into such a loop goes on with it when told to go on."""
    tail = raw[-span_chars:]
    if len(tail) < span_chars:
        return None
    for period in range(1, max_period + 1):
        if tail[period:] == tail[:-period]:
            return tail[-period:]
    return None


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


class ReplyStreamer:
    """Turns a reply that grows token by token into increments of visible answer text and of thoughts,
    such that the increments add up to what read_reply makes of the whole reply. Text that could still
    turn out to be markup (a line that may start a bare call or a tool_code block, a channel label not
    complete yet) is held back until it is known."""

    def __init__(self, starts_in_thought: bool = False) -> None:
        self.starts_in_thought = starts_in_thought
        self.raw = ""
        self.content = ""
        self.reasoning = ""

    def feed(self, delta: str) -> tuple[str, str]:
        """(new answer text, new thought text) that `delta` made certain."""
        self.raw += delta
        prefix = OPENED_THOUGHT if self.starts_in_thought else ""
        parsed = parse_output(_hold_back(prefix + self.raw))
        return self._advance(parsed.answer, parsed.thoughts)

    def finish(self, reply: Reply) -> tuple[str, str]:
        """The rest of the answer and thoughts, once the whole reply is read."""
        return self._advance(reply.text, reply.thoughts)

    def _advance(self, answer: str, thoughts: str) -> tuple[str, str]:
        content = answer[len(self.content):] if answer.startswith(self.content) else ""
        reasoning = thoughts[len(self.reasoning):] if thoughts.startswith(self.reasoning) else ""
        self.content += content
        self.reasoning += reasoning
        return content, reasoning


_HELD_LINES = ("call:", "```tool_code")
RESPONSE_OPEN, RESPONSE_CLOSE = "<|tool_response>", "<tool_response|>"  # a run-on tool response is not content


def _hold_back(raw: str) -> str:
    """`raw` without the tail that later tokens could still turn into markup."""
    cut = len(raw)
    opener = raw.rfind(THINK_OPEN)
    if opener != -1:
        label = raw[opener + len(THINK_OPEN):]
        if any((name + "\n").startswith(label) for name in (THOUGHT_LABEL, RESPONSE_LABEL)):
            cut = opener
    regions = layout(raw[:cut])
    if regions and regions[-1].kind == "text":
        text_start = regions[-1].start
        line_start = raw.rfind("\n", text_start, cut) + 1 or text_start
        line_start = max(line_start, text_start)
        line = raw[line_start:cut].lstrip(" \t")
        if line and any(held.startswith(line) or line.startswith(held) for held in _HELD_LINES):
            cut = line_start
        for opener, closer in (("```tool_code", "```"), (RESPONSE_OPEN, RESPONSE_CLOSE)):
            at = raw.rfind(opener, text_start, cut)
            if at != -1 and raw.find(closer, at + len(opener), cut) == -1:
                cut = min(cut, at)
    return raw[:cut]
