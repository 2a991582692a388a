"""Headless CLI: run the coding agent on one task and print the per-step table, totals and answer.

    python -m agents.run "Write fizzbuzz.py with tests" --mode compare --json run.json
    python -m agents.run --continue run.json "Now add type hints"

Loads the engine inside main (importing this module pulls in no torch). The workspace is kept (its path
is printed) unless --clean; --continue takes an earlier run's --json export and goes on with its
conversation in its workspace. Exit status 1 when the run ends in an error, 2 for bad arguments (found
before any model is loaded).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Sequence

from agents.events import DEFAULT_MAX_STEPS, AgentConfig, ModelDone, RunDone, StepStarted, ToolStarted
from agents.graph import check_task, run_agent
from agents.report import format_table, run_to_dict
from protocol import GenerationSettings, InputError, ModelError

ENGINES = ("fast", "transformers")  # inference.ENGINES, named here so that --help needs no torch
DTYPES = ("bf16", "fp32")  # the keys of inference.DTYPES


class UsageError(Exception):
    """A bad command line, found before any model is loaded."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m agents.run", description="Run the Gemma 4 coding agent once.")
    p.add_argument("task", help="the coding task, in words")
    p.add_argument("--model", default=None, help="preset or Hub id (default: inference.default_model())")
    p.add_argument("--drafter", default=None, help="drafter Hub id (default: the preset's)")
    p.add_argument("--engine", choices=ENGINES, default="fast", help="decode loop (default: fast)")
    p.add_argument("--dtype", choices=DTYPES, default=None, help="default: bf16 on a GPU, fp32 on a CPU")
    p.add_argument("--mode", choices=["compare", "drafter", "baseline"], default="compare")
    p.add_argument("--max-steps", type=int, default=DEFAULT_MAX_STEPS)
    p.add_argument("--max-new-tokens", type=int, default=GenerationSettings().max_new_tokens)
    p.add_argument("--k", type=int, default=GenerationSettings().draft_tokens, help="draft tokens per round")
    p.add_argument("--thinking", action="store_true", help="turn on the thinking channel")
    p.add_argument("--json", type=Path, default=None, help="write the run export (JSON) here")
    p.add_argument("--continue", dest="continue_from", type=Path, default=None, metavar="RUN_JSON",
                   help="follow up on an earlier run: its --json export (same conversation, same workspace)")
    p.add_argument("--clean", action="store_true", help="delete the workspace when the run ends")
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


def make_workspace() -> Path:
    try:
        from agents.sandbox import make_workspace as make
        return make()
    except ImportError:
        import tempfile
        return Path(tempfile.mkdtemp(prefix="agent-workspace-"))


def remove_workspace(path: Path) -> None:
    try:
        from agents.sandbox import remove_workspace as remove
        remove(path)
    except (ImportError, ValueError):  # not under the sandbox's workspace root (an older run's folder)
        import shutil
        shutil.rmtree(path, ignore_errors=True)


def read_continuation(path: Path) -> tuple[list[dict[str, Any]], Path]:
    """(messages, workspace) of an earlier run's export; UsageError when they cannot be used."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"--continue: cannot read {path} ({e}); give the --json export of an earlier run.") from None
    messages, workspace = data.get("messages"), data.get("workspace")
    if not isinstance(messages, list) or not messages or not workspace:
        raise UsageError(f"--continue: {path} has no conversation or workspace; it must be the --json export of "
                         "an earlier `python -m agents.run` run.")
    if not Path(workspace).is_dir():
        raise UsageError(f"--continue: the workspace {workspace} of that run is gone (was it run with --clean?).")
    return messages, Path(workspace)


def print_events(events, out=None) -> RunDone:
    """Print one line per step and tool as the run goes; return the RunDone."""
    out = out or sys.stdout
    for event in events:
        if isinstance(event, StepStarted):
            print(f"step {event.index}: generating…", file=out, flush=True)
        elif isinstance(event, ModelDone):
            step = event.step
            what = ", ".join(c.name for c in step.tool_calls) or step.kind.replace("_", " ")
            extra = f" (stop: {step.stop_reason})" if step.stop_reason != "eos" else ""
            print(f"step {step.index}: {what}" + (" + malformed call" if step.parse_error and step.tool_calls else "")
                  + extra, file=out, flush=True)
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
        problem = check_task(args.task)
        if problem:
            raise UsageError(problem)
        history, workspace = read_continuation(args.continue_from) if args.continue_from else ([], None)
    except (ValueError, UsageError) as e:  # InputError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    import inference  # here, not at import: the engine pulls in torch

    model = args.model or getattr(inference, "default_model", lambda: "tiny")()
    try:
        engine = inference.load_engine(model, args.drafter, engine=args.engine, dtype=args.dtype,
                                       on_progress=lambda msg, _f: print(msg, file=sys.stderr))
    except ModelError as e:
        print(f"error: could not load the model: {e}", file=sys.stderr)
        return 1
    if engine.drafter_id is None and config.mode != "baseline":
        if config.mode == "drafter":
            print("error: --mode drafter needs a drafter, and none was loaded; give --drafter or use --mode baseline.",
                  file=sys.stderr)
            _close(engine)
            return 2
        print(f"note: {model} was loaded without a drafter, so compare mode runs as baseline only.", file=sys.stderr)
        config = dataclasses.replace(config, mode="baseline")
    sandbox, sandbox_note = open_code_sandbox(args.allow_unsandboxed)
    print(sandbox_note, file=sys.stderr)
    workspace = workspace or make_workspace()
    print(f"workspace: {workspace}", file=sys.stderr)
    stop = threading.Event()
    try:
        done = print_events(run_agent(engine, args.task, config=config, workspace=workspace, sandbox=sandbox,
                                      should_stop=stop.is_set, history=history))
    except KeyboardInterrupt:
        stop.set()  # the graph's worker thread sees it between tokens and ends
        print("interrupted", file=sys.stderr)
        return 130
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if args.clean:
            remove_workspace(workspace)
    print()
    print(format_table(done.steps))
    print(f"\nend: {done.reason}" + (f" - {done.error}" if done.error else ""))
    print(f"final answer:\n{done.final_answer}")
    if args.json:
        environment = {**engine.describe(), "sandbox": sandbox_note}
        data = {**run_to_dict(done, config, environment), "workspace": None if args.clean else str(workspace)}
        args.json.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str))
        print(f"wrote {args.json}", file=sys.stderr)
    if not args.clean:
        follow = f" --continue {args.json}" if args.json else ""
        print(f"the workspace is kept: {workspace}" + (f"\nfollow up with: python -m agents.run{follow} \"...\""
                                                        if follow else ""), file=sys.stderr)
    _close(engine)
    return 1 if done.reason == "error" else 0


def _close(engine) -> None:
    if hasattr(engine, "close"):
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
