"""The GPU function run the way ZeroGPU runs it: a forked worker, arguments and every update pickled.

Nothing the worker changes reaches the server, so the page must be built from what the worker yields:
these tests check that streaming, Stop, provenance and the export all still work that way, through
app.gpu_function with tests.app.zerogpu standing in for the `spaces` package.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import pytest

import app
from agents import AgentConfig, RunDone
from agents.events import TextDelta
from agents.sandbox import make_workspace, remove_workspace
from protocol import GenerationSettings
from tests.app import zerogpu
from tests.app.scripted_server import SCENARIOS, Scenario, ScriptedEngine
from tests.agents.helpers import call
from agents.scripted import Turn
from ui.driver import drive
from ui.runner import SERVED, EngineInfo, RunJob
from ui.sessions import Session
from ui.settings import ServerSettings
from ui.view import provenance_view

COMPARE = AgentConfig(mode="compare", max_steps=3, settings=GenerationSettings(max_new_tokens=400, draft_tokens=4))


class CountingEngine(ScriptedEngine):
    """Counts its calls in the process that runs it and says which process that is."""

    def __init__(self) -> None:
        self.calls = 0

    def compare(self, *args, **kwargs):
        self.calls += 1
        return super().compare(*args, **kwargs)


@pytest.fixture
def zero_gpu(monkeypatch):
    """app.gpu_function as on a ZeroGPU Space, serving a scripted engine; yields (gpu_run, engine)."""
    monkeypatch.setitem(sys.modules, "spaces", zerogpu)
    engine = CountingEngine()
    monkeypatch.setattr(SERVED, "engine", lambda: engine)
    monkeypatch.setattr(SERVED, "sandbox", None)
    monkeypatch.setitem(SCENARIOS, "[paced]", Scenario((
        Turn(" ".join(f"w{i}" for i in range(60)) + call("write_file", path="a.txt", content="<b>a</b>\n")),
        Turn("Done, see a.txt."),
    ), piece_s=0.004))
    monkeypatch.setitem(SCENARIOS, "[endless]", Scenario((Turn(" ".join(f"w{i}" for i in range(5000))),),
                                                         piece_s=0.004))
    settings = dataclasses.replace(ServerSettings.from_env({}), zero_gpu=True)
    yield app.gpu_function(settings), engine


@pytest.fixture
def session():
    s = Session("test", make_workspace(), remove_workspace, make_workspace)
    yield s
    s.clean_up()


def test_a_run_streams_through_the_fork_with_provenance_and_an_export(zero_gpu, session):
    gpu_run, engine = zero_gpu
    job = session.begin("[paced] write a.txt", COMPARE)
    partial_texts = []
    for _ in drive(session, gpu_run(job), environment={"page": "test"}):
        if session.live.runs and session.done is None:
            partial_texts.append(session.live.runs[-1].chars)
    assert zerogpu.workers and zerogpu.workers[-1] != os.getpid()
    assert zerogpu.durations[-1] == SERVED.budget.seconds(COMPARE)  # the duration callable saw the job
    # Streaming: the page redrew many times while text was still arriving, not once at the end.
    assert len([c for c in partial_texts if 0 < c < 200]) >= 3
    # The server built everything from what crossed the boundary; the worker's own state stayed there.
    assert engine.calls == 0
    assert session.done is not None and session.done.reason == "answered" and len(session.done.steps) == 2
    assert session.engine_info["pid"] != os.getpid() and session.engine_info["engine"] == "scripted"
    html, positions = provenance_view(session, "Step 1")
    assert 'class="tok tok-draft"' in html and not positions.empty
    data = json.loads(open(session.export_path).read())
    assert data["end_reason"] == "answered" and data["environment"]["page"] == "test"
    assert data["environment"]["pid"] != os.getpid()
    assert any(data["steps"][0]["runs"]["drafter"]["provenance"])
    assert session.phase == "idle"


def test_stop_reaches_the_forked_worker_and_the_stopped_step_is_kept(zero_gpu, session):
    gpu_run, _ = zero_gpu
    job = session.begin("[endless] go on forever", COMPARE)
    stopped_at = None
    for _ in drive(session, gpu_run(job), environment={}):
        if stopped_at is None and session.live.runs and session.live.runs[-1].chars > 50:
            session.request_stop()
            stopped_at = time.monotonic()
    assert stopped_at is not None and time.monotonic() - stopped_at < 5
    assert session.done.reason == "stopped"
    step = session.done.steps[0]
    assert "stopped" in (step.comparison.baseline.stop_reason, step.comparison.drafter.stop_reason)
    assert json.loads(open(session.export_path).read())["end_reason"] == "stopped"
    assert not session.stop.is_set() and session.phase == "idle"


def test_cancelling_the_page_hands_the_run_off_without_blocking(zero_gpu, session):
    gpu_run, _ = zero_gpu
    job = session.begin("[endless] go on forever", COMPARE)
    driver = drive(session, gpu_run(job), environment={})
    while not (session.live.runs and session.live.runs[-1].chars > 20):
        next(driver)
    started = time.monotonic()
    driver.close()  # what Gradio does on its event loop when Stop cancels the event
    assert time.monotonic() - started < 0.5
    deadline = time.monotonic() + 10
    while session.phase != "idle" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert session.phase == "idle" and session.done is not None and session.done.reason == "stopped"
    assert session.export_path and json.loads(open(session.export_path).read())["end_reason"] == "stopped"


def test_arguments_and_updates_are_plain_picklable_data(zero_gpu, session):
    import pickle

    job = session.begin("[paced] again", COMPARE)
    assert pickle.loads(pickle.dumps(job)) == job
    updates = list(zero_gpu[0](job))
    assert isinstance(updates[0], EngineInfo) and isinstance(updates[-1], RunDone)
    assert any(isinstance(u, TextDelta) for u in updates)
    assert pickle.loads(pickle.dumps(updates[-1])) == updates[-1]


def test_the_duration_estimate_follows_the_settings():
    budget = ServerSettings.from_env({"PLAYGROUND_GPU_DURATION_S": "600"}).gpu
    small = AgentConfig(mode="baseline", max_steps=1, settings=GenerationSettings(max_new_tokens=64))
    compare = dataclasses.replace(small, mode="compare")
    big = AgentConfig(mode="compare", max_steps=24, settings=GenerationSettings(max_new_tokens=4096))
    assert budget.seconds(small) == 30  # the floor
    assert budget.seconds(compare) > budget.seconds(small) or budget.seconds(compare) == 30
    assert budget.seconds(AgentConfig(mode="compare", max_steps=4, settings=GenerationSettings(max_new_tokens=512))) \
        == int(15 + 4 * (2 * 512 / 20 + 10))
    assert budget.seconds(big) == 600  # the owner's cap


def test_without_zero_gpu_the_run_happens_in_process():
    assert app.gpu_function(ServerSettings.from_env({})) is app.run_job


def test_streamed_text_redraws_only_the_cheap_panels(zero_gpu, session):
    """The numbers (report, table, plots) are redrawn when a step finishes, never per streamed token: the
    page's own work shares the host with the run it measures."""
    gpu_run, _ = zero_gpu
    job = session.begin("[paced] write a.txt", COMPARE)
    redraws = list(drive(session, gpu_run(job), environment={}))
    assert redraws.count(True) <= 2 * len(session.done.steps) + 1 < redraws.count(False)


