"""Numbers and exports of agent runs: per-step rows, run totals, the JSON export and the CLI table.

Pure arithmetic over Step records; every number comes from the engine's own stats. No gradio, no torch.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from agents.events import AgentConfig, RunDone, Step
from protocol import GenerationResult


def _sides(step: Step) -> tuple[GenerationResult | None, GenerationResult | None]:
    """(baseline run, drafter run) of a step; None for a side that did not run."""
    if step.comparison is not None:
        return step.comparison.baseline, step.comparison.drafter
    return (None, step.result) if step.result.stats.used_drafter else (step.result, None)


def step_rows(steps: Sequence[Step]) -> list[dict[str, Any]]:
    """One row per step: step, kind, new_tokens, baseline_s, drafter_s, speedup, acceptance,
    mean_accepted_length, identical (None where a side was not run)."""
    rows = []
    for step in steps:
        base, draft = _sides(step)
        stats = draft.stats.drafter if draft is not None else None
        rows.append({
            "step": step.index,
            "kind": step.kind,
            "new_tokens": step.result.stats.new_tokens,
            "baseline_s": base.stats.wall_s if base else None,
            "drafter_s": draft.stats.wall_s if draft else None,
            "speedup": step.comparison.speedup if step.comparison is not None else None,
            "acceptance": stats.acceptance_rate if stats else None,
            "mean_accepted_length": stats.mean_accepted_length if stats else None,
            "identical": step.comparison.identical if step.comparison is not None else None,
        })
    return rows


def run_totals(steps: Sequence[Step]) -> dict[str, Any]:
    """LLM time each way, time saved and speedup (compare steps only), tool time and step count."""
    pairs = [_sides(s) for s in steps]
    baseline = [b.stats.wall_s for b, _ in pairs if b is not None]
    drafter = [d.stats.wall_s for _, d in pairs if d is not None]
    compared = [(s.comparison.baseline.stats.wall_s, s.comparison.drafter.stats.wall_s)
                for s in steps if s.comparison is not None]
    compared_base, compared_draft = sum(b for b, _ in compared), sum(d for _, d in compared)
    return {
        "baseline_s": sum(baseline) if baseline else None,
        "drafter_s": sum(drafter) if drafter else None,
        "saved_s": compared_base - compared_draft if compared else None,
        "speedup": compared_base / compared_draft if compared and compared_draft > 0 else None,
        "tool_s": sum(s.tool_s for s in steps),
        "steps": len(steps),
    }


def _result_dict(result: GenerationResult) -> dict[str, Any]:
    stats = result.stats
    out = {
        "text": result.text, "stop_reason": result.stop_reason, "token_texts": list(result.token_texts),
        "provenance": list(result.provenance) if result.provenance is not None else None,
        "stats": {**{f.name: getattr(stats, f.name) for f in dataclasses.fields(stats) if f.name != "drafter"},
                  "tokens_per_s": stats.tokens_per_s},
        "drafter": None,
    }
    if stats.drafter is not None:
        out["drafter"] = {**dataclasses.asdict(stats.drafter), "acceptance_rate": stats.drafter.acceptance_rate,
                          "mean_accepted_length": stats.drafter.mean_accepted_length}
    return out


def _step_dict(step: Step, row: dict[str, Any]) -> dict[str, Any]:
    comparison = step.comparison
    return {
        **row,
        "text": step.text, "thoughts": step.thoughts, "parse_error": step.parse_error, "tool_s": step.tool_s,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in step.tool_calls],
        "tool_results": [{"id": r.call.id, "name": r.call.name, "output": r.output, "is_error": r.is_error,
                          "duration_s": r.duration_s} for r in step.tool_results],
        "result": _result_dict(step.result),
        "comparison": None if comparison is None else {
            "first_run": comparison.first_run, "first_divergence": comparison.first_divergence,
            "identical": comparison.identical, "speedup": comparison.speedup,
            "baseline": _result_dict(comparison.baseline), "drafter": _result_dict(comparison.drafter)},
    }


def run_to_dict(done: RunDone, config: AgentConfig, environment: dict[str, Any]) -> dict[str, Any]:
    """The whole run as JSON-able data: settings, environment, totals and every step with its stats."""
    rows = step_rows(done.steps)
    return {
        "task": done.task, "end_reason": done.reason, "final_answer": done.final_answer, "error": done.error,
        "settings": {"mode": config.mode, "max_steps": config.max_steps, "tool_output_chars": config.tool_output_chars,
                     **dataclasses.asdict(config.settings)},
        "environment": dict(environment),
        "totals": run_totals(done.steps),
        "steps": [_step_dict(step, row) for step, row in zip(done.steps, rows)],
        "messages": list(done.messages),
    }


_COLUMNS = [("step", "step", "{}"), ("kind", "kind", "{}"), ("new_tokens", "new tok", "{}"),
            ("baseline_s", "baseline s", "{:.3f}"), ("drafter_s", "drafter s", "{:.3f}"),
            ("speedup", "speedup", "{:.2f}x"), ("acceptance", "accept", "{:.0%}"),
            ("mean_accepted_length", "acc len", "{:.2f}"), ("identical", "identical", "{}")]


def format_table(steps: Sequence[Step]) -> str:
    """The per-step rows and the run totals as a plain-text table."""
    rows = step_rows(steps)
    cells = [[title for _, title, _ in _COLUMNS]]
    for row in rows:
        cells.append(["-" if row[key] is None else fmt.format(row[key]) for key, _, fmt in _COLUMNS])
    widths = [max(len(r[i]) for r in cells) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    totals = run_totals(steps)
    fmt_s = lambda v: "-" if v is None else f"{v:.2f} s"  # noqa: E731
    lines.append("")
    lines.append(f"LLM time: baseline {fmt_s(totals['baseline_s'])}, drafter {fmt_s(totals['drafter_s'])}; "
                 f"saved {fmt_s(totals['saved_s'])}"
                 + (f" ({totals['speedup']:.2f}x)" if totals["speedup"] else "")
                 + f"; tool time {fmt_s(totals['tool_s'])}; {totals['steps']} step(s)")
    return "\n".join(lines)
