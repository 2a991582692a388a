"""The run's numbers as pandas frames for Gradio's own table and plot components.

Pure: takes the plain rows of agents.report (step_rows, cumulative_rows, content acceptance) and returns
DataFrames of display strings or plot points. Knows nothing of gradio, torch or how a run is produced.
A stopped step is marked as such, a slowdown is flagged in words and colour, a divergence names its
position and both tokens.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from ui.render import divergence_note, escape_text, short_token, speedup_cell

# The per-step table, most telling columns first so a phone shows them without scrolling.
TABLE_COLUMNS = ("#", "speedup", "accept", "target s", "drafter s", "tok/s target → drafter",
                 "TTFT s target / drafter", "tokens", "acc len", "stop", "same output", "kind")
# Pixel widths so the flags are read whole (a phone shows the first three columns; the rest scroll).
TABLE_WIDTHS_PX = (44, 150, 64, 80, 80, 150, 150, 64, 64, 170, 300, 90)
_KIND_LABELS = {"tool_call": "tool", "final_answer": "answer"}
_TONE_STYLES = {"good": "color: #15803d; font-weight: 600", "bad": "color: #b91c1c; font-weight: 600",
                "warn": "color: #92400e; font-weight: 600", "": ""}
CONTENT_CATEGORIES = ("thought", "prose", "code", "tool_call")
CONTENT_LABELS = {"thought": "thought", "prose": "prose", "code": "code", "tool_call": "tool-call syntax"}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _seconds(value: Any) -> str:
    return "–" if _num(value) is None else f"{value:.3f}"


def _pair(a: Any, b: Any, fmt: str, sep: str) -> str:
    """'a sep b' with '–' for a side that did not run."""
    shown = [fmt.format(v) if _num(v) is not None else "–" for v in (a, b)]
    return "–" if shown == ["–", "–"] else f"{shown[0]}{sep}{shown[1]}"


def stop_text(stop_reason: Any) -> str:
    """A step's stop reason(s): one value, or one per run when the two runs ended differently."""
    if isinstance(stop_reason, Mapping):
        values = {k: v for k, v in stop_reason.items() if v}
        if len(set(values.values())) <= 1:
            return escape_text(str(next(iter(values.values()), "–")))
        return " / ".join(f"{escape_text(str(k))}: {escape_text(str(v))}" for k, v in values.items())
    return escape_text(str(stop_reason)) if stop_reason else "–"


def _same_cell(row: Mapping[str, Any]) -> tuple[str, str]:
    if row.get("identical") is None:
        return "–", ""
    if row["identical"]:
        return "yes", ""
    note = divergence_note(row.get("divergence"))
    if note is None:
        return "NO (differs)", "warn"
    div = row["divergence"]
    return (f"NO at token {div['index']}: {short_token(str(div.get('baseline_token') or '(end)'), 10)} vs "
            f"{short_token(str(div.get('drafter_token') or '(end)'), 10)}", "warn")


def _stop_reasons(row: Mapping[str, Any]) -> Any:
    if row.get("baseline_stop_reason") or row.get("drafter_stop_reason"):
        return {"baseline": row.get("baseline_stop_reason"), "drafter": row.get("drafter_stop_reason")}
    return row.get("stop_reason")


def table_cells(row: Mapping[str, Any]) -> tuple[list[Any], list[str]]:
    """One table row as display strings, with a tone per cell ('good', 'bad', 'warn' or '')."""
    stopped = bool(row.get("stopped"))
    if stopped:
        speed, speed_tone = "stopped: left out", "warn"
    else:
        speed, speed_tone = speedup_cell(row.get("speedup"), compact=True)
    acceptance = _num(row.get("acceptance"))
    same, same_tone = _same_cell(row)
    cells = [
        row.get("step"), speed, "–" if acceptance is None else f"{acceptance:.0%}",
        _seconds(row.get("baseline_s")), _seconds(row.get("drafter_s")),
        _pair(row.get("baseline_tokens_per_s"), row.get("drafter_tokens_per_s"), "{:.1f}", " → "),
        _pair(row.get("baseline_ttft_s"), row.get("drafter_ttft_s"), "{:.3f}", " / "),
        "–" if row.get("new_tokens") is None else row["new_tokens"],
        "–" if _num(row.get("mean_accepted_length")) is None else f"{row['mean_accepted_length']:.2f}",
        stop_text(_stop_reasons(row)), same,
        _KIND_LABELS.get(row.get("kind"), escape_text(str(row.get("kind") or "–"))),
    ]
    tones = ["", speed_tone, "", "", "", "", "", "", "", "warn" if stopped else "", same_tone, ""]
    return cells, tones


