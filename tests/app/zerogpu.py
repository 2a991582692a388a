"""A stand-in for Hugging Face's `spaces` package that runs @GPU functions the way ZeroGPU does.

ZeroGPU runs each @spaces.GPU function in a forked worker: arguments are pickled into it, every value a
generator yields is pickled back, and nothing the worker changes reaches the server. When the server side
closes the generator, the real wrapper waits for the worker's task to end (it is not killed), so a run
must learn of Stop by other means. This module does the same with multiprocessing's fork context.
Install it with `install()` before importing app, or decorate directly.
"""

from __future__ import annotations

import faulthandler
import functools
import multiprocessing
import os
import pickle
import signal
import sys
import types
from typing import Any, Callable, Iterator

_fork = multiprocessing.get_context("fork")
durations: list[float] = []  # what each call asked for (the duration callable's answers)
workers: list[int] = []  # pids of the forked workers, for tests that check a call really forked


def _work(task: Callable[..., Iterator[Any]], payload: bytes, conn) -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1` prints where a stuck worker is
    try:
        args, kwargs = pickle.loads(payload)
        for value in task(*args, **kwargs):
            conn.send_bytes(pickle.dumps(("value", value)))
        conn.send_bytes(pickle.dumps(("end", os.getpid())))
    except BaseException as e:  # noqa: BLE001 - every failure goes back to the server as ZeroGPU does
        conn.send_bytes(pickle.dumps(("error", RuntimeError(f"{type(e).__name__}: {e}"))))
    finally:
        conn.close()
        os._exit(0)  # like a worker process: no atexit handlers, no inherited cleanup


def GPU(task: Callable | None = None, *, duration: float | Callable[..., float] = 60) -> Callable:  # noqa: N802
    """spaces.GPU for generator functions: @GPU, @GPU(duration=...), duration a number or a callable that
    gets the function's own arguments."""

    def wrap(fn: Callable[..., Iterator[Any]]) -> Callable[..., Iterator[Any]]:
        @functools.wraps(fn)
        def handler(*args: Any, **kwargs: Any) -> Iterator[Any]:
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            if not isinstance(seconds, (int, float)) or seconds <= 0:
                raise TypeError(f"duration must give positive seconds, got {seconds!r}")
            durations.append(seconds)
            payload = pickle.dumps((args, kwargs))  # unpicklable arguments fail here, as on ZeroGPU
            receive, send = _fork.Pipe(duplex=False)
            worker = _fork.Process(target=_work, args=(fn, payload, send), daemon=True)
            worker.start()
            send.close()
            workers.append(worker.pid)
            finished = False
            try:
                while True:
                    try:
                        kind, value = pickle.loads(receive.recv_bytes())
                    except EOFError:
                        finished = True
                        raise RuntimeError("GPU task aborted") from None
                    if kind == "value":
                        yield value
                        continue
                    finished = True
                    if kind == "error":
                        raise value
                    return
            finally:
                # Like the real wrapper, a closed generator waits for the worker's task to end (reading on).
                while not finished and receive.poll(120):
                    try:
                        finished = pickle.loads(receive.recv_bytes())[0] != "value"
                    except EOFError:
                        finished = True
                worker.join(timeout=10)
                if worker.is_alive():
                    worker.kill()
                receive.close()
        return handler

    return wrap(task) if task is not None else wrap


def install() -> types.ModuleType:
    """Make `import spaces` find this module; returns it."""
    module = sys.modules[__name__]
    sys.modules["spaces"] = module
    return module
