"""agents.report: per-step rows, run totals, the JSON export and the CLI table, on scripted runs."""

from __future__ import annotations

import json

import pytest

from agents import AgentConfig, run_agent
from agents.report import (
    cumulative_rows, format_table, run_content_acceptance, run_to_dict, run_totals, step_rows,
)
from agents.scripted import ScriptedModel, Turn, split_pieces
from protocol import GenerationSettings
from tests.agents.helpers import call

SETTINGS = GenerationSettings(max_new_tokens=200, draft_tokens=4)


def finished(tmp_path, turns, mode="compare", **model_kw):
    config = AgentConfig(mode=mode, settings=SETTINGS)
    events = list(run_agent(ScriptedModel(turns, **model_kw), "task", config=config, workspace=tmp_path / "ws"))
    return events[-1], config


def test_compare_rows_come_from_the_engine_stats(tmp_path):
    done, _ = finished(tmp_path, [call("write_file", path="a.py", content="print(1)"), "Done, a.py written."])
    rows = step_rows(done.steps)
    assert [r["step"] for r in rows] == [1, 2] and [r["kind"] for r in rows] == ["tool_call", "final_answer"]
    for row, step in zip(rows, done.steps):
        c = step.comparison
        drafter = c.drafter.stats.drafter
        assert row["new_tokens"] == len(split_pieces(step.result.text)) == c.drafter.stats.new_tokens
        assert row["baseline_s"] == c.baseline.stats.wall_s and row["drafter_s"] == c.drafter.stats.wall_s
        assert row["speedup"] == pytest.approx(row["baseline_s"] / row["drafter_s"])
        assert row["acceptance"] == pytest.approx(drafter.accepted_tokens / drafter.drafted_tokens)
        assert row["mean_accepted_length"] == pytest.approx(drafter.accepted_tokens / drafter.rounds)
        assert row["identical"] is True
        # self-consistency of the double: provenance counts what the stats say was accepted
        assert sum(c.drafter.provenance) == drafter.accepted_tokens
        # the first token comes from the prefill; each round then ends with one target token (unless cut)
        provenance, rejected = c.drafter.provenance, c.drafter.draft_rejected
        assert provenance[0] is False and rejected[0] is False
        assert drafter.rounds == provenance.count(False) - 1 + (1 if provenance[-1] else 0)
        assert len(rejected) == len(provenance) and not any(a and r for a, r in zip(provenance, rejected))


def test_totals_add_up_and_speedup_is_the_ratio_of_sums(tmp_path):
    done, _ = finished(tmp_path, [call("list_files"), call("list_files"), "ok"])
    rows, totals = step_rows(done.steps), run_totals(done.steps)
    base, draft = sum(r["baseline_s"] for r in rows), sum(r["drafter_s"] for r in rows)
    assert totals["baseline_s"] == pytest.approx(base) and totals["drafter_s"] == pytest.approx(draft)
    assert totals["saved_s"] == pytest.approx(base - draft) and totals["saved_s"] > 0
    assert totals["speedup"] == pytest.approx(base / draft)
    assert totals["tool_s"] == pytest.approx(sum(s.tool_s for s in done.steps)) and totals["steps"] == 3


@pytest.mark.parametrize("mode, present, absent", [("drafter", "drafter_s", "baseline_s"),
                                                   ("baseline", "baseline_s", "drafter_s")])
def test_single_mode_leaves_the_other_side_empty(tmp_path, mode, present, absent):
    done, _ = finished(tmp_path, ["ok"], mode=mode)
    row, totals = step_rows(done.steps)[0], run_totals(done.steps)
    assert row[present] > 0 and row[absent] is None and row["speedup"] is None and row["identical"] is None
    assert (row["acceptance"] is None) == (mode == "baseline")
    assert totals[present] > 0 and totals[absent] is None and totals["saved_s"] is None and totals["speedup"] is None


def test_divergent_step_is_marked_not_identical(tmp_path):
    done, _ = finished(tmp_path, [Turn("same start then A", drafter_text="same start then B")])
    assert step_rows(done.steps)[0]["identical"] is False
    assert done.steps[0].comparison.first_divergence == len(split_pieces("same start then"))


def test_empty_run_has_empty_totals():
    assert run_totals([]) == {"baseline_s": None, "drafter_s": None, "compared_baseline_s": None,
                              "compared_drafter_s": None, "saved_s": None, "speedup": None, "excluded_steps": [],
                              "acceptance": None, "new_tokens": 0, "tool_s": 0, "steps": 0}
    assert step_rows([]) == [] and cumulative_rows([]) == [] and run_content_acceptance([]) is None


def test_export_is_json_and_carries_stats_calls_and_settings(tmp_path):
    done, config = finished(tmp_path, [call("write_file", path="a.py", content="x"), "done"])
    data = json.loads(json.dumps(run_to_dict(done, config, {"device": "cpu", "model_id": "scripted"})))
    assert data["end_reason"] == "answered" and data["final_answer"] == "done"
    assert data["settings"]["mode"] == "compare" and data["settings"]["draft_tokens"] == 4
    assert data["environment"]["device"] == "cpu"
    first = data["steps"][0]
    assert first["tool_calls"] == [{"id": "call_1_1_1", "name": "write_file", "arguments": {"path": "a.py", "content": "x"}}]
    assert first["tool_results"][0] == {"id": "call_1_1_1", "name": "write_file", "output": "Created a.py (1 line).",
                                        "is_error": False, "duration_s": first["tool_results"][0]["duration_s"],
                                        "exit_code": None, "timed_out": False, "killed": False}
    runs = first["runs"]
    assert runs["drafter"]["drafter"]["accepted_tokens"] == sum(runs["drafter"]["provenance"])
    assert runs["baseline"]["provenance"] is None and first["continued_with"] == "drafter"
    assert "comparison" not in first and "result" not in first  # each run is stored once
    assert first["stop_reason"] == "eos" and data["steps"][1]["kind"] == "final_answer"
    assert data["totals"]["steps"] == 2 and data["task"] == "task" and data["started_at"] == done.started_at
    assert data["system_prompt"] == done.system_prompt and data["tool_specs"] == list(done.tool_specs)
    assert data["app_version"] and data["messages"][0]["role"] == "system"
    assert set(first["content_acceptance"]) == {"thought", "prose", "code", "tool_call"}


def test_table_lists_every_step_and_the_totals(tmp_path):
    done, _ = finished(tmp_path, [call("list_files"), "ok"])
    table = format_table(done.steps)
    lines = table.splitlines()
    assert lines[0].split()[:4] == ["step", "kind", "stop", "new"]
    assert lines[1].split()[:3] == ["1", "tool_call", "eos"] and lines[2].split()[:3] == ["2", "final_answer", "eos"]
    assert "LLM time: baseline" in table and "saved" in table and "2 step(s)" in table
