"""The benchmark CLI prints both engines side by side and its JSON; the implied-speedup arithmetic is right."""

from __future__ import annotations

import json

import pytest

from inference.bench import RoundCosts, main


def test_experiment_runs_both_engines_side_by_side(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--model", "tiny", "--max-new-tokens", "12", "--runs", "2", "--k", "3", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    for label in ("tok/s base", "tok/s draft", "speedup", "accept", "identical", "verify", "glue", "syncs/pass",
                  "peak mem", "fast vs transformers"):
        assert label in table
    report = json.loads(out.read_text())
    assert report["settings"]["draft_tokens"] == 3 and set(report["engines"]) == {"fast", "transformers"}
    for name, entry in report["engines"].items():
        assert len(entry["per_run"]) == 2 and entry["describe"]["engine"] == name
        assert {r["first_run"] for r in entry["per_run"]} == {"baseline", "drafter"}
        assert entry["summary"]["identical_runs"] == 2
        assert entry["summary"]["verify_s_per_round"] > 0 and entry["summary"]["draft_s_per_round"] > 0
    fast, ref = report["engines"]["fast"]["summary"], report["engines"]["transformers"]["summary"]
    assert fast["drafter_syncs_per_pass"] == 1.0 and fast["baseline_syncs_per_pass"] == 1.0
    assert ref["drafter_syncs_per_pass"] > 2  # Transformers' loop reads the device several times a round
    assert report["fast_vs_transformers"]["identical_runs"] == 2


def test_one_engine_only(tmp_path):
    out = tmp_path / "bench.json"
    assert main(["--model", "tiny", "--max-new-tokens", "6", "--runs", "1", "--k", "2", "--engine", "transformers",
                 "--dtype", "fp32", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["engines"]) == {"transformers"} and "fast_vs_transformers" not in report
    assert report["environment"]["dtype"] == "float32"


def test_costs_at_the_tiny_shape_force_acceptance_on_both_engines(tmp_path, capsys):
    out = tmp_path / "costs.json"
    assert main(["--costs", "--shape", "tiny", "--k", "3", "--context", "48", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["costs"]) == {"fast", "transformers"}
    for costs in report["costs"].values():
        assert costs["target_1_s"] > 0 and costs["target_k1_s"] > 0 and costs["drafter_step_s"] > 0
    assert report["costs"]["fast"]["syncs_per_round"] == 1.0
    assert report["costs"]["transformers"]["syncs_per_round"] > 2
    assert set(report["implied_speedup"]["fast"]) == {"0.8", "0.9"}
    assert "implied speedup at a=0.9" in capsys.readouterr().out


@pytest.mark.parametrize("acceptance, expected", [
    (0.0, 1 * 10 / (10 + 4 * 1 + 2)),  # one token per round
    (0.5, (1 - 0.5 ** 5) / 0.5 * 10 / 16),
    (1.0, 5 * 10 / 16),  # k+1 tokens per round
])
def test_implied_speedup_follows_expected_tokens_per_round(acceptance, expected):
    costs = RoundCosts(target_1_s=10, target_k1_s=10, drafter_step_s=1, glue_s=2, k=4)
    assert costs.speedup_at(acceptance) == pytest.approx(expected)


def test_unknown_model_exits_nonzero_with_a_message(capsys):
    assert main(["--model", "e3b", "--max-new-tokens", "4", "--runs", "1"]) == 2
    assert "Unknown preset" in capsys.readouterr().err
