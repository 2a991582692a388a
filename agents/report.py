"""Numbers of agent runs for the page, the CLI and the export: per-step rows, run totals, the cumulative
view, acceptance by content, the JSON export and the CLI table.

Pure arithmetic over Step records; every number comes from the engine's own stats. A step that Stop cut
short is marked `stopped` and left out of speedup and time saved (a partial baseline against a partial
drafter run is no measurement). No gradio, no torch.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
from pathlib import Path
from typing import Any, Sequence

from agents.events import AgentConfig, RunDone, Step
from agents.segments import CATEGORIES, token_categories
from protocol import GenerationResult

NO_REJECTIONS_NOTE = ("this engine did not report which drafts were rejected (draft_rejected is None): "
                      "accepted tokens are counted, tried drafts and the rate are unknown")


def _sides(step: Step) -> tuple[GenerationResult | None, GenerationResult | None]:
    """(baseline run, drafter run) of a step; None for a side that did not run."""
    if step.comparison is not None:
        return step.comparison.baseline, step.comparison.drafter
    return (None, step.result) if step.result.stats.used_drafter else (step.result, None)


def _is_compared(step: Step) -> bool:
    """A comparison that counts: both runs made, neither cut short by Stop."""
    return step.comparison is not None and not step.stopped


def divergence(step: Step) -> dict[str, Any] | None:
    """Where the two runs of a compare step first differ, with both tokens (None where a run had ended).
    A stopped step whose runs differ only in length did not diverge: Stop cut them at different places."""
    c = step.comparison
    if c is None or c.first_divergence is None:
        return None
    i = c.first_divergence
    if step.stopped and i >= min(len(c.baseline.token_ids), len(c.drafter.token_ids)):
        return None
    token = lambda r: r.token_texts[i] if i < len(r.token_texts) else None  # noqa: E731
    return {"index": i, "baseline_token": token(c.baseline), "drafter_token": token(c.drafter)}


def step_rows(steps: Sequence[Step]) -> list[dict[str, Any]]:
    """One row per step (None where a side was not run, or where a stopped step has no honest number)."""
    rows = []
    for step in steps:
        base, draft = _sides(step)
        stats = draft.stats.drafter if draft is not None else None
        diverged = divergence(step)
        rows.append({
            "step": step.index,
            "kind": step.kind,
            "stop_reason": step.stop_reason,
            "baseline_stop_reason": base.stop_reason if base else None,
            "drafter_stop_reason": draft.stop_reason if draft else None,
            "stopped": step.stopped,
            "new_tokens": step.result.stats.new_tokens,
            "baseline_s": base.stats.wall_s if base else None,
            "drafter_s": draft.stats.wall_s if draft else None,
            "speedup": step.comparison.speedup if _is_compared(step) else None,
            "baseline_tokens_per_s": base.stats.tokens_per_s if base else None,
            "drafter_tokens_per_s": draft.stats.tokens_per_s if draft else None,
            "baseline_ttft_s": base.stats.prefill_s if base else None,
            "drafter_ttft_s": draft.stats.prefill_s if draft else None,
            "acceptance": stats.acceptance_rate if stats else None,
            "mean_accepted_length": stats.mean_accepted_length if stats else None,
            "identical": (None if step.comparison is None else diverged is None if not step.stopped
                          else (False if diverged else None)),
            "divergence": diverged,
        })
    return rows


def run_totals(steps: Sequence[Step]) -> dict[str, Any]:
    """LLM time each way (all of it), time saved and speedup over the compared, unstopped steps (the stopped
    ones are listed in excluded_steps), overall acceptance, tool time and step count."""
    pairs = [_sides(s) for s in steps]
    baseline = [b.stats.wall_s for b, _ in pairs if b is not None]
    drafter = [d.stats.wall_s for _, d in pairs if d is not None]
    compared = [(s.comparison.baseline.stats.wall_s, s.comparison.drafter.stats.wall_s) for s in steps
                if _is_compared(s)]
    compared_base, compared_draft = sum(b for b, _ in compared), sum(d for _, d in compared)
    drafted = [d.stats.drafter for _, d in pairs if d is not None and d.stats.drafter is not None]
    drafted_tokens = sum(d.drafted_tokens for d in drafted)
    return {
        "baseline_s": sum(baseline) if baseline else None,
        "drafter_s": sum(drafter) if drafter else None,
        "compared_baseline_s": compared_base if compared else None,
        "compared_drafter_s": compared_draft if compared else None,
        "saved_s": compared_base - compared_draft if compared else None,
        "speedup": compared_base / compared_draft if compared and compared_draft > 0 else None,
        "excluded_steps": [s.index for s in steps if s.stopped],
        "acceptance": sum(d.accepted_tokens for d in drafted) / drafted_tokens if drafted_tokens else None,
        "new_tokens": sum(s.result.stats.new_tokens for s in steps),
        "tool_s": sum(s.tool_s for s in steps),
        "steps": len(steps),
    }


def cumulative_rows(steps: Sequence[Step]) -> list[dict[str, Any]]:
    """Per compared, unstopped step: LLM time so far with and without the drafter, and the time saved so far."""
    rows, base_s, draft_s = [], 0.0, 0.0
    for step in steps:
        if not _is_compared(step):
            continue
        base_s += step.comparison.baseline.stats.wall_s
        draft_s += step.comparison.drafter.stats.wall_s
        rows.append({"step": step.index, "baseline_s": base_s, "drafter_s": draft_s, "saved_s": base_s - draft_s})
    return rows


# ---- acceptance by content ----

def _drafter_run(item: Step | GenerationResult) -> GenerationResult | None:
    result = _sides(item)[1] if isinstance(item, Step) else item
    return result if result is not None and result.provenance is not None else None


def _count(results: Sequence[GenerationResult]) -> dict[str, dict[str, Any]]:
    exact = all(r.draft_rejected is not None for r in results)
    counts = {c: {"tokens": 0, "accepted": 0, "tried": 0} for c in CATEGORIES}
    for result in results:
        rejected = result.draft_rejected or (False,) * len(result.provenance)
        for category, accepted, refused in zip(token_categories(result.token_texts), result.provenance, rejected):
            row = counts[category]
            row["tokens"] += 1
            row["accepted"] += bool(accepted)
            row["tried"] += bool(accepted or refused)
    for row in counts.values():
        row["tried"] = row["tried"] if exact else None
        row["rate"] = row["accepted"] / row["tried"] if row["tried"] else None
        row["accepted_share"] = row["accepted"] / row["tokens"] if row["tokens"] else None
        row["note"] = None if exact else NO_REJECTIONS_NOTE
    return counts


def content_acceptance(item: Step | GenerationResult) -> dict[str, dict[str, Any]] | None:
    """Per category (thought, prose, code, tool_call) of the drafter run's tokens: tokens, accepted (drafter
    tokens the target kept), tried (positions where a draft was tried: accepted + rejected) and rate
    (accepted / tried; None when nothing was tried). None when the drafter did not run."""
    result = _drafter_run(item)
    return _count([result]) if result is not None else None


def run_content_acceptance(steps: Sequence[Step]) -> dict[str, dict[str, Any]] | None:
    """content_acceptance summed over the drafter runs of every step."""
    results = [r for s in steps if (r := _drafter_run(s)) is not None]
    return _count(results) if results else None


# ---- export ----

@functools.lru_cache(maxsize=1)
def app_version() -> str:
    """PLAYGROUND_VERSION if set, else `git describe` of this checkout, else "unknown"."""
    if os.environ.get("PLAYGROUND_VERSION"):
        return os.environ["PLAYGROUND_VERSION"]
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"


def _result_dict(result: GenerationResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    stats = result.stats
    out = {
        "text": result.text, "stop_reason": result.stop_reason, "token_texts": list(result.token_texts),
        "provenance": list(result.provenance) if result.provenance is not None else None,
        "draft_rejected": list(result.draft_rejected) if result.draft_rejected is not None else None,
        "stats": {**{f.name: getattr(stats, f.name) for f in dataclasses.fields(stats) if f.name != "drafter"},
                  "tokens_per_s": stats.tokens_per_s},
        "drafter": None,
    }
    if stats.drafter is not None:
        out["drafter"] = {**dataclasses.asdict(stats.drafter), "acceptance_rate": stats.drafter.acceptance_rate,
                          "mean_accepted_length": stats.drafter.mean_accepted_length}
    return out


def _step_dict(step: Step, row: dict[str, Any]) -> dict[str, Any]:
    base, draft = _sides(step)
    return {
        **row,
        "text": step.text, "thoughts": step.thoughts, "parse_error": step.parse_error, "feedback": step.feedback,
        "tool_s": step.tool_s,
        "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in step.tool_calls],
        "tool_results": [{"id": r.call.id, "name": r.call.name, "output": r.output, "is_error": r.is_error,
                          "duration_s": r.duration_s, "exit_code": r.exit_code, "timed_out": r.timed_out,
                          "killed": r.killed} for r in step.tool_results],
        "continued_with": "drafter" if step.result.stats.used_drafter else "baseline",
        "first_run": step.comparison.first_run if step.comparison is not None else None,
        "runs": {"baseline": _result_dict(base), "drafter": _result_dict(draft)},  # each run once
        "content_acceptance": content_acceptance(step),
    }


def run_to_dict(done: RunDone, config: AgentConfig, environment: dict[str, Any]) -> dict[str, Any]:
    """The whole run as JSON-able data: what ran (task, prompt, tools, settings, versions), totals and every
    step with its stats, and the conversation."""
    rows = step_rows(done.steps)
    return {
        "app_version": app_version(), "started_at": done.started_at, "task": done.task,
        "end_reason": done.reason, "final_answer": done.final_answer, "error": done.error,
        "settings": {"mode": config.mode, "max_steps": config.max_steps, "tool_output_chars": config.tool_output_chars,
                     **dataclasses.asdict(config.settings)},
        "environment": dict(environment),
        "system_prompt": done.system_prompt, "tool_specs": list(done.tool_specs),
        "totals": run_totals(done.steps), "cumulative": cumulative_rows(done.steps),
        "content_acceptance": run_content_acceptance(done.steps),
        "steps": [_step_dict(step, row) for step, row in zip(done.steps, rows)],
        "messages": list(done.messages),
    }


# ---- the CLI table ----

_COLUMNS = [("step", "step", "{}"), ("kind", "kind", "{}"), ("stop_reason", "stop", "{}"),
            ("new_tokens", "new tok", "{}"), ("baseline_s", "baseline s", "{:.3f}"), ("drafter_s", "drafter s", "{:.3f}"),
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
    for row in rows:
        if row["divergence"]:
            d = row["divergence"]
            lines.append(f"step {row['step']}: runs differ from token {d['index']}: baseline "
                         f"{d['baseline_token']!r}, drafter {d['drafter_token']!r}")
    totals = run_totals(steps)
    fmt_s = lambda v: "-" if v is None else f"{v:.2f} s"  # noqa: E731
    lines.append("")
    lines.append(f"LLM time: baseline {fmt_s(totals['baseline_s'])}, drafter {fmt_s(totals['drafter_s'])}; "
                 f"saved {fmt_s(totals['saved_s'])}"
                 + (f" ({totals['speedup']:.2f}x)" if totals["speedup"] else "")
                 + (f", stopped steps {totals['excluded_steps']} left out" if totals["excluded_steps"] else "")
                 + f"; tool time {fmt_s(totals['tool_s'])}; {totals['steps']} step(s)")
    return "\n".join(lines)
