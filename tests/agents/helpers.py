"""Builders for agent tests: Gemma 4 call text, a fake sandbox, event filters."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from agents.call_syntax import QUOTE as Q, render_value  # noqa: F401 - re-exported for the tests
from agents.sandbox.api import ExecResult, SandboxLimits


def call(name: str, **arguments: Any) -> str:
    return f"<|tool_call>call:{name}{render_value(arguments)}<tool_call|>"


@dataclass
class FakeSandbox:
    """Records what the tools asked to run and answers with a fixed ExecResult."""

    result: ExecResult = field(default_factory=lambda: ExecResult(0, "ok\n", False, False, 0.05))
    available: bool = True
    reason: str = "fake sandbox for tests"
    runs: list[tuple[list[str], Path, SandboxLimits, Any]] = field(default_factory=list)

    def run(self, argv: Sequence[str], workspace: Path, limits: SandboxLimits = SandboxLimits(), *,
            should_stop=None) -> ExecResult:
        self.runs.append((list(argv), Path(workspace), limits, should_stop))
        return self.result


def of_type(events, kind) -> list:
    return [e for e in events if isinstance(e, kind)]
