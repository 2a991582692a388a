"""What each panel of the page shows for a session, as plain data: the one place report rows meet the page.

Two views, redrawn at different rates: the stream (chat, state line, live view) with every few tokens, the
numbers (summary, table, plots) only when a step finishes, so the page's own work stays off the host time
the runs it measures need.

Pure: reads a ui.sessions.Session and agents.report; returns HTML strings, DataFrames and lists. app.py
hands these to Gradio components unchanged. Knows nothing of gradio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from agents.events import Step
from agents.report import (
    content_acceptance, cumulative_rows, divergence, run_content_acceptance, run_totals, step_rows,
)
from ui.render import divergence_note, escape_html, provenance_html, run_state_html, summary_html
from ui.sessions import Session
from ui.tables import (
    content_frame, content_plot_frame, cumulative_frame, cumulative_note, latency_frame, position_frame, table_styler,
)

NO_STEP = '<div class="prov-note">Pick a finished step.</div>'


@dataclass(frozen=True)
class StreamView:
    """What changes with every streamed token: cheap to redraw (the run's own timings share the host)."""

    chat: list[dict[str, Any]]
    run_state: str
    live: str


@dataclass(frozen=True)
class NumbersView:
    """What changes when a step finishes: the summary, the table and the plots."""

    summary: str
    table: Any  # a pandas Styler (display strings with colours)
    latency: pd.DataFrame
    cumulative: pd.DataFrame
    cumulative_note: str
    content_table: pd.DataFrame
    content_plot: pd.DataFrame
    step_choices: list[str]


def step_label(step: Step) -> str:
    return f"Step {step.index}"


def stream_view(session: Session, now_s: float | None = None) -> StreamView:
    now_s = time.monotonic() if now_s is None else now_s
    return StreamView(chat=session.transcript.messages, run_state=run_state_html(session.state, session.tone),
                      live=session.live.html(now_s))


def numbers_view(steps: list[Step]) -> NumbersView:
    """The run's numbers from its finished steps (agents.report), for the summary, table and plots."""
    rows = step_rows(steps)
    totals = run_totals(steps) if steps else None
    cumulative = cumulative_rows(steps)
    per_step = [(s.index, acc) for s in steps if (acc := content_acceptance(s)) is not None]
    run_content = run_content_acceptance(steps) if steps else None
    return NumbersView(
        summary=summary_html(totals, totals["acceptance"] if totals else None),
        table=table_styler(rows),
        latency=latency_frame(rows),
        cumulative=cumulative_frame(cumulative),
        cumulative_note=cumulative_note(cumulative),
        content_table=content_frame(per_step, run_content),
        content_plot=content_plot_frame(run_content),
        step_choices=[step_label(s) for s in steps],
    )


def provenance_view(session: Session, label: str | None) -> tuple[str, pd.DataFrame]:
    """The chosen step's tokens by provenance, and its acceptance by draft position."""
    if not label:
        return NO_STEP, position_frame(None)
    try:
        step = session.transcript.steps.get(int(label.split()[-1]))
    except ValueError:
        step = None
    if step is None:
        return '<div class="prov-note">That step belongs to an earlier run.</div>', position_frame(None)
    result = step.comparison.drafter if step.comparison is not None else step.result
    html = provenance_html(result.token_texts, result.provenance, result.draft_rejected)
    note = divergence_note(divergence(step))
    if note:
        html = f'<div class="prov-note warn">Outputs differ at {escape_html(note)}.</div>' + html
    drafter = result.stats.drafter
    return html, position_frame(drafter.accepted_by_position if drafter else None)
