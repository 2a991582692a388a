"""The coding agent's tools: files in one per-run workspace, and code run through the sandbox.

Owns path confinement, size caps, argument checks and how tool output reads to the model. Knows nothing
of models or LangGraph; code only ever runs through a `Sandbox`, never here.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence

from agents.sandbox.api import ExecResult, Sandbox, SandboxLimits
from protocol import StopCheck, ToolSpec

READ_CAP_BYTES = 64 << 10  # read_file returns at most this much of a file
WRITE_CAP_BYTES = 256 << 10  # write_file refuses larger contents
LIST_CAP_ENTRIES = 200
SNIPPET_FILE = "_snippet.py"  # where run_python(code=...) puts the code
log = logging.getLogger(__name__)
NO_SANDBOX_REASON = "no sandbox was given to the agent, so model-written code cannot run here"


class ToolError(Exception):
    """A tool refused its input; the message tells the model what to do instead."""


@dataclass(frozen=True)
class ToolOutcome:
    output: str
    is_error: bool
    duration_s: float


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments
    run: Callable[..., str]
    needs_sandbox: bool = False

    def spec(self) -> ToolSpec:
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


def _schema(required: Sequence[str] = (), **properties: tuple[str, str]) -> dict[str, Any]:
    props = {name: {"type": kind, "description": text} for name, (kind, text) in properties.items()}
    return {"type": "object", "properties": props, "required": list(required)}


# ---- confinement ----

def resolve_in_workspace(workspace: Path, path: str) -> Path:
    """The real path of `path` inside the workspace; ToolError for absolute paths, `..` or symlink escapes."""
    if not isinstance(path, str) or not path.strip():
        raise ToolError("Give a path relative to the workspace, e.g. 'main.py'.")
    if "\x00" in path:
        raise ToolError("The path contains a NUL byte.")
    pure = PurePosixPath(path.strip())
    if pure.is_absolute() or path.startswith("~"):
        raise ToolError(f"{path!r} is absolute; paths are relative to the workspace, e.g. 'src/app.py'.")
    if ".." in pure.parts:
        raise ToolError(f"{path!r} uses '..'; stay inside the workspace.")
    root = workspace.resolve()
    target = (root / pure).resolve()
    if target != root and root not in target.parents:
        raise ToolError(f"{path!r} leads outside the workspace (through a symlink); use a path inside it.")
    return target


def _relative(workspace: Path, path: Path) -> str:
    return path.relative_to(workspace.resolve()).as_posix() or "."


# ---- file tools ----

def list_files(workspace: Path, path: str = ".") -> str:
    root = resolve_in_workspace(workspace, path)
    if not root.is_dir():
        raise ToolError(f"{path!r} is not a folder in the workspace.")
    lines = []
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".pytest_cache"))
        for name in sorted(files):
            file = Path(current) / name
            size = file.lstat().st_size
            lines.append(f"{_relative(workspace, file)}  ({size} bytes)")
            if len(lines) >= LIST_CAP_ENTRIES:
                return "\n".join(lines + [f"… listing stopped at {LIST_CAP_ENTRIES} files."])
    return "\n".join(lines) if lines else "(no files yet)"


def read_file(workspace: Path, path: str) -> str:
    file = resolve_in_workspace(workspace, path)
    if not file.is_file():
        raise ToolError(f"{path!r} does not exist or is not a file; list_files shows what there is.")
    with file.open("rb") as f:
        data = f.read(READ_CAP_BYTES + 1)
    text = data[:READ_CAP_BYTES].decode("utf-8", errors="replace")
    if len(data) > READ_CAP_BYTES:
        text += f"\n… [file cut at {READ_CAP_BYTES} bytes of {file.stat().st_size}]"
    return text


def write_file(workspace: Path, path: str, content: str) -> str:
    data = content.encode("utf-8")
    if len(data) > WRITE_CAP_BYTES:
        raise ToolError(f"The content is {len(data)} bytes; write_file takes at most {WRITE_CAP_BYTES}. "
                        "Split it over several files.")
    file = resolve_in_workspace(workspace, path)
    if file.is_dir():
        raise ToolError(f"{path!r} is a folder; give a file name.")
    file.parent.mkdir(parents=True, exist_ok=True)
    # O_NOFOLLOW: a symlink planted at the name after the check above is refused, not followed.
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return f"Wrote {len(data)} bytes to {_relative(workspace, file)}."


# ---- code tools ----

def format_exec(result: ExecResult) -> str:
    """An ExecResult as the model reads it: status line, any note, then the output."""
    status = "killed" if result.exit_code is None else f"exit code {result.exit_code}"
    lines = [f"{status} after {result.duration_s:.2f} s"]
    if result.timed_out:
        lines.append("TIMED OUT: the run was stopped at the time limit.")
    if result.note:
        lines.append(f"note: {result.note}")
    if result.truncated:
        lines.append("(output was cut at the sandbox's output limit)")
    lines.append("output:" if result.output else "output: (none)")
    if result.output:
        lines.append(result.output)
    return "\n".join(lines)


# ---- the toolbox ----

class Toolbox:
    """The tools of one run, bound to its workspace and sandbox."""

    def __init__(self, workspace: Path, sandbox: Sandbox | None = None, *, limits: SandboxLimits = SandboxLimits(),
                 should_stop: StopCheck | None = None) -> None:
        self.workspace = Path(workspace)
        self.sandbox = sandbox if sandbox is not None and getattr(sandbox, "available", True) else None
        self.disabled_reason = (getattr(sandbox, "reason", "") or NO_SANDBOX_REASON) if self.sandbox is None \
            else None
        self.limits, self.should_stop = limits, should_stop
        self.tools = {t.name: t for t in self._all_tools()}

    def _all_tools(self) -> list[Tool]:
        ws = self.workspace
        return [
            Tool("list_files", "List the files in the workspace (or in one folder of it), with sizes.",
                 _schema(path=("string", "folder relative to the workspace; default '.'")),
                 lambda path=".": list_files(ws, path)),
            Tool("read_file", f"Read a text file from the workspace (at most {READ_CAP_BYTES} bytes).",
                 _schema(["path"], path=("string", "file path relative to the workspace")),
                 lambda path: read_file(ws, path)),
            Tool("write_file", "Create or overwrite a text file in the workspace; folders are created.",
                 _schema(["path", "content"], path=("string", "file path relative to the workspace"),
                         content=("string", "the whole new file content")),
                 lambda path, content: write_file(ws, path, content)),
            Tool("run_python", "Run Python in the sandbox with the workspace as the current folder. Give "
                 "either `code` (saved to _snippet.py and run) or `path` of a .py file in the workspace.",
                 _schema(code=("string", "Python source to run"), path=("string", "a .py file to run")),
                 self._run_python, needs_sandbox=True),
            Tool("run_tests", "Run pytest (-q) in the sandbox on the workspace or on one test file or folder.",
                 _schema(path=("string", "test file or folder relative to the workspace; default: all")),
                 self._run_tests, needs_sandbox=True),
        ]

    def specs(self) -> list[ToolSpec]:
        """Declarations for the model: code tools only when a sandbox can run them."""
        return [t.spec() for t in self.tools.values() if self.sandbox is not None or not t.needs_sandbox]

    def call(self, name: str, arguments: Any) -> ToolOutcome:
        """Run one tool call; every failure comes back as an error outcome, never an exception."""
        start = time.monotonic()
        try:
            output, is_error = self._dispatch(name, arguments), False
        except ToolError as e:
            output, is_error = f"Error: {e}", True
        except OSError as e:
            output, is_error = f"Error: {e.strerror or e} ({name}).", True
        except Exception as e:  # noqa: BLE001 - a failing tool is reported to the model; the run goes on
            log.exception("tool %s failed", name)
            output, is_error = f"Error: the tool {name} failed inside the server ({type(e).__name__}).", True
        return ToolOutcome(output, is_error, time.monotonic() - start)

    def _dispatch(self, name: str, arguments: Any) -> str:
        tool = self.tools.get(name)
        if tool is None:
            known = ", ".join(t["function"]["name"] for t in self.specs())
            raise ToolError(f"There is no tool named {name!r}. The tools are: {known}.")
        if tool.needs_sandbox and self.sandbox is None:
            raise ToolError(f"Code execution is disabled: {self.disabled_reason}. Do not call {name}; "
                            "work with the file tools and answer without running code.")
        check_arguments(tool, arguments)
        return tool.run(**arguments)

    def _run_python(self, code: str | None = None, path: str | None = None) -> str:
        if (code is None) == (path is None):
            raise ToolError("Give exactly one of `code` (Python source) or `path` (a .py file in the workspace).")
        if code is not None:
            write_file(self.workspace, SNIPPET_FILE, code)
            path = SNIPPET_FILE
        file = resolve_in_workspace(self.workspace, path)
        if not file.is_file():
            raise ToolError(f"{path!r} is not a file in the workspace; write it first or pass `code`.")
        return self._exec(["python", _relative(self.workspace, file)])

    def _run_tests(self, path: str | None = None) -> str:
        targets = [] if path is None else [_relative(self.workspace, resolve_in_workspace(self.workspace, path))]
        return self._exec(["python", "-m", "pytest", "-q", *targets])

    def _exec(self, argv: list[str]) -> str:
        assert self.sandbox is not None
        return format_exec(self.sandbox.run(argv, self.workspace, self.limits, should_stop=self.should_stop))


def check_arguments(tool: Tool, arguments: Any) -> None:
    """ToolError unless `arguments` is a mapping with the required keys, known keys and string values."""
    if not isinstance(arguments, dict):
        raise ToolError(f"The arguments of {tool.name} must be an object of key:value pairs.")
    properties = tool.parameters["properties"]
    unknown = sorted(set(arguments) - set(properties))
    if unknown:
        raise ToolError(f"{tool.name} has no argument {', '.join(map(repr, unknown))}; "
                        f"its arguments are: {', '.join(properties)}.")
    missing = [key for key in tool.parameters["required"] if key not in arguments]
    if missing:
        raise ToolError(f"{tool.name} needs the argument(s) {', '.join(map(repr, missing))}.")
    for key, value in arguments.items():
        if properties[key]["type"] == "string" and not isinstance(value, str):
            raise ToolError(f"The argument {key!r} of {tool.name} must be a string (between string delimiters), "
                            f"got {type(value).__name__}.")


def truncate(text: str, max_chars: int) -> str:
    """Keep the head and tail of `text` within `max_chars`, saying how much was cut."""
    if len(text) <= max_chars:
        return text
    marker = "\n… [{n} characters cut] …\n"
    room = max(0, max_chars - len(marker.format(n=len(text))))
    head, tail = room * 2 // 3, room - room * 2 // 3
    cut = len(text) - head - tail
    return (text[:head] + marker.format(n=cut) + (text[-tail:] if tail else ""))[:max_chars]
