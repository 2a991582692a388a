"""The one model a server serves: load failures reach the page, a switch never leaves visitors without one."""

from __future__ import annotations

import threading
import time

import pytest

from protocol import ModelError
from ui.models import ModelHolder
from ui.preflight import preflight


class FakeEngine:
    def __init__(self, name: str = "fake/target") -> None:
        self.model_id, self.drafter_id, self.closed = name, "fake/drafter", False

    def describe(self) -> dict:
        return {"engine": "fast", "decode": "eager", "fallback_reason": "no GPU"}

    def close(self) -> None:
        self.closed = True


def loader(script: dict):
    """A loader that returns FakeEngine(name) or raises what `script` says for that model."""
    def load(model, drafter, on_progress):
        on_progress(f"loading {model}", 0.5)
        outcome = script.get(model, model)
        if isinstance(outcome, Exception):
            raise outcome
        return FakeEngine(outcome)
    return load


def settle(holder: ModelHolder, timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while holder.busy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not holder.busy
    return holder.phase


def test_a_load_failure_is_shown_with_its_cause_and_the_next_load_works():
    holder = ModelHolder(loader({"31b": ModelError("google/gemma-4-31B-it is gated: accept the licence and set "
                                                   "HF_TOKEN.")}))
    assert holder.load("31b", None)
    assert settle(holder) == "failed" and "HF_TOKEN" in holder.status()
    assert holder.load("e2b", None)
    assert settle(holder) == "ready" and holder.engine.model_id == "e2b"
    assert "decode <code>eager</code>" in holder.status() and "no GPU" in holder.status()


def test_an_unexpected_load_crash_is_a_status_not_a_dead_server():
    holder = ModelHolder(loader({"e2b": RuntimeError("segment table corrupt")}))
    holder.load("e2b", None)
    assert settle(holder) == "failed" and "segment table corrupt" in holder.status()


def test_load_now_loads_in_the_calling_thread():
    seen = []
    holder = ModelHolder(lambda model, drafter, on_progress: seen.append(threading.current_thread()) or FakeEngine())
    assert holder.load_now("e2b", None) and holder.phase == "ready"
    assert seen == [threading.current_thread()]


def test_a_second_load_while_loading_is_refused():
    release = threading.Event()
    holder = ModelHolder(lambda model, drafter, on_progress: release.wait(5) and FakeEngine())
    assert holder.load("e2b", None)
    assert not holder.load("e4b", None) and not holder.switch("e4b", None)
    release.set()
    settle(holder)


def test_a_refused_preflight_leaves_the_old_model_serving():
    def refuse(model, drafter):
        raise ModelError("nope/nope was not found on the Hub (or is private): check the id.")
    holder = ModelHolder(loader({}), preflight=refuse)
    holder.load_now("e2b", None)
    first = holder.engine
    assert holder.switch("nope/nope", None)
    assert settle(holder) == "ready" and holder.engine is first and not first.closed
    assert "Switch to nope/nope refused" in holder.status() and "Still serving e2b" in holder.status()


def test_a_failed_switch_loads_the_old_model_back():
    holder = ModelHolder(loader({"e4b": ModelError("out of memory")}), preflight=lambda m, d: None)
    holder.load_now("e2b", None)
    first = holder.engine
    assert holder.switch("e4b", None)
    assert settle(holder) == "ready" and first.closed
    assert holder.engine is not first and holder.engine.model_id == "e2b" and holder.model == "e2b"
    assert "Switch to e4b failed: out of memory Back on e2b." in holder.status()


def test_a_good_switch_frees_the_old_engine_then_serves_the_new():
    holder = ModelHolder(loader({}), preflight=lambda m, d: None)
    holder.load_now("e2b", None)
    first = holder.engine
    holder.switch("e4b", None)
    assert settle(holder) == "ready" and first.closed and holder.engine.model_id == "e4b"
    assert "switch-note" not in holder.status()


def test_a_switch_waits_for_the_run_in_progress_and_runs_are_refused_while_it_loads():
    gate = threading.Event()
    holder = ModelHolder(lambda m, d, p: FakeEngine(m) if m == "e2b" else (gate.wait(5), FakeEngine(m))[1],
                         preflight=lambda m, d: None)
    holder.load_now("e2b", None)
    release = holder.lease()  # a run holds the engine
    holder.switch("e4b", None)
    time.sleep(0.2)
    assert holder.engine.model_id == "e2b" and not holder.engine.closed  # not freed under the run
    release()
    release()  # releasing twice is harmless
    deadline = time.monotonic() + 5
    while holder.phase != "loading" and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(ModelError, match="being switched"):
        holder.lease()
    gate.set()
    assert settle(holder) == "ready"
    holder.lease()()


def test_no_engine_means_a_clear_refusal():
    with pytest.raises(ModelError, match="not ready"):
        ModelHolder(loader({})).lease()


# ---- preflight: checks before the old model is freed ----

def test_preflight_refuses_an_unknown_preset_and_a_missing_local_path(tmp_path):
    with pytest.raises(ModelError, match="Unknown preset"):
        preflight("gpt5", None, fetch_config=lambda r, t: None)
    with pytest.raises(ModelError, match="does not exist"):
        preflight(str(tmp_path / "missing"), None, fetch_config=lambda r, t: None)


def test_preflight_passes_hub_errors_through_and_checks_the_drafter_too():
    asked = []

    def fetch(repo, token):
        asked.append((repo, token))
        if repo.endswith("assistant"):
            raise ModelError(f"{repo} is gated: accept its licence on the Hub and set HF_TOKEN on the server.")
    with pytest.raises(ModelError, match="gated"):
        preflight("e2b", None, token="t", fetch_config=fetch, capacity=lambda: (80e9, "GPU"))
    assert asked == [("google/gemma-4-E2B-it", "t"), ("google/gemma-4-E2B-it-assistant", "t")]


@pytest.mark.parametrize("model,capacity,fits", [
    ("e2b", (24e9, "GPU"), True),
    ("31b", (24e9, "GPU"), False),
    ("31b", (80e9, "GPU"), True),
    ("31b", None, True),  # size of memory unknown: the load itself will tell
])
def test_preflight_checks_that_a_preset_fits_memory(model, capacity, fits):
    check = lambda: preflight(model, None, fetch_config=lambda r, t: None, capacity=lambda: capacity)  # noqa: E731
    if fits:
        check()
    else:
        with pytest.raises(ModelError, match=r"needs about \d+ GB .* has 24 GB: pick a smaller model"):
            check()


def test_preflight_sizes_an_unknown_hub_model_from_its_safetensors_index():
    def weights(repo, token, bytes_per_param):
        return 40e9 if "drafter" not in repo else 1e9
    with pytest.raises(ModelError, match="needs about 47 GB"):
        preflight("org/big-model", "org/big-drafter", fetch_config=lambda r, t: None, weights_bytes=weights,
                  capacity=lambda: (40e9, "GPU"))


def test_preflight_skips_offline_stand_ins():
    preflight("tiny", None, fetch_config=lambda r, t: pytest.fail("a stand-in needs no Hub"),
              capacity=lambda: (1.0, "GPU"))
