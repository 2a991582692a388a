"""The benchmark CLI prints its table and JSON; the implied-speedup arithmetic is right."""

from __future__ import annotations

import json

import pytest

from inference.bench import RoundCosts, main


def test_experiment_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--model", "tiny", "--max-new-tokens", "12", "--runs", "2", "--k", "3", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    for label in ("tokens/s", "speedup", "acceptance", "mean accepted / round", "identical output", "peak memory"):
        assert label in table
    report = json.loads(out.read_text())
    assert report["settings"]["draft_tokens"] == 3 and len(report["per_run"]) == 2
    assert {r["first_run"] for r in report["per_run"]} == {"baseline", "drafter"}
    assert report["summary"]["identical_runs"] == 2


def test_costs_at_the_tiny_shape_are_measured(tmp_path, capsys):
    out = tmp_path / "costs.json"
    assert main(["--costs", "--shape", "tiny", "--k", "3", "--context", "64", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    costs = report["costs"]
    assert costs["target_1_s"] > 0 and costs["target_k1_s"] > 0 and costs["drafter_step_s"] > 0
    assert set(report["implied_speedup"]) == {"0.8", "0.9"}
    assert "implied speedup at acceptance 0.9" in capsys.readouterr().out


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
