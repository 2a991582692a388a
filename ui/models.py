"""The one model a server serves, and how it is loaded and switched without leaving visitors without one.

A first load runs in a background thread with progress (the page works meanwhile), or in the calling
thread for ZeroGPU, whose CUDA emulation exists on the main thread only. A switch (an owner setting) checks
the new model first (preflight: reachable, fits memory) while the old one keeps serving; only then frees
the old one and loads the new; if that load fails, it loads the old one back. Knows nothing of gradio.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from protocol import ModelError
from ui.render import escape_html, status_html
from ui.runner import describe_engine

log = logging.getLogger("playground")

Progress = Callable[[str, "float | None"], None]
Loader = Callable[[str, "str | None", Progress], Any]  # (model, drafter, on_progress) -> engine
Preflight = Callable[[str, "str | None"], None]  # raises ModelError (cause and fix) when a switch must not go on


def _cause(e: Exception) -> str:
    return str(e) if isinstance(e, ModelError) else f"{type(e).__name__}: {e}"


class ModelHolder:
    """One engine for the server, its load state, and the lock a run holds while it uses the engine."""

    def __init__(self, loader: Loader, *, preflight: Preflight | None = None,
                 stand_in: Callable[[str], str | None] = lambda model: None) -> None:
        self._loader, self._preflight, self._stand_in = loader, preflight, stand_in
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()  # held by a run; a switch takes it before freeing the engine
        self.engine: Any = None
        self.busy = False  # a load or switch is under way
        self.phase, self.model, self.message, self.fraction = "idle", "", "No model loaded yet.", None
        self.note = ""  # what the last switch attempt did, shown under the status
        self.drafter: str | None = None
        self.info: dict[str, Any] | None = None  # Engine.describe() of the engine serving now

    # ---- loading ----

    def _progress(self, message: str, fraction: float | None) -> None:
        self.message, self.fraction = message, fraction

    def _claim(self) -> bool:
        with self._lock:
            if self.busy:
                return False
            self.busy = True
            return True

    def _try_load(self, model: str, drafter: str | None) -> Exception | None:
        self.phase, self.model, self.message, self.fraction = "loading", model, "Starting…", 0.0
        try:
            engine = self._loader(model, drafter, self._progress)
        except Exception as e:  # noqa: BLE001 - a load failure must reach the page, not kill the server
            if not isinstance(e, ModelError):
                log.exception("model load failed")
            self.phase, self.message, self.fraction = "failed", _cause(e), None
            return e
        drafter_note = f"drafter {engine.drafter_id}" if getattr(engine, "drafter_id", None) else "no drafter"
        info = describe_engine(engine)
        self.info = None if "describe_error" in info else info
        self.engine, self.phase, self.fraction, self.drafter = engine, "ready", 1.0, drafter
        self.message = f"Target {engine.model_id}, {drafter_note}."
        log.info("model ready: %s (%s)", engine.model_id, drafter_note)
        return None

    def load_now(self, model: str, drafter: str | None) -> bool:
        """Load in the calling thread (ZeroGPU start-up: the main thread). True when it loaded."""
        if not self._claim():
            return False
        try:
            return self._try_load(model, drafter) is None
        finally:
            self.busy = False

    def load(self, model: str, drafter: str | None) -> bool:
        """First load, in the background; False when a load is already under way."""
        if not self._claim():
            return False
        threading.Thread(target=self._load_in_background, args=(model, drafter), daemon=True,
                         name="model-load").start()
        return True

    def _load_in_background(self, model: str, drafter: str | None) -> None:
        try:
            self._try_load(model, drafter)
        finally:
            self.busy = False

    # ---- switching ----

    def switch(self, model: str, drafter: str | None) -> bool:
        """Switch to another model in the background; False when a load or switch is already under way."""
        if not self._claim():
            return False
        threading.Thread(target=self._switch, args=(model, drafter), daemon=True, name="model-switch").start()
        return True

    def _switch(self, model: str, drafter: str | None) -> None:
        old_model, old_drafter = self.model, self.drafter
        try:
            if self.engine is not None and self._preflight is not None:
                self.note = f"Checking {model} before switching; {old_model} keeps serving meanwhile…"
                try:
                    self._preflight(model, drafter)
                except Exception as e:  # noqa: BLE001 - a refused switch leaves the old model serving
                    self.note = f"Switch to {model} refused: {_cause(e)} Still serving {old_model}."
                    return
            with self._run_lock:  # waits for a run in progress; new runs are refused meanwhile
                old, self.engine = self.engine, None
                if old is not None:
                    self.phase, self.message, self.fraction = "loading", "Freeing the previous model…", None
                    old.close()
                failure = self._try_load(model, drafter)
                if failure is None:
                    self.note = ""
                    return
                if old is None:
                    self.note = ""
                    return
                cause = _cause(failure)
                self.note = f"Switch to {model} failed: {cause} Loading {old_model} back…"
                if self._try_load(old_model, old_drafter) is None:
                    self.note = f"Switch to {model} failed: {cause} Back on {old_model}."
                else:
                    self.note = f"Switch to {model} failed: {cause} Loading {old_model} back failed too."
        finally:
            self.busy = False

    # ---- serving ----

    def lease(self) -> Callable[[], None]:
        """Hold the engine for one run so a switch cannot free it mid-run; returns the release callable
        (call it once, from any thread). ModelError when no engine is ready."""
        if not self._run_lock.acquire(blocking=False):
            raise ModelError(f"The model is being switched ({self.message}); start your run when it is ready.")
        if self.engine is None:
            self._run_lock.release()
            raise ModelError(f"The model is not ready ({self.phase}): {self.message}")
        released = threading.Event()

        def release() -> None:
            if not released.is_set():
                released.set()
                self._run_lock.release()
        return release

    def status(self) -> str:
        html = status_html(self.phase, self.model, self.message, self.fraction,
                           stand_in=self._stand_in(self.model), info=self.info if self.phase == "ready" else None)
        if self.note:
            html += f'<div class="banner banner-warn switch-note">{escape_html(self.note)}</div>'
        return html
