"""Parse one raw Gemma 4 model turn into answer text, thoughts and tool calls.

Pure functions over strings; knows Gemma 4's special tokens and nothing of models, LangGraph or tools.
The format (see inference/templates/gemma4_chat.jinja):

    [<|channel>thought\n THOUGHTS <channel|>] TEXT (<|tool_call>call:NAME{key:value,...}<tool_call|>)* TEXT

Strings are delimited by the single token <|"|> and have no escapes; keys are bare; numbers, true,
false and null are bare. Real outputs break the format in known ways (collected in
shared/gemma4/outputs/cases.json); the repairs below are each named after the defect they undo. A call
that cannot be read is reported in `error` (the agent sends it back to the model), never guessed at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

QUOTE = '<|"|>'
CALL_OPEN, CALL_CLOSE = "<|tool_call>", "<tool_call|>"
THINK_OPEN, THINK_CLOSE = "<|channel>", "<channel|>"
TURN_END = "<turn|>"

_CHANNEL_TOKENS = re.compile(r"(<\|channel>|<channel\|>)")
# A tool response block (the template writes these, a model may run on into one), or stray end tokens.
_NOT_CONTENT = re.compile(r"<\|tool_response>.*?<tool_response\|>|<\|tool_response>|<turn\|>|<eos>|<tool_call\|>",
                          re.DOTALL)
_NAME = re.compile(r"\s*:?\s*(?:call:)?\s*([A-Za-z_][\w.\-]*)\s*(?=[{(])")
_BARE_CALL = re.compile(r"\s*call:[A-Za-z_][\w.\-]*[{(]")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
_BARE_KEY = re.compile(r"([^:={}\[\],\"]+?)\s*(?=[:=])")  # llama.cpp/vLLM: a key is all up to `:`
_WORD = re.compile(r"[^,}\])\s]+")
_LITERALS = {"true": True, "false": False, "null": None}
# After a `,` in an object: another `key:` follows. Used to end a value written without delimiters.
_NEXT_KEY = re.compile(r",\s*(?:<\|\"\|>)?[A-Za-z_][\w .\-]{0,60}?(?:<\|\"\|>)?\s*[:=]")


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ParsedOutput:
    answer: str  # visible text, special tokens, thoughts and calls removed, stripped
    thoughts: str
    tool_calls: tuple[ParsedCall, ...] = ()
    error: str | None = None  # why a tool call could not be read; None when every call parsed
    error_name: str | None = None  # the tool name of the unreadable call, when that much was readable
    format_error: str | None = None  # the reply is in a shape the agent does not run or show as an answer


# Error text goes back to the model inside a tool response, so it names the special tokens in words:
# spelled out, they would be read as the tokens themselves.
HOW_TO_CALL = ("Write each call as call:NAME{key:value,...} between the tool-call open and close tokens, "
               "with every string value between two string-delimiter tokens and numbers, true, false and null bare.")


class CallSyntaxError(ValueError):
    """A tool call body that does not follow the format."""


def parse_output(text: str) -> ParsedOutput:
    """Split one model turn into answer, thoughts and tool calls."""
    thoughts, content = split_thoughts(text)
    calls: list[ParsedCall] = []
    errors: list[str] = []
    error_name: str | None = None
    pieces: list[str] = []
    if _BARE_CALL.match(content):  # repair: `<channel|>call:x{...}` with no <|tool_call> opener
        content = CALL_OPEN + content.lstrip()
    pos = 0
    while (start := content.find(CALL_OPEN, pos)) != -1:
        pieces.append(content[pos:start])
        body_start = start + len(CALL_OPEN)
        end, closer = _block_end(content, body_start)
        body = content[body_start:end]
        try:
            calls.extend(parse_call_block(body, closed=closer is not None))
        except CallSyntaxError as e:
            name = _NAME.match(body)
            error_name = error_name or (name.group(1) if name else None)
            cut_off = "" if closer else "It ends without the tool-call close token (was the output cut off?). "
            errors.append(f"{cut_off}{e} The call as written: {(CALL_OPEN + body)[:300]!r}.")
        pos = end + len(closer or "")
    pieces.append(content[pos:])
    answer = _NOT_CONTENT.sub("", "".join(pieces)).strip()
    error = None
    if errors:
        error = ("Could not read your tool call: " + " ".join(errors) + " " + HOW_TO_CALL)
    return ParsedOutput(answer=answer, thoughts=thoughts.strip(), tool_calls=tuple(calls), error=error,
                        error_name=error_name)


def split_thoughts(text: str) -> tuple[str, str]:
    """Separate thinking-channel text from the rest; several blocks are joined, labels dropped."""
    first_open, first_close = text.find(THINK_OPEN), text.find(THINK_CLOSE)
    # A close with no opener before it: the prompt opened the channel (thinking on, after a tool result).
    thinking = first_close != -1 and (first_open == -1 or first_close < first_open)
    label_pending = thinking
    thoughts, content = [], []
    for part in _CHANNEL_TOKENS.split(text):
        if part == THINK_OPEN:
            thinking, label_pending = True, True
        elif part == THINK_CLOSE:
            thinking, label_pending = False, False
        elif part and thinking:
            if label_pending:
                part = part[len("thought\n"):] if part.startswith("thought\n") else ("" if part == "thought" else part)
                label_pending = False
            thoughts.append(part)
        elif part:
            content.append(part)
    return "".join(thoughts), "".join(content)


def _block_end(content: str, body_start: int) -> tuple[int, str | None]:
    """Where a call block ends and the token that ends it (None: the text ran out first)."""
    ends = [(i, tok) for tok in (CALL_CLOSE, TURN_END, CALL_OPEN) if (i := content.find(tok, body_start)) != -1]
    if not ends:
        return len(content), None
    i, tok = min(ends)
    return (i, None) if tok == CALL_OPEN else (i, tok)  # a new opener ends an unclosed block


def parse_call_block(body: str, *, closed: bool) -> list[ParsedCall]:
    """Read `call:NAME{...}` (one or more) from the text between <|tool_call> and its close.

    `closed` says a close token followed: only then are a missing final `}` and an unterminated last
    string repaired; an unclosed block (the generation was cut off) must be complete.
    """
    calls = []
    pos = 0
    while True:
        match = _NAME.match(body, pos)
        if match is None:
            raise CallSyntaxError("Expected call:NAME{...} after the tool-call token.")
        reader = _Reader(body, match.end(), repair=closed)
        calls.append(ParsedCall(match.group(1), reader.read_arguments()))
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
    _closing: list[str] = field(default_factory=list)

    def read_arguments(self) -> dict[str, Any]:
        opener = self.text[self.pos]
        self.pos += 1
        closer = "}" if opener == "{" else ")"  # repair: call:name(key: value) with parentheses
        return self._object(closer, top=True)

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
                raise CallSyntaxError("The argument object is not closed with '}'.")
            key = self._key()
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
                self._skip_dangling_quote()
                return value
        if self._peek("{"):
            self.pos += 1
            return self._object("}")
        if self._peek("["):
            self.pos += 1
            return self._array()
        return self._scalar(value_start, in_object)

    def _quoted(self) -> str:
        start = self.pos + len(QUOTE)
        end = self.text.find(QUOTE, start)
        if end != -1:  # the first <|"|> closes: strings have no escapes
            self.pos = end + len(QUOTE)
            return self.text[start:end]
        if not self.repair:
            raise CallSyntaxError("A string value is never closed (its closing string delimiter is missing).")
        # repair: the closing <|"|> of the last value is missing; the string ends before the final `}`.
        rest = self.text[start:].rstrip()
        cut = len(rest) - 1 if rest.endswith("}") and len(self._closing) == 1 else len(rest)
        self.pos = start + cut
        return rest[:cut]

    def _json_string(self) -> str:
        try:
            value, end = json.JSONDecoder().raw_decode(self.text, self.pos)
        except json.JSONDecodeError as e:
            raise CallSyntaxError(f"A \"...\" string is not valid JSON ({e.msg}); delimit strings with the "
                                  "string-delimiter token instead, where backslashes need no escaping.") from None
        if not isinstance(value, str):
            raise CallSyntaxError("Expected a string.")
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
        token = _WORD.match(self.text, self.pos)
        word = token.group(0) if token else ""
        after = self.pos + len(word)
        ends_cleanly = after >= len(self.text) or self.text[after] in ",}]) \t\r\n"
        if word in _LITERALS and ends_cleanly:
            self.pos = after
            return _LITERALS[word]
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
        value = text[value_start:end].lstrip(" \t").rstrip()
        if not value:
            raise CallSyntaxError(f"Expected a value, found {text[value_start:value_start + 20]!r}.")
        self.pos = end
        self._skip_dangling_quote()
        return value
