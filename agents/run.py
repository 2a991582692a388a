"""Headless CLI: run the coding agent on one task and print the per-step table, totals and answer.

    python -m agents.run --model tiny "Write fizzbuzz.py and run it" --mode compare --json run.json

Loads the engine inside main (importing this module pulls in no torch). Exit status 1 when the run
ends in an error, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Callable, Sequence

from agents.events import AgentConfig, ModelDone, RunDone, StepStarted, ToolStarted
from agents.graph import run_agent
from agents.report import format_table, run_to_dict
from protocol import GenerationSettings, InputError, ModelError


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m agents.run", description="Run the Gemma 4 coding agent once.")
    p.add_argument("task", help="the coding task, in words")
    p.add_argument("--model", default="tiny", help="preset or Hub id (default: tiny)")
    p.add_argument("--drafter", default=None, help="drafter Hub id (default: the preset's)")
    p.add_argument("--mode", choices=["compare", "drafter", "baseline"], default="compare")
    p.add_argument("--max-steps", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--k", type=int, default=6, help="draft tokens per round")
    p.add_argument("--thinking", action="store_true", help="turn on the thinking channel")
    p.add_argument("--json", type=Path, default=None, help="write the run export (JSON) here")
    p.add_argument("--allow-unsandboxed", action="store_true",
                   default=os.environ.get("PLAYGROUND_ALLOW_UNSANDBOXED", "") == "1",
                   help="run code with rlimits only when no isolation is available (env PLAYGROUND_ALLOW_UNSANDBOXED=1)")
    return p.parse_args(argv)


def open_code_sandbox(allow_unisolated: bool = False):
    """(sandbox or None, words on what runs code); never fails: without a sandbox the code tools are off."""
    try:
        from agents.sandbox import open_sandbox
    except ImportError as e:
        return None, f"code tools disabled: the sandbox module cannot be imported ({e})"
    sandbox = open_sandbox(allow_unisolated=allow_unisolated)
    if not sandbox.available:
        return None, f"code tools disabled: {sandbox.reason}"
    return sandbox, f"sandbox: {sandbox.reason}"


def _workspace() -> tuple[Path, Callable[[Path], None]]:
    try:
        from agents.sandbox import make_workspace, remove_workspace
        return make_workspace(), remove_workspace
    except ImportError:
        import shutil
        import tempfile
        return Path(tempfile.mkdtemp(prefix="agent-workspace-")), lambda p: shutil.rmtree(p, ignore_errors=True)


def print_events(events, out=None) -> RunDone:
    """Print one line per step and tool as the run goes; return the RunDone."""
    out = out or sys.stdout
    for event in events:
        if isinstance(event, StepStarted):
            print(f"step {event.index}: generating…", file=out, flush=True)
        elif isinstance(event, ModelDone):
            names = ", ".join(c.name for c in event.step.tool_calls) or "final answer"
            print(f"step {event.step.index}: {names}" + (" (malformed call)" if event.step.parse_error else ""),
                  file=out, flush=True)
        elif isinstance(event, ToolStarted):
            print(f"  tool {event.call.name} {json.dumps(event.call.arguments, ensure_ascii=False)[:120]}", file=out,
                  flush=True)
        elif isinstance(event, RunDone):
            return event
    raise RuntimeError("the agent's event stream ended without a RunDone")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = AgentConfig(mode=args.mode, max_steps=args.max_steps, settings=GenerationSettings(
            max_new_tokens=args.max_new_tokens, draft_tokens=args.k, enable_thinking=args.thinking))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from inference import load_engine  # here, not at import: the engine pulls in torch

    try:
        engine = load_engine(args.model, args.drafter, on_progress=lambda msg, _f: print(msg, file=sys.stderr))
    except ModelError as e:
        print(f"error: could not load the model: {e}", file=sys.stderr)
        return 1
    sandbox, sandbox_note = open_code_sandbox(args.allow_unsandboxed)
    print(sandbox_note, file=sys.stderr)
    workspace, remove = _workspace()
    stop = threading.Event()
    try:
        done = print_events(run_agent(engine, args.task, config=config, workspace=workspace, sandbox=sandbox,
                                      should_stop=stop.is_set))
    except KeyboardInterrupt:
        stop.set()  # the graph's worker thread sees it between tokens and ends
        print("interrupted", file=sys.stderr)
        return 130
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        remove(workspace)
    print()
    print(format_table(done.steps))
    print(f"\nend: {done.reason}" + (f" - {done.error}" if done.error else ""))
    print(f"final answer:\n{done.final_answer}")
    if args.json:
        environment = {**engine.describe(), "sandbox": sandbox_note}
        args.json.write_text(json.dumps(run_to_dict(done, config, environment), indent=1, ensure_ascii=False,
                                        default=str))
        print(f"wrote {args.json}", file=sys.stderr)
    if hasattr(engine, "close"):
        engine.close()
    return 1 if done.reason == "error" else 0


if __name__ == "__main__":
    sys.exit(main())
