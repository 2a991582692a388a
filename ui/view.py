"""What each panel of the page shows for a session, as plain data: the one place report rows meet the page.

Pure: reads a ui.sessions.Session and agents.report; returns HTML strings, DataFrames and lists. app.py
hands these to Gradio components unchanged. Knows nothing of gradio.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from agents.events import Step
from agents.report import run_totals, step_rows
from ui.live import LiveView
from ui.render import divergence_note, escape_html, provenance_html, run_state_html, summary_html
from ui.sessions import Session
from ui.tables import latency_frame, position_frame, table_styler
from ui.transcript import divergence

NO_STEP = '<div class="prov-note">Pick a finished step.</div>'


@dataclass(frozen=True)
class RunView:
    """Everything the run-related panels show, computed once per redraw."""

    chat: list[dict[str, Any]]
    run_state: str
    summary: str
    live: str
    table: Any  # a pandas Styler (display strings with colours)
    latency: pd.DataFrame
    step_choices: list[str]


def step_label(step: Step) -> str:
    return f"Step {step.index}"


def overall_acceptance(steps: list[Step]) -> float | None:
    """Accepted / drafted tokens over every drafter run of the run."""
    stats = [s.result.stats.drafter for s in steps if s.result.stats.drafter is not None]
    drafted = sum(d.drafted_tokens for d in stats)
    return sum(d.accepted_tokens for d in stats) / drafted if drafted else None


def run_view(session: Session, now_s: float | None = None) -> RunView:
    now_s = time.monotonic() if now_s is None else now_s
    steps = session.transcript.ordered_steps()
    rows = step_rows(steps)
    return RunView(
        chat=session.transcript.messages,
        run_state=run_state_html(session.state, session.tone),
        summary=summary_html(run_totals(steps) if steps else None, overall_acceptance(steps)),
        live=session.live.html(now_s),
        table=table_styler(rows),
        latency=latency_frame(rows),
        step_choices=[step_label(s) for s in steps],
    )


def empty_view() -> RunView:
    """The panels before any run."""
    return RunView(chat=[], run_state=run_state_html("No run yet."), summary=summary_html(None),
                   live=LiveView().html(0.0), table=table_styler([]), latency=latency_frame([]), step_choices=[])


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
