"""The live view: both runs of a compare step stay on screen with their own counters."""

from __future__ import annotations

import re

from agents.events import ModelDone, RunDone, RunPhase, StepStarted, TextDelta
from tests.app.factories import make_step
from ui.live import TAIL_CHARS, LiveView


def boxes(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-run="(\w+)">(.*?)</div></div></div>', html))


def test_compare_keeps_the_first_runs_text_when_the_second_starts():
    live = LiveView(mode="compare")
    live.apply(StepStarted(1), 0.0)
    live.apply(RunPhase(1, "baseline"), 0.0)
    live.apply(TextDelta(1, "print(<b>1</b>)"), 0.5)
    first = boxes(live.html(1.0))
    assert "print(&lt;b&gt;1&lt;/b&gt;)" in first["baseline"] and "streaming · 15 characters · 1.0 s" in first["baseline"]
    assert "runs next" in first["drafter"]
    live.apply(RunPhase(1, "drafter"), 2.0)
    live.apply(TextDelta(1, "print(1)"), 2.2)
    both = boxes(live.html(2.5))
    assert "print(&lt;b&gt;1&lt;/b&gt;)" in both["baseline"] and "finished · 15 characters · 2.0 s" in both["baseline"]
    assert "print(1)" in both["drafter"] and "streaming · 8 characters · 0.5 s" in both["drafter"]


def test_measured_numbers_replace_the_live_clock_when_the_step_is_done():
    step = make_step(1, baseline_s=1.0, drafter_s=0.5)
    live = LiveView(mode="compare")
    for event in (StepStarted(1), RunPhase(1, "baseline"), TextDelta(1, "x"), RunPhase(1, "drafter"),
                  TextDelta(1, "x"), ModelDone(step)):
        live.apply(event, 1.0)
    shown = boxes(live.html(9.0))
    assert "5 tokens in 1.00 s · 5.0 tok/s · first token 0.10 s · ended: eos" in shown["baseline"]
    assert "5 tokens in 0.50 s · 10.0 tok/s · first token 0.05 s · ended: eos" in shown["drafter"]
    assert "Step 1 · finished" in live.html(9.0)


def test_single_mode_shows_one_box_named_after_the_mode():
    live = LiveView(mode="drafter")
    live.apply(StepStarted(3), 0.0)
    live.apply(TextDelta(3, "hello"), 0.1)
    assert list(boxes(live.html(0.2))) == ["drafter"]


def test_a_new_step_starts_empty_and_the_text_kept_is_a_bounded_tail():
    live = LiveView(mode="baseline")
    live.apply(StepStarted(1), 0.0)
    live.apply(TextDelta(1, "a" * (TAIL_CHARS + 100)), 0.1)
    assert len(live.runs[0].text) == TAIL_CHARS and live.runs[0].chars == TAIL_CHARS + 100
    live.apply(StepStarted(2), 1.0)
    assert live.runs[0].text == "" and 'data-step="2"' in live.html(1.0)
    live.apply(RunDone("stopped", "", ()), 2.0)
    assert live.done and "finished · 0 characters · 1.0 s" in live.html(5.0)


def test_nothing_to_show_before_a_step():
    assert "streams here" in LiveView().html(0.0)
