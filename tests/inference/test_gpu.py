"""On a GPU (skipped without CUDA): bf16 loading, peak memory, and the drafter's effect on greedy output."""

from __future__ import annotations

import pytest
import torch

from inference import load_engine
from protocol import GenerationSettings

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_tiny_pair_runs_in_bf16_on_the_gpu_and_reports_peak_memory():
    engine = load_engine("tiny", device="cuda")
    assert engine.describe()["dtype"] == "bfloat16"
    comparison = engine.compare([{"role": "user", "content": "Write a sort function."}],
                                settings=GenerationSettings(max_new_tokens=32, draft_tokens=4))
    assert comparison.drafter.stats.peak_mem_bytes > 0
    # bf16 may diverge on near-ties; a divergence is recorded with its position, never hidden.
    assert comparison.identical or comparison.first_divergence is not None
    engine.close()


def test_costs_at_the_e2b_shape_force_acceptance_for_every_engine(tmp_path):
    """At E2B width the old full-acceptance switch forced nothing; every engine must now accept every draft."""
    import json

    from inference.bench import main

    out = tmp_path / "e2b.json"
    assert main(["--costs", "--shape", "e2b", "--k", "3", "--context", "256", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {"fast", "transformers"} <= set(report["costs"])
    assert report["costs"]["fast"]["syncs_per_round"] <= 1.0
