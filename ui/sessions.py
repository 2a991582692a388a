"""Per-browser-session state on the server: the conversation, its live view, its queue place and Stop.

Everything a run shows is built here, in the server process, from the updates the GPU function yields
(ui.runner): nothing depends on state the GPU function mutates, so the same code serves an in-process run
and a forked ZeroGPU worker. Knows nothing of gradio.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Literal

from agents import AgentConfig, RunDone
from agents.events import RunPhase, StepStarted, ToolStarted
from agents.report import run_to_dict
from ui.live import LiveView
from ui.runner import EngineInfo, RunJob, StopFlag, Update
from ui.transcript import Transcript

Phase = Literal["idle", "queued", "running"]


class Session:
    """One browser tab's conversation: task, follow-ups, workspace, the last run's numbers."""

    def __init__(self, key: str, workspace: Path, remove_workspace: Callable[[Path], None],
                 make_workspace: Callable[[], Path]) -> None:
        self.key = key
        self.workspace = workspace
        self._make_workspace, self._remove_workspace = make_workspace, remove_workspace
        self.private_dir = Path(tempfile.mkdtemp(prefix="playground-session-"))  # stop flag, exports
        self.stop = StopFlag(self.private_dir / "stop")
        self.phase: Phase = "idle"
        self.ticket = 0  # admission order while queued or running
        self.closed = False
        self.stop_requested = False
        self.fresh_workspace = False  # New run asked for an empty workspace while a run still used this one
        self._ran = False
        self.run_id = 0  # bumped by each run and each reset: late updates of an older run are ignored
        self._phase_lock = threading.Lock()  # queued -> running (the run starts) vs queued -> idle (Stop)
        self.reset()

    # ---- the conversation ----

    def reset(self) -> None:
        """New run / Clear: forget the conversation; the next run starts fresh in an empty workspace."""
        self.run_id += 1
        self.transcript = Transcript()
        self.live = LiveView()
        self.history: tuple[dict[str, Any], ...] = ()
        self.config: AgentConfig | None = None
        self.done: RunDone | None = None
        self.engine_info: dict[str, Any] | None = None
        self.export_path: str | None = None
        self.state, self.tone = "No run yet.", ""
        if self._ran:
            self.fresh_workspace = True
            if self.phase == "idle":
                self._renew_workspace()

    def _renew_workspace(self) -> None:
        self._remove_workspace(self.workspace)
        self.workspace, self.fresh_workspace, self._ran = self._make_workspace(), False, False

    def begin(self, task: str, config: AgentConfig) -> RunJob:
        """Start a run (the task, or a follow-up when the conversation has history) and its job."""
        if self.fresh_workspace:
            self._renew_workspace()
        self.stop.clear()
        self.stop_requested = False
        self.run_id += 1
        self.transcript.start_turn(task)
        self.live = LiveView(mode=config.mode)
        self.config, self.done, self.export_path, self._ran = config, None, None, True
        self.phase = "running"
        turn = "" if self.transcript.turn == 1 else f" (follow-up {self.transcript.turn - 1})"
        self.state, self.tone = f"Run started{turn}: waiting for the model…", "busy"
        return RunJob(task=task, config=config, workspace=str(self.workspace), stop_path=str(self.stop.path),
                      history=self.history)

    def claim_queued(self) -> bool:
        """The queued run may start now; False when Stop or New run gave its place up first."""
        with self._phase_lock:
            if self.phase != "queued":
                return False
            self.phase = "running"
            return True

    def give_up_queued(self) -> bool:
        """Stop before the queued run started; False when it has already started (or was never queued)."""
        with self._phase_lock:
            if self.phase != "queued":
                return False
            self.phase = "idle"
        self.state, self.tone = "Your queued run was cancelled before it started.", "warn"
        return True

    def request_stop(self) -> None:
        """Ask the running run to end at its next token round (the GPU function polls the flag)."""
        self.stop_requested = True
        self.stop.set()
        if self.done is None:  # a Stop that lands after the run's end must not say it is still stopping
            self.state, self.tone = "Stopping: the run ends at the next token round…", "busy"

    def apply(self, update: Update, now_s: float | None = None, *, run_id: int | None = None) -> None:
        """Fold one update from the GPU function into the transcript, live view and state line; an update
        of an older run (`run_id`) than the session's current one is ignored."""
        if run_id is not None and run_id != self.run_id:
            return
        now_s = time.monotonic() if now_s is None else now_s
        if isinstance(update, EngineInfo):
            self.engine_info = update.info
            return
        self.transcript.apply(update)
        self.live.apply(update, now_s)
        if self.stop_requested and not isinstance(update, RunDone):
            self.state, self.tone = "Stopping: the run ends at the next token round…", "busy"
        elif isinstance(update, StepStarted):
            self.state, self.tone = f"Step {update.index}: the model is generating…", "busy"
        elif isinstance(update, RunPhase):
            run = "target only" if update.run == "baseline" else "with the drafter"
            self.state, self.tone = f"Step {update.index}: the model is generating ({run})…", "busy"
        elif isinstance(update, ToolStarted):
            self.state, self.tone = f"Step {update.index}: running tool {update.call.name}…", "busy"
        elif isinstance(update, RunDone):
            self.done = update
            self.history = update.messages or self.history  # a run refused at the start keeps the conversation
            self.state, self.tone = end_state(update)

    def fail(self, message: str, *, run_id: int | None = None) -> None:
        """A run that ended without a RunDone (settings refused, GPU aborted, internal error)."""
        if run_id is not None and run_id != self.run_id:
            return
        self.transcript.add_error(message)
        self.state, self.tone = f"Run ended with an error: {message}", "bad"

    def finish(self) -> None:
        """The run is over (or never began): idle, and a state line that says how it ended, never 'Stopping'."""
        if self.tone == "busy":
            self.state, self.tone = end_state(self.done) if self.done is not None else (
                "Run ended: stopped before it began." if self.stop_requested else "Run ended.", "warn")
        self.phase = "idle"
        self.stop_requested = False
        self.stop.clear()

    def write_export(self, environment: dict[str, Any]) -> str | None:
        """The finished run as JSON in this session's private folder; its path, or None without a RunDone."""
        if self.done is None or self.config is None:
            return None
        data = run_to_dict(self.done, self.config, {**(self.engine_info or {}), **environment})
        path = self.private_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-t{self.transcript.turn}.json"
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str))
        self.export_path = str(path)
        return self.export_path

    def clean_up(self) -> None:
        self._remove_workspace(self.workspace)
        shutil.rmtree(self.private_dir, ignore_errors=True)


