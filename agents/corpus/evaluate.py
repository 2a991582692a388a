"""Score a model as an agent: on the page's examples (the corpus holds copies of them) and on held-back variants.

    python -m agents.corpus.evaluate --model mini --tasks examples --mode compare --json out.json
    python -m agents.corpus.evaluate --model mini --tasks heldout --count 24 --mode baseline

Held-back variants have parameters the corpus never holds: they measure what the model learnt beyond it.
Each task runs through the real agent graph, parser, tools and sandbox on the real engine. A run is correct when
its final answer states the task's facts, invents no number (every number it states is in the task or in what
the tools printed) and the code it ran printed what the task asks for. With a drafter
(compare or drafter mode) it also sums acceptance (overall, by draft position, by content) and the time of every
step with and without the drafter. Loads the engine inside main(): importing this module pulls in no torch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from agents.corpus.generate import SHIPPED_FAMILIES, example_tasks, run_in_workspace, sample_tasks, toolbox_tools
from agents.corpus.plan import Task, invented_numbers
from agents.events import AgentConfig, RunDone
from protocol import GenerationSettings

HELDOUT_SEED = 99


def run_task(model, task: Task, config: AgentConfig, sandbox) -> dict[str, Any]:
    """One agent run on `task`; a record of what happened and whether it was right."""
    start = time.perf_counter()
    done = run_in_workspace(task, lambda _workspace: model, config, sandbox)
    assert done is not None
    results = [r for s in done.steps for r in s.tool_results]
    output = "\n".join(r.output for r in results)
    ran = [r for r in results if r.call.name in ("run_python", "run_tests")]
    answered = done.reason == "answered"
    invented = invented_numbers(done.final_answer, [task.text, output]) if answered else []
    return {
        "key": task.key, "family": task.family, "task": task.text, "reason": done.reason,
        "final_answer": done.final_answer, "steps": len(done.steps),
        "tool_calls": [r.call.name for r in results],
        "ran_code": any(not r.is_error and "exit code 0" in r.output for r in ran),
        "malformed_calls": sum(1 for s in done.steps if s.parse_error),
        "answer_correct": answered and task.is_correct(done.final_answer),
        "output_correct": all(fact in output for fact in task.output_facts),
        "invented_numbers": invented,
        "correct": (answered and task.is_correct(done.final_answer) and all(f in output for f in task.output_facts)
                    and not invented),
        "wall_s": round(time.perf_counter() - start, 2),
        "step_stats": [_step_stats(s) for s in done.steps],
        "content": _content(done),
    }


def _step_stats(step) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": step.kind, "new_tokens": step.result.stats.new_tokens}
    runs = [("baseline", step.comparison.baseline), ("drafter", step.comparison.drafter)] if step.comparison else [
        ("drafter" if step.result.stats.used_drafter else "baseline", step.result)]
    for name, result in runs:
        stats = result.stats
        out[f"{name}_s"] = stats.wall_s
        out[f"{name}_decode_s"] = stats.decode_s
        out[f"{name}_tokens"] = stats.new_tokens
        if stats.drafter is not None:
            d = stats.drafter
            out.update(rounds=d.rounds, drafted=d.drafted_tokens, accepted=d.accepted_tokens,
                       accepted_by_position=list(d.accepted_by_position), draft_s=d.draft_s, verify_s=d.verify_s,
                       k=d.draft_tokens)
    if step.comparison is not None:
        out["identical"] = step.comparison.identical
    return out


def _content(done: RunDone) -> dict[str, Any] | None:
    """Acceptance by content (thought, prose, code, tool call), where agents.report offers it."""
    from agents import report

    if not hasattr(report, "run_content_acceptance"):
        return None
    return report.run_content_acceptance(done.steps)


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Success rates, acceptance overall / by position / by content, and the time with and without the drafter."""
    n = len(records)
    steps = [s for r in records for s in r["step_stats"]]
    summary: dict[str, Any] = {
        "runs": n, "correct": sum(r["correct"] for r in records),
        "facts_stated": sum(r["answer_correct"] for r in records),
        "invented_numbers": sum(bool(r["invented_numbers"]) for r in records),
        "answered": sum(r["reason"] == "answered" for r in records),
        "ended_repeating": sum(r["reason"] == "repeating" for r in records),
        "step_limit": sum(r["reason"] == "step_limit" for r in records),
        "called_tools": sum(bool(r["tool_calls"]) for r in records),
        "ran_code": sum(r["ran_code"] for r in records),
        "malformed_calls": sum(r["malformed_calls"] for r in records),
    }
    drafted = [s for s in steps if "drafted" in s]
    if drafted:
        k = drafted[0]["k"]
        rounds = sum(s["rounds"] for s in drafted)
        summary["acceptance"] = sum(s["accepted"] for s in drafted) / max(1, sum(s["drafted"] for s in drafted))
        summary["accepted_by_position"] = [
            sum(s["accepted_by_position"][i] * s["rounds"] for s in drafted) / max(1, rounds) for i in range(k)]
        summary["mean_accepted_per_round"] = sum(s["accepted"] for s in drafted) / max(1, rounds)
        summary["draft_s"] = sum(s["draft_s"] for s in drafted)
        summary["verify_s"] = sum(s["verify_s"] for s in drafted)
        summary["drafter_decode_s"] = sum(s.get("drafter_decode_s", 0.0) for s in drafted)
        summary["rounds"] = rounds
    both = [s for s in steps if "baseline_s" in s and "drafter_s" in s]
    if both:
        summary["baseline_s"] = sum(s["baseline_s"] for s in both)
        summary["drafter_s"] = sum(s["drafter_s"] for s in both)
        summary["speedup"] = summary["baseline_s"] / summary["drafter_s"]
        summary["identical_steps"] = sum(bool(s.get("identical")) for s in both)
        summary["compared_steps"] = len(both)
        summary["tokens"] = sum(s["baseline_tokens"] for s in both)
    content = [r["content"] for r in records if r.get("content")]
    if content:
        summary["content"] = _merge_content(content)
    return summary


