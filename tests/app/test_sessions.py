"""Per-tab state on the server: queue places, Stop, New run, closed tabs, late updates, what panels show."""

from __future__ import annotations

import pickle

import pytest

from agents import AgentConfig, RunDone
from agents.events import ModelDone, StepStarted
from agents.sandbox import make_workspace, remove_workspace
from tests.app.factories import make_step
from ui.runner import EngineInfo
from ui.sessions import Sessions, end_state, queue_state
from ui.view import numbers_view, provenance_view, stream_view


@pytest.fixture
def sessions():
    all_ = Sessions(make_workspace, remove_workspace)
    yield all_
    for key in list(all_._by_key):
        all_.end(key)


def test_queue_places_count_the_runs_admitted_before_yours(sessions):
    a, b, c = (sessions.get(k) for k in "abc")
    assert sessions.admit(a, 8) == 0
    assert sessions.admit(b, 8) == 1
    a.phase = "running"
    assert sessions.admit(c, 8) == 2 and sessions.ahead_of(c) == 2
    a.finish()
    assert sessions.ahead_of(b) == 0 and sessions.ahead_of(c) == 1
    with pytest.raises(ValueError, match="already going"):
        sessions.admit(b, 8)


def test_a_full_queue_says_the_gpu_is_busy(sessions):
    sessions.admit(sessions.get("a"), 1)
    with pytest.raises(ValueError, match="busy: 1 runs"):
        sessions.admit(sessions.get("b"), 1)


@pytest.mark.parametrize("ahead,zero_gpu,needle", [
    (0, False, "Your run is next"), (1, False, "Queued: 1 run is ahead of you for the one model"),
    (3, True, "Queued: 3 runs are ahead of you for a ZeroGPU GPU"),
])
def test_a_queued_visitor_reads_where_they_wait(ahead, zero_gpu, needle):
    assert needle in queue_state(ahead, zero_gpu)


def test_two_sessions_get_separate_workspaces_removed_when_their_tabs_close(sessions):
    a, b = sessions.get("a"), sessions.get("b")
    assert a.workspace != b.workspace and a.workspace.is_dir() and b.workspace.is_dir()
    assert sessions.get("a") is a and sessions.peek("zzz") is None
    sessions.end("a")
    assert a.closed and not a.workspace.exists() and not a.private_dir.exists() and b.workspace.is_dir()


def test_a_closed_tab_with_a_running_run_stops_it_and_leaves_cleanup_to_the_run(sessions):
    session = sessions.get("c")
    session.phase = "running"
    sessions.end("c")
    assert session.stop.is_set() and session.closed and session.workspace.exists()
    session.clean_up()
    assert not session.workspace.exists()


def test_a_run_job_is_picklable_and_carries_the_conversation(sessions):
    session = sessions.get("a")
    job = session.begin("first task", AgentConfig(mode="baseline"))
    assert pickle.loads(pickle.dumps(job)) == job and job.history == ()
    assert job.workspace == str(session.workspace) and job.stop_path == str(session.stop.path)
    session.apply(RunDone("answered", "ok", (), messages=({"role": "user", "content": "first task"},)))
    session.finish()
    follow_up = session.begin("now add type hints", AgentConfig(mode="baseline"))
    assert follow_up.history == ({"role": "user", "content": "first task"},)
    assert follow_up.workspace == job.workspace
    session.apply(RunDone("error", "", (), error="refused"))  # a run with no conversation keeps the old one
    assert session.history == ({"role": "user", "content": "first task"},)


def test_new_run_forgets_the_conversation_and_empties_the_workspace(sessions):
    session = sessions.get("a")
    session.begin("task", AgentConfig())
    (session.workspace / "left.py").write_text("x")
    session.apply(make_done())
    session.finish()
    old = session.workspace
    session.reset()
    assert session.history == () and session.transcript.messages == [] and session.done is None
    assert session.workspace != old and not old.exists() and session.workspace.is_dir()