def end_state(done: RunDone) -> tuple[str, str]:
    steps = len(done.steps)
    if done.reason == "answered":
        return f"Run ended: answered after {steps} step(s). Type a follow-up to go on, or New run.", "good"
    if done.reason == "stopped":
        return f"Run ended: stopped after {steps} step(s).", "warn"
    if done.reason == "step_limit":
        return f"Run ended: step limit reached after {steps} step(s). Type a follow-up to go on.", "warn"
    if done.reason == "repeating":
        return f"Run ended: the model was repeating itself at step {steps}. Type a follow-up to go on.", "warn"
    return f"Run ended with an error: {done.error or 'unknown error'}", "bad"


class Sessions:
    """Session state keyed by Gradio's session hash; removed (with its workspace) when the tab closes."""

    def __init__(self, make_workspace: Callable[[], Path], remove_workspace: Callable[[Path], None]) -> None:
        self._lock = threading.Lock()
        self._by_key: dict[str, Session] = {}
        self._tickets = itertools.count(1)
        self._make, self._remove = make_workspace, remove_workspace

    def peek(self, key: str) -> Session | None:
        with self._lock:
            return self._by_key.get(key)

    def get(self, key: str) -> Session:
        with self._lock:
            session = self._by_key.get(key)
            if session is None:
                session = Session(key, self._make(), self._remove, self._make)
                self._by_key[key] = session
            return session

    def admit(self, session: Session, max_waiting: int) -> int:
        """Queue a run for `session`; the number of runs ahead of it. ValueError when it cannot queue."""
        with self._lock:
            if session.phase != "idle":
                raise ValueError("A run of yours is already going: press Stop or wait for it.")
            active = sum(s.phase != "idle" for s in self._by_key.values())
            if active >= max_waiting:
                raise ValueError(f"The GPU is busy: {active} runs are already running or waiting. "
                                 "Please try again in a minute.")
            session.phase, session.ticket = "queued", next(self._tickets)
            return self._ahead(session)

    def _ahead(self, session: Session) -> int:
        return sum(s.phase != "idle" and s.ticket < session.ticket for s in self._by_key.values() if s is not session)

    def ahead_of(self, session: Session) -> int:
        with self._lock:
            return self._ahead(session)

    def end(self, key: str) -> None:
        """The tab closed: stop its run; clean up now, or when that run returns."""
        with self._lock:
            session = self._by_key.pop(key, None)
        if session is None:
            return
        session.closed = True
        session.stop.set()
        if session.phase != "running":
            session.clean_up()


def queue_state(ahead: int, zero_gpu: bool) -> str:
    """What a queued visitor reads while waiting."""
    where = "a ZeroGPU GPU" if zero_gpu else "the one model on this server"
    if ahead <= 0:
        return f"Your run is next: it starts as soon as {where} is free."
    runs = "run is" if ahead == 1 else "runs are"
    return (f"Queued: {ahead} {runs} ahead of you for {where}. Your run starts when they finish; "
            "Stop gives up your place.")
