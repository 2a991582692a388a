"""The agent on the real engine: the offline `tiny` stand-in (random weights, CPU), compare mode."""

from __future__ import annotations

import pytest

from agents import AgentConfig, run_agent
from agents.events import RunDone, RunPhase, TextDelta
from agents.report import run_totals, step_rows
from protocol import GenerationSettings


@pytest.fixture(scope="module")
def tiny_engine():
    inference = pytest.importorskip("inference")
    if not hasattr(inference, "load_engine"):
        pytest.skip("inference.load_engine is not there yet")
    engine = inference.load_engine("tiny")
    yield engine
    if hasattr(engine, "close"):
        engine.close()


def test_graph_runs_on_the_tiny_engine_and_records_real_compare_stats(tiny_engine, tmp_path):
    config = AgentConfig(mode="compare", max_steps=2,
                         settings=GenerationSettings(max_new_tokens=24, draft_tokens=4))
    events = list(run_agent(tiny_engine, "Write hello.py that prints hello, then run it.", config=config,
                            workspace=tmp_path / "ws"))
    done = events[-1]
    assert isinstance(done, RunDone) and done.reason in ("answered", "step_limit"), done.error
    assert 1 <= len(done.steps) <= 2
    assert any(isinstance(e, TextDelta) for e in events)
    assert [e.run for e in events if isinstance(e, RunPhase)][:2] in (["baseline", "drafter"], ["drafter", "baseline"])
    for step, row in zip(done.steps, step_rows(done.steps)):
        c = step.comparison
        assert c is not None and step.result is c.drafter
        assert not c.baseline.stats.used_drafter and c.drafter.stats.used_drafter
        assert 0 < c.drafter.stats.new_tokens <= 24 and c.baseline.stats.wall_s > 0
        drafter = c.drafter.stats.drafter
        assert drafter is not None and drafter.rounds >= 1
        assert len(c.drafter.provenance) == c.drafter.stats.new_tokens
        assert c.identical == (c.baseline.token_ids == c.drafter.token_ids)
        assert row["speedup"] == pytest.approx(c.baseline.stats.wall_s / c.drafter.stats.wall_s)
    assert run_totals(done.steps)["steps"] == len(done.steps)