def test_on_zero_gpu_spaces_is_imported_before_torch(tmp_path):
    """ZeroGPU's `spaces` patches torch when imported, so app.py must import it before anything imports torch."""
    import subprocess

    probe = ("import builtins\n"
             "order = []\n"
             "real_import = builtins.__import__\n"
             "def spy(name, *a, **k):\n"
             "    if name in ('spaces', 'torch') and name not in order: order.append(name)\n"
             "    return real_import(name, *a, **k)\n"
             "builtins.__import__ = spy\n"
             "import app\n"
             "print(order)\n")
    (tmp_path / "spaces.py").write_text("from tests.app.zerogpu import *  # noqa\n")  # `import spaces` finds it
    env = {**os.environ, "SPACES_ZERO_GPU": "true", "PYTHONPATH": f"{tmp_path}:{app.__file__.rsplit('/', 1)[0]}"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                         cwd=app.__file__.rsplit("/", 1)[0], timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "['spaces', 'torch']"


def test_the_real_engine_runs_in_the_forked_worker(monkeypatch, session):
    """The tiny pair through the same path: a real Engine inherited by the fork, real results pickled back."""
    from inference import load_engine

    engine = load_engine("tiny")
    monkeypatch.setitem(sys.modules, "spaces", zerogpu)
    monkeypatch.setattr(SERVED, "engine", lambda: engine)
    monkeypatch.setattr(SERVED, "sandbox", None)
    gpu_run = app.gpu_function(dataclasses.replace(ServerSettings.from_env({}), zero_gpu=True))
    config = AgentConfig(mode="compare", max_steps=1, settings=GenerationSettings(max_new_tokens=12, draft_tokens=3))
    job = session.begin("Write fizzbuzz", config)
    redraws = list(drive(session, gpu_run(job), environment={}))
    assert len(redraws) > 2 and session.done is not None and len(session.done.steps) == 1
    step = session.done.steps[0]
    assert step.comparison.drafter.provenance is not None and step.comparison.baseline.stats.new_tokens > 0
    assert session.engine_info["device"] == "cpu" and json.loads(open(session.export_path).read())["steps"]
