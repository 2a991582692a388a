"""The live view of the step that is generating: each run's text as it streams, with live counters.

Pure: folds the agent's events into per-run state and renders it as HTML. Knows nothing of gradio or
models. In compare mode both runs stay on screen (the first one's text is not wiped when the second
starts), so the audience sees which finishes first. Live numbers are the server's wall clock; the
measured ones (tokens, tok/s, time to first token) replace them when the step's results arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from agents.events import AgentEvent, ModelDone, RunDone, RunPhase, StepStarted, TextDelta
from protocol import GenerationResult
from ui.render import escape_html

RunName = Literal["baseline", "drafter"]
TAIL_CHARS = 6000  # text kept per run: the live box scrolls, the full text is in the chat and export
RUN_TITLES = {"baseline": "Target only", "drafter": "With MTP drafter"}


@dataclass
class LiveRun:
    name: RunName
    started_s: float
    text: str = ""
    chars: int = 0
    updates: int = 0
    finished_s: float | None = None
    result: GenerationResult | None = None  # the measured run, once the step's results arrive

    def counters(self, now_s: float) -> str:
        if self.result is not None:
            stats = self.result.stats
            return (f"{stats.new_tokens} tokens in {stats.wall_s:.2f} s · {stats.tokens_per_s:.1f} tok/s · "
                    f"first token {stats.prefill_s:.2f} s · ended: {self.result.stop_reason}")
        end_s = self.finished_s if self.finished_s is not None else now_s
        state = "finished" if self.finished_s is not None else "streaming"
        return f"{state} · {self.chars:,} characters · {end_s - self.started_s:.1f} s (live clock)"


@dataclass
class LiveView:
    """The step being generated now (or the last one), run by run."""

    mode: str = "compare"
    step: int | None = None
    runs: list[LiveRun] = field(default_factory=list)
    done: bool = False

    def apply(self, event: AgentEvent, now_s: float) -> None:
        if isinstance(event, StepStarted):
            self.step, self.runs, self.done = event.index, [], False
            if self.mode != "compare":  # one run, announced by no RunPhase
                self.runs.append(LiveRun("drafter" if self.mode == "drafter" else "baseline", now_s))
        elif isinstance(event, RunPhase):
            self._finish_current(now_s)
            self.runs.append(LiveRun(event.run, now_s))
        elif isinstance(event, TextDelta) and self.runs:
            run = self.runs[-1]
            run.text = (run.text + event.text)[-TAIL_CHARS:]
            run.chars += len(event.text)
            run.updates += 1
        elif isinstance(event, ModelDone):
            self._finish_current(now_s)
            step = event.step
            measured = {"baseline": step.comparison.baseline, "drafter": step.comparison.drafter} \
                if step.comparison is not None else \
                {("drafter" if step.result.stats.used_drafter else "baseline"): step.result}
            for run in self.runs:
                run.result = measured.get(run.name, run.result)
        elif isinstance(event, RunDone):
            self._finish_current(now_s)
            self.done = True

    def _finish_current(self, now_s: float) -> None:
        if self.runs and self.runs[-1].finished_s is None:
            self.runs[-1].finished_s = now_s

    def html(self, now_s: float) -> str:
        if self.step is None:
            return '<div class="live-empty">The step being generated streams here, each run in its own box.</div>'
        boxes = []
        for run in self.runs:
            boxes.append(
                f'<div class="live-run live-{run.name}" data-run="{run.name}">'
                f'<div class="live-head"><b>{RUN_TITLES[run.name]}</b>'
                f'<span class="live-count">{escape_html(run.counters(now_s))}</span></div>'
                # column-reverse keeps the box scrolled to its newest line without script
                f'<div class="live-scroll"><div class="live-text">{escape_html(run.text)}</div></div></div>')
        if self.mode == "compare" and len(self.runs) == 1:
            other = "drafter" if self.runs[0].name == "baseline" else "baseline"
            boxes.append(f'<div class="live-run live-{other} live-waiting" data-run="{other}">'
                         f'<div class="live-head"><b>{RUN_TITLES[other]}</b><span class="live-count">runs next, '
                         'on the identical prompt</span></div><div class="live-scroll"><div class="live-text">'
                         '</div></div></div>')
        state = "finished" if self.done or all(r.finished_s is not None for r in self.runs) else "generating"
        return (f'<div class="live" data-step="{self.step}"><div class="live-title">Step {self.step} · {state}</div>'
                f'<div class="live-runs">{"".join(boxes)}</div></div>')
