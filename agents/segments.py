"""What each token of a model reply is: thought, prose, code or tool_call, for acceptance by content.

Built on the parser's own layout of the same text (agents.parser.layout, agents.call_syntax), so the
categories agree with what the agent did with the reply. Code is a fenced ``` block in prose, or the
string value of a code-bearing argument inside a call (CODE_ARGUMENTS); the rest of a call (its tokens,
name, keys, delimiters, other values) is tool_call syntax. Pure functions; no models.
"""

from __future__ import annotations

import re
from typing import Literal, Sequence

from agents.call_syntax import CallSyntaxError, read_call_block
from agents.parser import Region, layout

Category = Literal["thought", "prose", "code", "tool_call"]
CATEGORIES: tuple[Category, ...] = ("thought", "prose", "code", "tool_call")
CODE_ARGUMENTS = frozenset({"content", "code", "old_text", "new_text", "text"})
_FENCE = re.compile(r"```[^\n]*\n.*?(?:```|$)", re.DOTALL)


def segment_text(text: str) -> list[tuple[int, int, Category]]:
    """(start, end, category) spans covering `text` in order."""
    spans: list[tuple[int, int, Category]] = []
    for region in layout(text):
        if region.kind in ("thought", "thought_marker"):
            spans.append((region.start, region.end, "thought"))
        elif region.kind in ("text", "text_marker"):
            spans.extend(_prose(text, region.start, region.end))
        else:
            spans.extend(_call(text, region))
    return spans


def _prose(text: str, start: int, end: int) -> list[tuple[int, int, Category]]:
    spans: list[tuple[int, int, Category]] = []
    pos = start
    for fence in _FENCE.finditer(text, start, end):
        spans += [(pos, fence.start(), "prose")] if fence.start() > pos else []
        spans.append((fence.start(), fence.end(), "code"))
        pos = fence.end()
    return spans + ([(pos, end, "prose")] if end > pos else [])


def _call(text: str, region: Region) -> list[tuple[int, int, Category]]:
    body_start, body_end = region.body or (region.start, region.end)
    try:
        calls = read_call_block(text[body_start:body_end], closed=region.closed)
    except CallSyntaxError:
        return [(region.start, region.end, "tool_call")]
    code = sorted((body_start + a, body_start + b) for _, strings in calls for a, b, key in strings
                  if key in CODE_ARGUMENTS and b > a)
    spans: list[tuple[int, int, Category]] = []
    pos = region.start
    for a, b in code:
        spans += [(pos, a, "tool_call")] if a > pos else []
        spans.append((a, b, "code"))
        pos = b
    return spans + ([(pos, region.end, "tool_call")] if region.end > pos else [])


def token_categories(token_texts: Sequence[str]) -> tuple[Category, ...]:
    """The category of each token: that of its first non-space character (of its first character when it
    is all space; an empty piece takes the category before it)."""
    text = "".join(token_texts)
    per_char: list[Category] = ["prose"] * len(text)
    for start, end, category in segment_text(text):
        per_char[start:end] = [category] * (end - start)
    out: list[Category] = []
    pos = 0
    for piece in token_texts:
        stripped = len(piece) - len(piece.lstrip())
        at = pos + (stripped if stripped < len(piece) else 0)
        out.append(per_char[at] if at < len(text) and piece else (out[-1] if out else "prose"))
        pos += len(piece)
    return tuple(out)