def test_updates_of_an_older_run_are_ignored(sessions):
    session = sessions.get("a")
    session.begin("task", AgentConfig())
    stale = session.run_id
    session.reset()
    session.apply(StepStarted(1), run_id=stale)
    session.fail("late failure", run_id=stale)
    assert session.transcript.messages == []


def test_stop_is_a_file_a_forked_worker_can_see(sessions):
    session = sessions.get("a")
    session.begin("task", AgentConfig())
    session.request_stop()
    assert session.stop.path.exists() and session.stop_requested and "Stopping" in session.state
    session.finish()
    assert not session.stop.path.exists() and session.phase == "idle" and not session.stop_requested


def make_done():
    return RunDone("answered", "Done.", (make_step(1), make_step(2, code=None, text="Done.")))


def test_the_panels_show_the_current_turn_and_provenance_is_cleared_by_a_new_one(sessions):
    session = sessions.get("a")
    session.begin("task", AgentConfig())
    session.apply(EngineInfo({"engine": "fast"}))
    done = make_done()
    for step in done.steps:
        session.apply(StepStarted(step.index))
        session.apply(ModelDone(step))
    session.apply(done)
    assert "Run ended: answered after 2 step(s)" in stream_view(session).run_state
    view = numbers_view(session.transcript.ordered_steps())
    assert view.step_choices == ["Step 1", "Step 2"]
    assert "2.00× faster" in view.summary and len(view.table.data) == 2 and len(view.latency) == 4
    assert view.cumulative["step"].tolist() == [1, 1, 2, 2] and "saved so far" in view.cumulative_note
    assert view.content_table["step"].tolist() == ["1", "2", "run"] and not view.content_plot.empty
    assert session.engine_info == {"engine": "fast"}
    html, _ = provenance_view(session, "Step 2")
    assert "tok-draft" in html
    session.finish()
    session.begin("follow-up", AgentConfig())
    assert provenance_view(session, "Step 2")[0].startswith('<div class="prov-note">That step belongs')
    assert numbers_view(session.transcript.ordered_steps()).step_choices == []
    assert provenance_view(session, None)[0].endswith("Pick a finished step.</div>")


def test_the_empty_page_has_nothing_to_show_yet():
    view = numbers_view([])
    assert view.step_choices == [] and view.latency.empty and view.table.data.empty and "–" in view.summary
    assert view.cumulative.empty and view.content_plot.empty and view.content_table.empty


def test_a_stop_that_lands_after_the_end_never_leaves_stopping_on_screen(sessions):
    session = sessions.get("a")
    session.begin("task", AgentConfig())
    session.apply(make_done())
    session.request_stop()  # Stop clicked as the run ended: its RunDone is in, its finish not yet
    session.finish()
    assert session.state.startswith("Run ended: answered") and session.phase == "idle"


def test_a_run_cancelled_before_it_began_says_so(sessions):
    session = sessions.get("a")
    sessions.admit(session, 8)
    session.begin("task", AgentConfig())
    session.request_stop()
    assert "Stopping" in session.state
    session.finish()
    assert session.state == "Run ended: stopped before it began." and session.tone == "warn"


def test_a_queued_place_is_either_started_or_given_up_never_both(sessions):
    session = sessions.get("a")
    sessions.admit(session, 8)
    assert session.give_up_queued() and session.phase == "idle" and "cancelled before it started" in session.state
    assert not session.claim_queued()  # the run event that still arrives does nothing
    sessions.admit(session, 8)
    assert session.claim_queued() and session.phase == "running"
    assert not session.give_up_queued()  # too late: Stop goes to the running run instead


@pytest.mark.parametrize("reason, says, tone", [
    ("answered", "answered after 2 step(s)", "good"),
    ("step_limit", "step limit reached after 2 step(s)", "warn"),
    ("repeating", "repeating itself at step 2", "warn"),
    ("stopped", "stopped after 2 step(s)", "warn"),
    ("error", "error: boom", "bad"),
])
def test_the_state_line_says_how_a_run_ended(reason, says, tone):
    done = RunDone(reason, "", (make_step(1), make_step(2)), error="boom" if reason == "error" else None)
    line, got = end_state(done)
    assert says in line and got == tone
