"""Parse one raw Gemma 4 model turn into answer text, thoughts and tool calls, and lay out which part of
the text is which (the segmentation agents.segments colours by).

Pure functions over strings; knows Gemma 4's special tokens and nothing of models, LangGraph or tools.
The format (see inference/templates/gemma4_chat.jinja):

    [<|channel>thought\n THOUGHTS <channel|>] TEXT (<|tool_call>call:NAME{key:value,...}<tool_call|>)* TEXT

Strings are delimited by the single token <|"|> and have no escapes; keys are bare; numbers, true,
false and null are bare. Call boundaries are found with strings tracked (a close token inside a string is
text). Real outputs break the format in known ways (shared/gemma4/outputs/cases.json); the repairs below
are each named after the defect they undo. A call that cannot be read is reported in `error`, a reply
in a foreign call format in `format_error` (the agent sends both back to the model); neither is guessed at.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Literal

from agents.call_syntax import (
    CALL_NAME, QUOTE, CallSyntaxError, ParsedCall, arguments_end, parse_call_block,
)

CALL_OPEN, CALL_CLOSE = "<|tool_call>", "<tool_call|>"
THINK_OPEN, THINK_CLOSE = "<|channel>", "<channel|>"
TURN_END = "<turn|>"
THOUGHT_LABEL, RESPONSE_LABEL = "thought", "response"

# A tool response block (the template writes these, a model may run on into one), or stray end tokens.
_NOT_CONTENT = re.compile(r"<\|tool_response>.*?<tool_response\|>|<\|tool_response>|<turn\|>|<eos>|<tool_call\|>",
                          re.DOTALL)
# repair: `call:NAME{` with no <|tool_call> opener, at the start of a line or right after <channel|>.
_BARE_CALL = re.compile(r"(?:^|(?<=<channel\|>)|(?<=<tool_call\|>))[ \t]*(call:[A-Za-z_][\w.\-]*[{(])", re.MULTILINE)
_TOOL_CODE = re.compile(r"```tool_code[ \t]*\n(.*?)(?:```|$)", re.DOTALL)


@dataclass(frozen=True)
class ParsedOutput:
    answer: str  # visible text, special tokens, thoughts and calls removed, stripped
    thoughts: str
    tool_calls: tuple[ParsedCall, ...] = ()
    error: str | None = None  # why a tool call could not be read; None when every call parsed
    error_name: str | None = None  # the tool name of the unreadable call, when that much was readable
    format_error: str | None = None  # the reply is in a shape the agent does not run or show as an answer


RegionKind = Literal["thought", "thought_marker", "text", "text_marker", "call"]


@dataclass(frozen=True)
class Region:
    """A stretch of the raw text: thinking, its channel tokens and label, visible text, the tokens and
    label of a visible channel, or one call block (opener to closer; `body` its inside)."""

    start: int
    end: int
    kind: RegionKind
    body: tuple[int, int] | None = None  # call blocks: where call:NAME{...} lies
    closed: bool = False  # call blocks: a close token followed


# Error text goes back to the model inside a tool response, so it names the special tokens in words:
# spelled out, they would be read as the tokens themselves.
HOW_TO_CALL = ("Write each call as call:NAME{key:value,...} between the tool-call open and close tokens, "
               "with every string value between two string-delimiter tokens and numbers, true, false and null bare.")
TOOL_CODE_ERROR = ("Your reply has a tool_code block, which this agent does not run: tools are called only with "
                   "the native tool-call format. ")


# ---- layout ----

def layout(text: str) -> tuple[Region, ...]:
    """Cover `text` with regions, left to right: thinking (also when its channel was opened by the prompt,
    and up to a call or a response channel when it is never closed), visible text, call blocks."""
    regions: list[Region] = []
    n, pos = len(text), 0
    first_open, first_close = text.find(THINK_OPEN), text.find(THINK_CLOSE)
    # A close with no opener before it: the prompt opened the channel (thinking on, after a tool result).
    thinking = first_close != -1 and (first_open == -1 or first_close < first_open)
    visible_channel = False  # inside <|channel>response ... <channel|>
    if thinking and text.startswith(THOUGHT_LABEL + "\n"):
        pos = _add(regions, "thought_marker", 0, len(THOUGHT_LABEL) + 1)

    def add(kind: RegionKind, start: int, end: int) -> int:
        return _add(regions, kind, start, end)

    while pos < n:
        if thinking:
            close = text.find(THINK_CLOSE, pos)
            ends = [(close, "close"), (text.find(THINK_OPEN + RESPONSE_LABEL, pos), "response")]
            if close == -1:  # repair: a call after a thinking channel that is never closed ends the thought
                ends.append((text.find(CALL_OPEN, pos), "call"))
            found = [(i, what) for i, what in ends if i != -1]
            if not found:
                add("thought", pos, n)
                break
            i, what = min(found)
            add("thought", pos, i)
            thinking = False
            pos = add("thought_marker", i, i + len(THINK_CLOSE)) if what == "close" else i
            continue
        i, what = _next_in_text(text, pos)
        if i == -1:
            add("text", pos, n)
            break
        add("text", pos, i)
        if what == "open":
            after = i + len(THINK_OPEN)
            while text.startswith(THINK_OPEN, after):  # repair: a doubled opener
                after += len(THINK_OPEN)
            if text.startswith(RESPONSE_LABEL, after):  # a visible channel: its text is the answer
                label_end = after + len(RESPONSE_LABEL)
                label_end += text.startswith("\n", label_end)
                pos, visible_channel = add("text_marker", i, label_end), True
            else:
                label = _thought_label(text, after)
                pos, thinking = add("thought_marker", i, after + label), True
        elif what == "close":  # a stray close, or the end of a visible channel
            pos = add("text_marker" if visible_channel else "thought_marker", i, i + len(THINK_CLOSE))
            visible_channel = False
        else:
            regions.append(_call_block(text, i, bare=what == "bare"))
            pos = regions[-1].end
    return tuple(regions)


def _add(regions: list[Region], kind: RegionKind, start: int, end: int) -> int:
    if end > start:
        regions.append(Region(start, end, kind))
    return end


def _thought_label(text: str, at: int) -> int:
    """Length of the `thought` label after an opener: `thought\\n`, or a bare `thought` right before a close."""
    if text.startswith(THOUGHT_LABEL + "\n", at):
        return len(THOUGHT_LABEL) + 1
    if text.startswith(THOUGHT_LABEL + THINK_CLOSE, at):
        return len(THOUGHT_LABEL)
    return 0


def _next_in_text(text: str, pos: int) -> tuple[int, str]:
    """The next structure in visible text: a channel opener or closer, a call opener or a bare call."""
    hits = [(text.find(THINK_OPEN, pos), "open"), (text.find(THINK_CLOSE, pos), "close"),
            (text.find(CALL_OPEN, pos), "call")]
    if bare := _BARE_CALL.search(text, pos):
        hits.append((bare.start(1), "bare"))
    found = [(i, what) for i, what in hits if i != -1]
    return min(found) if found else (-1, "")


def _call_block(text: str, start: int, *, bare: bool) -> Region:
    body_start = start if bare else start + len(CALL_OPEN)
    if bare:  # without an opener, the call ends where its arguments do (text may follow)
        match = CALL_NAME.match(text, body_start)
        if match:
            try:
                end = arguments_end(text, match.end())
                closer = next((t for t in (CALL_CLOSE, TURN_END) if text.startswith(t, end)), None)
                return Region(start, end + len(closer or ""), "call", (body_start, end), closer is not None)
            except CallSyntaxError:
                pass
    end, closer = _block_end(text, body_start)
    return Region(start, end + len(closer or ""), "call", (body_start, end), closer is not None)


def _block_end(text: str, body_start: int) -> tuple[int, str | None]:
    """Where a call block ends and the token that ends it (None: the text ran out, or a new opener came).
    Strings are skipped, so a close token inside a string argument is text."""
    i = body_start
    while True:
        ends = [(j, tok) for tok in (QUOTE, CALL_CLOSE, TURN_END, CALL_OPEN) if (j := text.find(tok, i)) != -1]
        if not ends:
            return len(text), None
        j, tok = min(ends)
        if tok == QUOTE:
            close = text.find(QUOTE, j + len(QUOTE))
            if close == -1:  # an unclosed string: end at the first end token after it (a repair may close it)
                return _first_end(text, j + len(QUOTE))
            i = close + len(QUOTE)
            continue
        return (j, None) if tok == CALL_OPEN else (j, tok)


def _first_end(text: str, i: int) -> tuple[int, str | None]:
    ends = [(j, tok) for tok in (CALL_CLOSE, TURN_END, CALL_OPEN) if (j := text.find(tok, i)) != -1]
    if not ends:
        return len(text), None
    j, tok = min(ends)
    return (j, None) if tok == CALL_OPEN else (j, tok)


# ---- parse ----

def parse_output(text: str) -> ParsedOutput:
    """Split one model turn into answer, thoughts and tool calls."""
    regions = layout(text)
    thoughts = "".join(text[r.start:r.end] for r in regions if r.kind == "thought")
    pieces = [text[r.start:r.end] for r in regions if r.kind == "text"]
    calls: list[ParsedCall] = []
    errors: list[str] = []
    error_name: str | None = None
    for region in regions:
        if region.kind != "call":
            continue
        body = text[region.body[0]:region.body[1]]
        try:
            calls.extend(parse_call_block(body, closed=region.closed))
        except CallSyntaxError as e:
            name = CALL_NAME.match(body)
            error_name = error_name or (name.group(1) if name else None)
            cut_off = "" if region.closed else "It ends without the tool-call close token (was the output cut off?). "
            errors.append(f"{cut_off}{e} The call as written: {body[:300]!r}.")
    answer = _NOT_CONTENT.sub("", "".join(pieces)).strip()
    format_error = None
    if not calls and not errors and "```tool_code" in answer:
        answer, tool_code_calls, format_error = read_tool_code(answer)
        calls.extend(tool_code_calls)
    error = ("Could not read your tool call: " + " ".join(errors) + " " + HOW_TO_CALL) if errors else None
    return ParsedOutput(answer=answer, thoughts=thoughts.strip(), tool_calls=tuple(calls), error=error,
                        error_name=error_name, format_error=format_error)


def split_thoughts(text: str) -> tuple[str, str]:
    """(thinking text, everything else but channel tokens and labels); several blocks are joined."""
    regions = layout(text)
    return ("".join(text[r.start:r.end] for r in regions if r.kind == "thought"),
            "".join(text[r.start:r.end] for r in regions if r.kind in ("text", "call")))


def read_tool_code(answer: str) -> tuple[str, list[ParsedCall], str | None]:
    """(answer without the blocks, calls, format error) for ```tool_code blocks (E2B writes them instead of
    native calls). A block of keyword-only calls with literal values, e.g. `print(default_api.f(x=1))`,
    is read as calls; anything else is a format error."""
    calls: list[ParsedCall] = []
    for block in _TOOL_CODE.findall(answer):
        try:
            calls.extend(_python_calls(block))
        except (SyntaxError, ValueError) as e:
            return answer, [], f"{TOOL_CODE_ERROR}({e}) {HOW_TO_CALL}"
    return _TOOL_CODE.sub("", answer).strip(), calls, None


def _python_calls(source: str) -> list[ParsedCall]:
    calls = []
    for statement in ast.parse(source.strip()).body:
        node = statement.value if isinstance(statement, ast.Expr) else None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print" \
                and len(node.args) == 1 and not node.keywords:
            node = node.args[0]  # print(default_api.f(...))
        if not isinstance(node, ast.Call) or node.args:
            raise ValueError("a tool_code block must hold only calls like f(key=value)")
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name is None or any(k.arg is None for k in node.keywords):
            raise ValueError("a tool_code call must name its tool and its arguments")
        calls.append(ParsedCall(name, {k.arg: ast.literal_eval(k.value) for k in node.keywords}))
    if not calls:
        raise ValueError("the tool_code block is empty")
    return calls