def _merge_content(parts: Sequence[dict]) -> dict[str, Any]:
    merged: dict[str, dict[str, float]] = {}
    for part in parts:
        for kind, row in part.items():
            into = merged.setdefault(kind, {"tokens": 0, "accepted": 0, "tried": 0})
            for key in into:
                into[key] += row.get(key, 0) or 0
    for row in merged.values():
        row["rate"] = row["accepted"] / row["tried"] if row["tried"] else None
    return merged


def choose_tasks(which: str, count: int, tools: frozenset[str], families=SHIPPED_FAMILIES) -> list[Task]:
    """The page's examples, or `count` held-back variants of the families the shipped corpus holds."""
    if which == "examples":
        return example_tasks(tools)
    return sample_tasks(count, HELDOUT_SEED, tools, held_out=True, families=families)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agents.corpus.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mini")
    p.add_argument("--tasks", choices=["examples", "heldout"], default="examples")
    p.add_argument("--count", type=int, default=24, help="held-back tasks to run")
    p.add_argument("--mode", choices=["compare", "drafter", "baseline"], default="compare")
    p.add_argument("--k", type=int, default=None, help="draft tokens per round (default: the drafter's own)")
    p.add_argument("--max-new-tokens", type=int, default=640)
    p.add_argument("--max-steps", type=int, default=6)
    p.add_argument("--engine", default=None, help="inference engine (fast or transformers)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    from agents.sandbox import open_sandbox
    from inference import load_engine  # here, not at import: the engine pulls in torch

    sandbox = open_sandbox()
    if not sandbox.available:
        print(f"error: evaluation runs code; the sandbox is off: {sandbox.reason}", file=sys.stderr)
        return 1
    kwargs = {"engine": args.engine} if args.engine else {}
    engine = load_engine(args.model, **kwargs)
    drafter = getattr(engine, "drafter", None)
    k = args.k or (drafter.generation_config.num_assistant_tokens if drafter is not None else 4)
    config = AgentConfig(mode=args.mode, max_steps=args.max_steps,
                         settings=GenerationSettings(max_new_tokens=args.max_new_tokens, draft_tokens=int(k)))
    tasks = choose_tasks(args.tasks, args.count, toolbox_tools(sandbox))
    records = []
    for i, task in enumerate(tasks, 1):
        record = run_task(engine, task, config, sandbox)
        records.append(record)
        print(f"[{i}/{len(tasks)}] {'ok ' if record['correct'] else 'BAD'} {task.family:14} steps {record['steps']} "
              f"{record['wall_s']:6.1f} s  calls {','.join(record['tool_calls']) or '-'}  "
              f"answer: {record['final_answer'][:90]!r}", flush=True)
    summary = summarize(records)
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "settings": vars(args) | {"json": str(args.json)},
                                         "environment": engine.describe(), "records": records}, indent=1,
                                        default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