def table_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The per-step table as a DataFrame of display strings."""
    return pd.DataFrame([table_cells(r)[0] for r in rows], columns=list(TABLE_COLUMNS))


def table_styler(rows: Sequence[Mapping[str, Any]]):
    """table_frame with each cell's tone as a colour (the words carry the same meaning)."""
    frame = table_frame(rows)
    tones = pd.DataFrame([[_TONE_STYLES[t] for t in table_cells(r)[1]] for r in rows], columns=frame.columns)
    return frame.style.apply(lambda _: tones, axis=None)


# Every label latency_frame can make, in reading order: the plot's fixed x order (step 10 after step 9).
LATENCY_ORDER = tuple(f"{i} {run}{cut}" for i in range(1, 100) for run in "TD" for cut in ("", " (stopped)"))


def latency_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Bars of seconds per step and run, for gr.BarPlot: one bar per (step, run), never stacked."""
    points = []
    for row in rows:
        for key, run in (("baseline_s", "target only"), ("drafter_s", "with drafter")):
            seconds = _num(row.get(key))
            if seconds is not None:
                suffix = " (stopped)" if row.get("stopped") else ""
                points.append({"step": f"{row['step']} {'T' if key == 'baseline_s' else 'D'}{suffix}",
                               "seconds": seconds, "run": run})
    return pd.DataFrame(points, columns=["step", "seconds", "run"])


def cumulative_frame(cumulative: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Elapsed LLM time with and without the drafter, step by step (agents.report.cumulative_rows), as
    long-form points for gr.LinePlot."""
    points = []
    for row in cumulative:
        points.append({"step": int(row["step"]), "seconds": float(row["baseline_s"]), "run": "target only"})
        points.append({"step": int(row["step"]), "seconds": float(row["drafter_s"]), "run": "with drafter"})
    return pd.DataFrame(points, columns=["step", "seconds", "run"])


def cumulative_note(cumulative: Sequence[Mapping[str, Any]]) -> str:
    """One sentence under the cumulative plot: time saved (or lost) so far."""
    if not cumulative:
        return "Elapsed LLM time with and without the drafter appears here as compared steps finish."
    last = cumulative[-1]
    saved = float(last["saved_s"])
    verb = "saved" if saved >= 0 else "LOST"
    return (f"After step {last['step']}: {float(last['baseline_s']):.2f} s target only vs "
            f"{float(last['drafter_s']):.2f} s with the drafter; {abs(saved):.2f} s {verb} so far.")


def _rate_text(entry: Mapping[str, Any] | None) -> str:
    """'rate (accepted/tried)'; where the engine did not say which drafts were refused, the accepted share."""
    if not entry or not entry.get("tokens"):
        return "–"
    if entry.get("tried") is None:  # unknown: only accepted tokens are counted
        return f"{entry['accepted']}/{entry['tokens']} tokens drafted (rate unknown)"
    if not entry["tried"]:
        return f"no drafts ({entry['tokens']} tok)"
    return f"{float(entry['rate']):.0%} ({entry['accepted']}/{entry['tried']})"


def content_frame(per_step: Sequence[tuple[Any, Mapping[str, Mapping[str, Any]]]],
                  run: Mapping[str, Mapping[str, Any]] | None) -> pd.DataFrame:
    """Acceptance by content, one row per step and one for the run: 'rate (accepted/tried)' per category."""
    columns = ["step", *(CONTENT_LABELS[c] for c in CONTENT_CATEGORIES)]
    data = [[str(step), *(_rate_text(acc.get(c)) for c in CONTENT_CATEGORIES)] for step, acc in per_step]
    if run:
        data.append(["run", *(_rate_text(run.get(c)) for c in CONTENT_CATEGORIES)])
    return pd.DataFrame(data, columns=columns)


def content_plot_frame(run: Mapping[str, Mapping[str, Any]] | None) -> pd.DataFrame:
    """The run's acceptance rate per content category (where a draft was tried), for gr.BarPlot."""
    points = [{"content": CONTENT_LABELS[c], "acceptance %": 100.0 * float(run[c]["rate"]),
               "accepted / tried": f"{run[c]['accepted']}/{run[c]['tried']}"}
              for c in CONTENT_CATEGORIES if run and run.get(c) and run[c].get("tried")]
    return pd.DataFrame(points, columns=["content", "acceptance %", "accepted / tried"])


def position_frame(accepted_by_position: Sequence[float] | None) -> pd.DataFrame:
    """P(draft token i accepted | drafted) per draft position, for gr.BarPlot."""
    return pd.DataFrame([{"draft position": f"#{i + 1}", "acceptance %": 100.0 * float(p)}
                         for i, p in enumerate(accepted_by_position or ())],
                        columns=["draft position", "acceptance %"])
