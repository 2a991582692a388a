"""Read the inside of one Gemma 4 tool call block: `call:NAME{key:value,...}` (one or more) into names and
argument values, with the repairs real outputs need, and where each string value lies.

Pure functions over strings. Strings are delimited by the single token <|"|> and have no escapes; keys
are bare; numbers, true, false and null are bare; the parenthesis form `call:NAME(key=value)` also takes
Python's True, False and None. Every repair is named after the defect it undoes; anything else raises
CallSyntaxError with words for the model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

QUOTE = '<|"|>'
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_BARE_KEY = re.compile(r"([^:={}\[\],\"]+?)\s*(?=[:=])")  # llama.cpp/vLLM: a key is all up to `:`
_WORD = re.compile(r"[^,}\])\s]+")
_LITERALS = {"true": True, "false": False, "null": None}
_PYTHON_LITERALS = {"True": True, "False": False, "None": None}  # the parenthesis form is Python-like
# After a `,` in an object: another `key:` follows. Used to end a value written without delimiters.
_NEXT_KEY = re.compile(r",\s*(?:<\|\"\|>)?[A-Za-z_][\w .\-]{0,60}?(?:<\|\"\|>)?\s*[:=]")
CALL_NAME = re.compile(r"\s*:?\s*(?:call:)?\s*([A-Za-z_][\w.\-]*)\s*(?=[{(])")


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]


class CallSyntaxError(ValueError):
    """A tool call body that does not follow the format."""


def render_value(value: Any) -> str:
    """A value as Gemma 4 writes it inside a call: strings between <|"|>, keys bare and sorted (what the parser reads)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return QUOTE + value + QUOTE
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{render_value(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(render_value(v) for v in value) + "]"
    return str(value)


def arguments_end(text: str, start: int) -> int:
    """Where the argument object opening at text[start] ends (complete, no repairs); CallSyntaxError if it
    does not."""
    reader = _Reader(text, start, repair=False)
    reader.read_arguments()
    return reader.pos


def parse_call_block(body: str, *, closed: bool) -> list[ParsedCall]:
    """Read `call:NAME{...}` (one or more) from the text between <|tool_call> and its close.

    `closed` says a close token followed: only then are a missing final `}` and an unterminated last
    string repaired; an unclosed block (the generation was cut off) must be complete.
    """
    return [call for call, _ in read_call_block(body, closed=closed)]


def read_call_block(body: str, *, closed: bool) -> list[tuple[ParsedCall, list[tuple[int, int, str]]]]:
    """parse_call_block, with the (start, end, top-level key) of every string value in `body`."""
    calls = []
    pos = 0
    while True:
        match = CALL_NAME.match(body, pos)
        if match is None:
            raise CallSyntaxError("Expected call:NAME{...} after the tool-call token.")
        reader = _Reader(body, match.end(), repair=closed)
        calls.append((ParsedCall(match.group(1), reader.read_arguments()), reader.strings))
        pos = reader.pos
        rest = body[pos:].strip()
        if not rest:
            return calls
        if not rest.startswith("call:"):  # repair: two `call:` bodies in one block are both read
            raise CallSyntaxError(f"Unexpected text after the call's closing brace: {rest[:60]!r}.")


@dataclass
class _Reader:
    """Recursive-descent reader of a call's arguments, positioned in `text`."""

    text: str
    pos: int
    repair: bool
    strings: list[tuple[int, int, str]] = field(default_factory=list)  # string values: start, end, top key
    _closing: list[str] = field(default_factory=list)
    _paren: bool = False
    _top_key: str = ""

    def read_arguments(self) -> dict[str, Any]:
        opener = self.text[self.pos]
        self.pos += 1
        self._paren = opener == "("  # repair: call:name(key: value) with parentheses
        return self._object(")" if self._paren else "}", top=True)

    def _skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def _at_end(self) -> bool:
        return self.pos >= len(self.text)

    def _object(self, closer: str, top: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = {}
        self._closing.append(closer)
        while True:
            self._skip_ws()
            if self._peek(closer):
                self.pos += 1
                break
            if self._at_end():
                if top and self.repair:  # repair: the final `}` is missing before <tool_call|>
                    break
                raise CallSyntaxError(f"The argument object is not closed with '{closer}'.")
            key = self._key()
            if top:
                self._top_key = key
            result[key] = self._value(in_object=True)
            self._skip_ws()
            if self._peek(","):
                self.pos += 1
            elif not (self._peek(closer) or self._at_end()):
                raise CallSyntaxError(f"Expected ',' or '{closer}' after the value of {key!r}, "
                                      f"found {self.text[self.pos:self.pos + 20]!r}.")
        self._closing.pop()
        return result

    def _key(self) -> str:
        if self._peek(QUOTE):  # repair-free variant: keys written between <|"|>, as in declarations
            end = self.text.find(QUOTE, self.pos + len(QUOTE))
            if end == -1:
                raise CallSyntaxError("A key opened with a string delimiter is never closed.")
            key = self.text[self.pos + len(QUOTE):end]
            self.pos = end + len(QUOTE)
        elif self._peek('"'):
            key = self._json_string()
        else:
            match = _BARE_KEY.match(self.text, self.pos)
            if match is None or not match.group(1).strip():
                raise CallSyntaxError(f"Expected key:value, found {self.text[self.pos:self.pos + 20]!r}.")
            key = match.group(1).strip()
            self.pos = match.end()
        self._skip_ws()
        if not (self._peek(":") or self._peek("=")):
            raise CallSyntaxError(f"Expected ':' after the key {key!r}.")
        self.pos += 1
        return key

    def _value(self, in_object: bool) -> Any:
        value_start = self.pos
        self._skip_ws()
        if self._peek(QUOTE):
            return self._quoted()
        if self._peek('"'):
            value = self._json_string()
            self._skip_dangling_quote()
            return value
        if self._peek("'"):  # repair: a Python-style '...' string, maybe with a dangling <|"|>
            end = self.text.find("'", self.pos + 1)
            if end != -1:
                value, self.pos = self.text[self.pos + 1:end], end + 1
                self._record(self.pos - 1 - len(value), self.pos - 1)
                self._skip_dangling_quote()
                return value
        if self._peek("{"):
            self.pos += 1
            return self._object("}")
        if self._peek("["):
            self.pos += 1
            return self._array()
        return self._scalar(value_start, in_object)

    def _record(self, start: int, end: int) -> None:
        self.strings.append((start, end, self._top_key))

    def _quoted(self) -> str:
        start = self.pos + len(QUOTE)
        end = self.text.find(QUOTE, start)
        if end != -1:  # the first <|"|> closes: strings have no escapes
            self.pos = end + len(QUOTE)
            self._record(start, end)
            return self.text[start:end]
        if not self.repair:
            raise CallSyntaxError("A string value is never closed (its closing string delimiter is missing).")
        # repair: the closing <|"|> of the last value is missing; the string ends before the final `}`.
        rest = self.text[start:].rstrip()
        cut = len(rest) - 1 if rest.endswith("}") and len(self._closing) == 1 else len(rest)
        self.pos = start + cut
        self._record(start, start + cut)
        return rest[:cut]

    def _json_string(self) -> str:
        try:
            value, end = json.JSONDecoder().raw_decode(self.text, self.pos)
        except json.JSONDecodeError as e:
            raise CallSyntaxError(f"A \"...\" string is not valid JSON ({e.msg}); delimit strings with the "
                                  "string-delimiter token instead, where backslashes need no escaping.") from None
        if not isinstance(value, str):
            raise CallSyntaxError("Expected a string.")
        self._record(self.pos + 1, end - 1)
        self.pos = end
        return value

    def _skip_dangling_quote(self) -> None:
        if self._peek(QUOTE):
            self.pos += len(QUOTE)

    def _array(self) -> list[Any]:
        items: list[Any] = []
        self._closing.append("]")
        while True:
            self._skip_ws()
            if self._peek("]"):
                self.pos += 1
                break
            if self._at_end():
                raise CallSyntaxError("An array is not closed with ']'.")
            items.append(self._value(in_object=False))
            self._skip_ws()
            if self._peek(","):
                self.pos += 1
            elif not self._peek("]"):
                raise CallSyntaxError(f"Expected ',' or ']' in an array, found {self.text[self.pos:self.pos + 20]!r}.")
        self._closing.pop()
        return items

    def _scalar(self, value_start: int, in_object: bool) -> Any:
        if in_object and (self._peek(",") or self._peek(self._closing[-1])):
            return ""  # an empty value (`key:,`), read as "" as vLLM does
        if self._at_end() or self.text[self.pos] in "]})":
            raise CallSyntaxError(f"Expected a value, found {self.text[self.pos:self.pos + 20]!r}.")
        token = _WORD.match(self.text, self.pos)
        word = token.group(0) if token else ""
        after = self.pos + len(word)
        ends_cleanly = after >= len(self.text) or self.text[after] in ",}]) \t\r\n"
        literals = {**_LITERALS, **_PYTHON_LITERALS} if self._paren else _LITERALS
        if word in literals and ends_cleanly:
            self.pos = after
            return literals[word]
        if word and _NUMBER.fullmatch(word) and ends_cleanly:
            self.pos = after
            return json.loads(word)
        return self._bare_string(value_start, in_object)

    def _bare_string(self, value_start: int, in_object: bool) -> str:
        """Repair: a string written without delimiters (lost special tokens, or only the closing <|"|>).

        It runs to a lone <|"|>, to a `,` before the next `key:`, or to the enclosing close bracket.
        """
        text, closer = self.text, self._closing[-1]
        ends = [text.find(QUOTE, value_start), text.find(closer, value_start)]
        if in_object and (m := _NEXT_KEY.search(text, value_start)):
            ends.append(m.start())
        elif not in_object:
            ends.append(text.find(",", value_start))
        end = min((e for e in ends if e != -1), default=len(text))
        raw = text[value_start:end]
        value = raw.lstrip(" \t").rstrip()
        if not value:
            raise CallSyntaxError(f"Expected a value, found {text[value_start:value_start + 20]!r}.")
        self.pos = end
        start = value_start + len(raw) - len(raw.lstrip(" \t"))
        self._record(start, start + len(value))
        self._skip_dangling_quote()
        return value
