"""Drive one run on the server: fold the GPU function's updates into the session, say when to redraw.

Gradio cancels a run's event (Stop, New run, Clear, a closed tab) by closing the page's generator on its
event loop, so closing must not block: the run is asked to stop and handed to a background thread, which
folds in the rest of its updates (the stopped step, the RunDone) and finishes the run there: the steps,
the totals and the export survive a cancellation. Knows nothing of gradio.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterator

from agents.events import ModelDone, RunDone, StepDone, TextDelta
from protocol import ModelError
from ui.runner import Update
from ui.sessions import Session

log = logging.getLogger("playground")
REDRAW_INTERVAL_S = 0.125  # at most ~8 redraws a second while text streams
DRAIN_TIMEOUT_S = 120.0  # a stopped run ends within a token round; this bounds a run that ignores Stop


def _finish(session: Session, updates: Iterator[Update], environment: dict[str, Any],
            release: Callable[[], None]) -> None:
    try:
        close = getattr(updates, "close", None)
        if close is not None:
            close()
    except Exception:  # noqa: BLE001 - closing a finished run must not hide its result
        log.exception("closing the run's updates failed")
    finally:
        release()
        if session.done is None and session.stop_requested:
            session.fail("The run was stopped before it reported its steps.")
        session.write_export(environment)
        session.finish()
        if session.closed:
            session.clean_up()


def _drain(session: Session, updates: Iterator[Update], run_id: int, environment: dict[str, Any],
           release: Callable[[], None], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    try:
        for update in updates:
            session.apply(update, run_id=run_id)
            if time.monotonic() > deadline:
                log.warning("a stopped run kept going for %.0f s; giving up on its remaining updates", timeout_s)
                break
    except Exception as e:  # noqa: BLE001 - shown in the chat
        log.exception("a stopped run failed")
        session.fail(f"{type(e).__name__}: {e}", run_id=run_id)
    finally:
        _finish(session, updates, environment, release)


def drive(session: Session, updates: Iterator[Update], *, environment: dict[str, Any],
          release: Callable[[], None] = lambda: None, redraw_interval_s: float = REDRAW_INTERVAL_S,
          drain_timeout_s: float = DRAIN_TIMEOUT_S) -> Iterator[bool]:
    """Apply `updates` to `session`, yielding whenever the page should redraw: True when a step finished since
    the last redraw (the numbers changed), False for streamed text only. Finishes the run at the end (export
    written, phase idle, `release` called). Closed early, it stops the run and finishes it in the background
    without blocking the caller."""
    run_id = session.run_id
    last_draw_s, numbers_changed = 0.0, False
    try:
        for update in updates:
            session.apply(update, run_id=run_id)
            numbers_changed = numbers_changed or isinstance(update, (ModelDone, StepDone, RunDone))
            now = time.monotonic()
            if isinstance(update, TextDelta) and now - last_draw_s < redraw_interval_s:
                continue
            last_draw_s = now
            yield numbers_changed
            numbers_changed = False
    except GeneratorExit:
        session.request_stop()
        threading.Thread(target=_drain, args=(session, updates, run_id, environment, release, drain_timeout_s),
                         daemon=True, name="run-drain").start()
        raise
    except ModelError as e:
        session.fail(str(e), run_id=run_id)
    except Exception as e:  # noqa: BLE001 - e.g. ZeroGPU's "GPU task aborted": shown, never a traceback
        log.exception("run failed")
        session.fail(f"{type(e).__name__}: {e}", run_id=run_id)
    _finish(session, updates, environment, release)
