"""The coding agent's toolbox: the tool declarations, argument checks, code run through the sandbox.

Owns what the model is offered (names, descriptions, JSON schemas, one output budget per tool) and how a
call turns into a ToolOutcome; the file tools themselves live in agents.file_tools. Knows nothing of
models or LangGraph; code only ever runs through a `Sandbox`, never here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from agents import file_tools as ft
from agents.files import ToolError, relative, resolve_in_workspace, write_regular
from agents.sandbox.api import ExecResult, Sandbox, SandboxLimits
from protocol import StopCheck, ToolSpec

SNIPPET_FILE = "_snippet.py"  # where run_python(code=...) puts the code
RUN_OUTPUT_CHARS = 6_000  # budget of a run_python / run_tests result (head and tail of the output)
log = logging.getLogger(__name__)
NO_SANDBOX_REASON = "no sandbox was given to the agent, so model-written code cannot run here"
# pytest's exit codes, for the status line of run_tests.
PYTEST_EXIT = {1: "tests failed", 2: "interrupted, e.g. by an error while collecting tests",
               3: "pytest internal error", 4: "pytest usage error", 5: "no tests were collected"}

__all__ = ["RUN_OUTPUT_CHARS", "SNIPPET_FILE", "Tool", "ToolError", "ToolOutcome", "Toolbox", "check_arguments",
           "format_exec", "truncate"]


@dataclass(frozen=True)
class ToolOutcome:
    """What one tool call gave. The exec fields are set by run_python / run_tests only."""

    output: str
    is_error: bool  # refused, failed, or (code tools) a non-zero exit, a timeout or a kill
    duration_s: float
    exit_code: int | None = None  # None: not a code tool, or the program was killed / never ran
    timed_out: bool = False
    killed: bool = False


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments
    run: Callable[..., "str | ToolOutcome"]
    budget_chars: int  # the most characters of output the model gets from one call
    needs_sandbox: bool = False

    def spec(self) -> ToolSpec:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def _schema(required: Sequence[str] = (), **properties: tuple[str, str]) -> dict[str, Any]:
    props = {name: {"type": kind, "description": text} for name, (kind, text) in properties.items()}
    return {"type": "object", "properties": props, "required": list(required)}


PATH = ("string", "file path")


def file_tools(ws: Path) -> list[Tool]:
    """The tools that need no sandbox, bound to a workspace."""
    return [
        Tool("list_files", "List files under a folder, with sizes.",
             _schema(path=("string", "folder; default '.'"), pattern=("string", "glob on names, e.g. '*.py'")),
             lambda path=".", pattern=None: ft.list_files(ws, path, pattern), ft.LIST_CHARS + 200),
        Tool("read_file", f"Read a text file with numbered lines, {ft.READ_LINES} at a time. The first line says "
             "'lines X-Y of N': read on with offset.",
             _schema(["path"], path=PATH, offset=("integer", "first line; default 1"),
                     limit=("integer", f"number of lines; default {ft.READ_LINES}")),
             lambda path, offset=1, limit=ft.READ_LINES: ft.read_file(ws, path, offset, limit),
             ft.READ_CHARS + 400),
        Tool("search", "Find plain text (not a regex) in files; lists file:line: text.",
             _schema(["text"], text=("string", "exact text, within one line"),
                     path=("string", "file or folder; default '.'")),
             lambda text, path=".": ft.search(ws, text, path), ft.SEARCH_CHARS + 300),
        Tool("write_file", "Create a file or replace all its content. To change part of a file, use edit_file or "
             "insert_lines.",
             _schema(["path", "content"], path=PATH, content=("string", "the whole file")),
             lambda path, content: ft.write_file(ws, path, content), 300),
        Tool("edit_file", "Replace old_text, which must occur exactly once in the file, with new_text.",
             _schema(["path", "old_text", "new_text"], path=PATH,
                     old_text=("string", "exact text to replace, without line numbers"),
                     new_text=("string", "replacement; empty to delete")),
             lambda path, old_text, new_text: ft.edit_file(ws, path, old_text, new_text), ft.EDIT_CHARS + 400),
        Tool("insert_lines", "Insert lines after a line of a file.",
             _schema(["path", "after_line", "text"], path=PATH, after_line=("integer", "line number; 0 = top"),
                     text=("string", "lines to insert")),
             lambda path, after_line, text: ft.insert_lines(ws, path, after_line, text), ft.EDIT_CHARS + 400),
    ]


class Toolbox:
    """The tools of one run, bound to its workspace and sandbox."""

    def __init__(self, workspace: Path, sandbox: Sandbox | None = None, *, limits: SandboxLimits = SandboxLimits(),
                 should_stop: StopCheck | None = None) -> None:
        self.workspace = Path(workspace)
        self.sandbox = sandbox if sandbox is not None and getattr(sandbox, "available", True) else None
        self.disabled_reason = (getattr(sandbox, "reason", "") or NO_SANDBOX_REASON) if self.sandbox is None \
            else None
        self.limits, self.should_stop = limits, should_stop
        self.tools = {t.name: t for t in [*file_tools(self.workspace), *self._code_tools()]}

    @property
    def can_run_code(self) -> bool:
        return self.sandbox is not None

    def _code_tools(self) -> list[Tool]:
        return [
            Tool("run_python", "Run Python in the sandbox (Python only: no shell, pip, git or network) in the "
                 "workspace folder. Give code or path.",
                 _schema(code=("string", f"Python source (saved to {SNIPPET_FILE})"),
                         path=("string", ".py file to run")),
                 self._run_python, RUN_OUTPUT_CHARS + 400, needs_sandbox=True),
            Tool("run_tests", "Run pytest -q in the sandbox on all tests, or on one test file or folder.",
                 _schema(path=("string", "test file or folder; default: all")),
                 self._run_tests, RUN_OUTPUT_CHARS + 400, needs_sandbox=True),
        ]

    def specs(self) -> list[ToolSpec]:
        """Declarations for the model: code tools only when a sandbox can run them."""
        return [t.spec() for t in self.tools.values() if self.can_run_code or not t.needs_sandbox]

    def budget_chars(self, name: str) -> int:
        """The output budget of a tool (an unknown name gets the smallest, for its error)."""
        tool = self.tools.get(name)
        return tool.budget_chars if tool is not None else 1000

    def call(self, name: str, arguments: Any) -> ToolOutcome:
        """Run one tool call; every failure comes back as an error outcome, never an exception."""
        start = time.monotonic()
        try:
            reply = self._dispatch(name, arguments)
        except ToolError as e:
            reply = ToolOutcome(f"Error: {e}", True, 0.0)
        except OSError as e:
            reply = ToolOutcome(f"Error: {e.strerror or e} ({name}).", True, 0.0)
        except Exception as e:  # noqa: BLE001 - a failing tool is reported to the model; the run goes on
            log.exception("tool %s failed", name)
            reply = ToolOutcome(f"Error: the tool {name} failed inside the server ({type(e).__name__}).", True, 0.0)
        if isinstance(reply, str):
            reply = ToolOutcome(reply, False, 0.0)
        output = truncate(reply.output, self.budget_chars(name))
        return ToolOutcome(output, reply.is_error, time.monotonic() - start, reply.exit_code, reply.timed_out,
                           reply.killed)

    def _dispatch(self, name: str, arguments: Any) -> str | ToolOutcome:
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(t["function"]["name"] for t in self.specs())
            raise ToolError(f"There is no tool named {name!r}. The tools are: {known}.")
        if tool.needs_sandbox and not self.can_run_code:
            raise ToolError(f"Code execution is disabled: {self.disabled_reason}. Do not call {name}; "
                            "work with the file tools and answer without running code.")
        return tool.run(**check_arguments(tool, arguments))

    def _run_python(self, code: str | None = None, path: str | None = None) -> ToolOutcome:
        if (code is None) == (path is None):
            raise ToolError("Give exactly one of `code` (Python source) or `path` (a .py file in the workspace).")
        if code is not None:
            file = resolve_in_workspace(self.workspace, SNIPPET_FILE)
            write_regular(file, SNIPPET_FILE, code.encode("utf-8"))
        else:
            file = resolve_in_workspace(self.workspace, path)
            if not file.is_file():
                raise ToolError(f"{path!r} is not a file in the workspace; write it first or pass `code`.")
        return self._exec(["python", relative(self.workspace, file)])

    def _run_tests(self, path: str | None = None) -> ToolOutcome:
        targets = [] if path is None else [relative(self.workspace, resolve_in_workspace(self.workspace, path))]
        return self._exec(["python", "-m", "pytest", "-q", *targets], exit_words=PYTEST_EXIT)

    def _exec(self, argv: list[str], exit_words: dict[int, str] | None = None) -> ToolOutcome:
        assert self.sandbox is not None
        result = self.sandbox.run(argv, self.workspace, self.limits, should_stop=self.should_stop)
        return ToolOutcome(format_exec(result, exit_words), is_error=result.exit_code != 0 or result.timed_out,
                           duration_s=result.duration_s, exit_code=result.exit_code, timed_out=result.timed_out,
                           killed=result.exit_code is None and not _never_ran(result))


def _never_ran(result: ExecResult) -> bool:
    """The sandbox refused the command (busy, disabled): no process ran."""
    return result.exit_code is None and not result.timed_out and result.duration_s == 0 and not result.output


def format_exec(result: ExecResult, exit_words: dict[int, str] | None = None,
                budget_chars: int = RUN_OUTPUT_CHARS) -> str:
    """An ExecResult as the model reads it: status line, any note, then the output (head and tail)."""
    if result.exit_code is not None:
        words = (exit_words or {}).get(result.exit_code)
        status = f"exit code {result.exit_code}" + (f" ({words})" if words else "")
    elif result.timed_out:
        status = "TIMED OUT: killed at the time limit"
    elif _never_ran(result):
        status = "not run"
    else:
        status = "killed"
    lines = [status]
    if result.note:
        lines.append(f"note: {result.note}")
    if result.truncated and not (result.note and "truncated" in result.note):
        lines.append("(output was cut at the sandbox's output limit)")
    head = "\n".join(lines)
    if not result.output:
        return head + "\noutput: (none)"
    # The end of a run's output (the traceback, pytest's summary) matters most: keep more of the tail.
    return head + "\noutput:\n" + truncate(result.output, max(200, budget_chars - len(head) - 10), head_share=0.4)


_INTEGER_WORDS = "an integer (a bare number, no string delimiters)"


def check_arguments(tool: Tool, arguments: Any) -> dict[str, Any]:
    """The arguments to call `tool` with; ToolError unless they are an object with the required keys, known
    keys and values of the declared types. A null value counts as absent; "12" passes as the integer 12."""
    if not isinstance(arguments, dict):
        raise ToolError(f"The arguments of {tool.name} must be an object of key:value pairs.")
    properties = tool.parameters["properties"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise ToolError(f"{tool.name} has no argument {', '.join(map(repr, unknown))}; "
                        f"its arguments are: {', '.join(properties)}.")
    given = {key: value for key, value in arguments.items() if value is not None}
    missing = [key for key in tool.parameters["required"] if key not in given]
    if missing:
        raise ToolError(f"{tool.name} needs the argument(s) {', '.join(map(repr, missing))}.")
    for key, value in given.items():
        kind = properties[key]["type"]
        if kind == "string" and not isinstance(value, str):
            raise ToolError(f"The argument {key!r} of {tool.name} must be a string (between string delimiters), "
                            f"got {type(value).__name__}.")
        if kind == "integer":
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                given[key] = value = int(value)
            elif isinstance(value, float) and value.is_integer():
                given[key] = value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ToolError(f"The argument {key!r} of {tool.name} must be {_INTEGER_WORDS}, got {value!r}.")
    return given


def truncate(text: str, max_chars: int, head_share: float = 2 / 3) -> str:
    """Keep the head and tail of `text` within `max_chars`, saying how much was cut."""
    if len(text) <= max_chars:
        return text
    marker = "\n… [{n} characters cut] …\n"
    room = max(0, max_chars - len(marker.format(n=len(text))))
    head = int(room * head_share)
    tail = room - head
    cut = len(text) - head - tail
    return (text[:head] + marker.format(n=cut) + (text[-tail:] if tail else ""))[:max_chars]
