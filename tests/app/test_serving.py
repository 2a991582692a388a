"""Serving faults handled by app.py: load failures, per-session workspaces, closed tabs, a bounded queue."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

import app
from protocol import ModelError


class FakeEngine:
    model_id, drafter_id = "fake/target", "fake/drafter"

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def wait_phase(holder: app.ModelHolder, timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while holder.phase == "loading" and time.monotonic() < deadline:
        time.sleep(0.02)
    return holder.phase


def test_a_load_failure_is_shown_and_the_next_load_works(monkeypatch):
    def failing(model, drafter, **kw):
        raise ModelError("google/gemma-4-31B-it is gated: accept the licence and set HF_TOKEN.")
    monkeypatch.setattr(app, "load_engine", failing)
    holder = app.ModelHolder(token="hf_secret_canary")
    assert holder.load("31b", None)
    assert wait_phase(holder) == "failed"
    assert "HF_TOKEN" in holder.status() and "hf_secret_canary" not in holder.status()
    engine = FakeEngine()
    monkeypatch.setattr(app, "load_engine", lambda model, drafter, **kw: engine)
    assert holder.load("e2b", None)
    assert wait_phase(holder) == "ready" and holder.engine is engine


def test_an_unexpected_load_crash_is_a_status_not_a_dead_server(monkeypatch):
    def crashing(model, drafter, **kw):
        raise RuntimeError("segment table corrupt")
    monkeypatch.setattr(app, "load_engine", crashing)
    holder = app.ModelHolder(token=None)
    holder.load("e2b", None)
    assert wait_phase(holder) == "failed" and "segment table corrupt" in holder.status()


def test_switching_models_frees_the_old_engine_first(monkeypatch):
    engines = [FakeEngine(), FakeEngine()]
    monkeypatch.setattr(app, "load_engine", lambda model, drafter, **kw: engines.pop(0))
    holder = app.ModelHolder(token=None)
    holder.load("e2b", None)
    wait_phase(holder)
    first = holder.engine
    holder.load("e4b", None)
    assert wait_phase(holder) == "ready" and first.closed and holder.engine is not first


def test_a_second_load_while_loading_is_refused(monkeypatch):
    monkeypatch.setattr(app, "load_engine", lambda model, drafter, **kw: time.sleep(0.5) or FakeEngine())
    holder = app.ModelHolder(token=None)
    assert holder.load("e2b", None)
    assert not holder.load("e4b", None)
    wait_phase(holder)


def request(session_hash: str):
    return SimpleNamespace(session_hash=session_hash)


def test_two_sessions_get_separate_workspaces_removed_when_their_tabs_close():
    sessions = app.Sessions()
    a, b = sessions.get(request("a")), sessions.get(request("b"))
    assert a.workspace != b.workspace and a.workspace.is_dir() and b.workspace.is_dir()
    assert sessions.get(request("a")) is a
    sessions.end(request("a"))
    assert a.stop.is_set() and not a.workspace.exists() and b.workspace.is_dir()
    sessions.end(request("b"))
    assert not b.workspace.exists()


def test_a_closed_tab_with_a_running_run_stops_it_and_leaves_cleanup_to_the_run():
    sessions = app.Sessions()
    session = sessions.get(request("c"))
    session.running = True
    sessions.end(request("c"))
    assert session.stop.is_set() and session.closed and session.workspace.exists()
    session.clean_up()
    assert not session.workspace.exists()


def test_waiting_count_bounds_the_queue():
    sessions = app.Sessions()
    for name in "xyz":
        sessions.get(request(name)).waiting = True
    assert sessions.waiting_count() == 3
    for name in "xyz":
        sessions.end(request(name))
    assert "busy" in app.BUSY_MESSAGE.format(n=3).lower()


@pytest.mark.parametrize("argv, expected", [
    (["--model", "e2b", "--port", "9000"], ("e2b", 9000, "127.0.0.1")),
    (["--host", "0.0.0.0"], (None, 7860, "0.0.0.0")),
])
def test_command_line_options(monkeypatch, argv, expected):
    for name in ("PLAYGROUND_MODEL", "GRADIO_SERVER_NAME", "HOST", "GRADIO_SERVER_PORT", "PORT"):
        monkeypatch.delenv(name, raising=False)
    args = app.parse_args(argv)
    assert (args.model, args.port, args.host) == expected


def test_environment_equivalents_for_spaces(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MODEL", "31b")
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    args = app.parse_args([])
    assert (args.model, args.host, args.port) == ("31b", "0.0.0.0", 7861)
