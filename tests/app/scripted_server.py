"""The app with the scripted model double in place of an engine, for browser tests.

`python -m tests.app.scripted_server [--zero-gpu] [app.py options]`. The double (agents.scripted) replays
real Gemma 4 output with self-consistent stats, so tool calls, divergence, stopped steps and slowdowns all
show. A marker in the task picks the scenario (see SCENARIOS). With --zero-gpu, `spaces` is the fork-and-
pickle stand-in of tests.app.zerogpu and SPACES_ZERO_GPU is set: the page then runs the ZeroGPU way.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any, Sequence

from agents.scripted import ScriptedModel, Turn
from tests.agents.helpers import call

HOSTILE = ('<img src=x onerror="window.__pwned=1"> <a href="https://example.com/">click me</a> <u>underlined</u> '
           '[md link](https://example.com/) ![md image](https://example.com/x.png) https://example.com/ $$x^2$$')


@dataclass(frozen=True)
class Scenario:
    """Turns by step within the current user turn; the last one repeats. `piece_s` paces the stream."""

    steps: tuple[Turn, ...]
    follow_up: Turn = Turn("Follow-up in the same conversation: I still have hello.py from before.")
    piece_s: float = 0.0
    accept_pattern: tuple[int, ...] = (3, 1, 4, 0, 2)


SCENARIOS: dict[str, Scenario] = {
    "[hostile]": Scenario((
        Turn(HOSTILE + call("write_file", path="page.html", content=HOSTILE + "\n")),
        Turn("Done: " + HOSTILE, drafter_text="<b>Done</b>: " + HOSTILE),
    )),
    "[slow]": Scenario((Turn(" ".join(f"word{i}" for i in range(3000))),), piece_s=0.02),
    "[live]": Scenario((
        Turn(" ".join(f"token{i}" for i in range(90)) + call("write_file", path="a.txt", content="a\n")),
        Turn("All done."),
    ), piece_s=0.01),
    "[slower]": Scenario((Turn("A final answer that the drafter never gets right."),), accept_pattern=(0,)),
    "": Scenario((
        Turn(call("write_file", path="hello.py", content="print('hi')\n")),
        Turn("Wrote hello.py; it prints hi."),
    )),
}


def _marker(text: str) -> str:
    return max((marker for marker in SCENARIOS if marker in text), key=len)


def _scenario(messages: Sequence[dict[str, Any]]) -> Scenario:
    """The scenario the latest task names, else the conversation's first one."""
    users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
    marker = _marker(users[-1]) if users else ""
    return SCENARIOS[marker or _marker(users[0] if users else "")]


def _turn(messages: Sequence[dict[str, Any]]) -> Turn:
    scenario = _scenario(messages)
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    step = sum(m.get("role") == "assistant" for m in messages[users[-1]:]) if users else 0
    latest = str(messages[users[-1]].get("content") or "") if users else ""
    if len(users) > 1 and not _marker(latest):  # a plain follow-up: the agent passed the history back
        return scenario.follow_up if step == 0 else Turn("Nothing more to do.")
    return scenario.steps[min(step, len(scenario.steps) - 1)]


class ScriptedEngine:
    """A protocol.ChatModel that answers per scenario, streaming at the scenario's pace."""

    model_id, drafter_id = "scripted/target", "scripted/drafter"

    def _model(self, messages) -> tuple[ScriptedModel, float]:
        scenario = _scenario(messages)
        return ScriptedModel([_turn], repeat_last=True, accept_pattern=scenario.accept_pattern), scenario.piece_s

    @staticmethod
    def _paced(on_text, piece_s: float):
        if on_text is None or not piece_s:
            return on_text
        return lambda text: (time.sleep(piece_s), on_text(text))

    def generate(self, messages, tools=None, *, use_drafter, settings=None, on_text=None, should_stop=None):
        model, piece_s = self._model(messages)
        kwargs = {} if settings is None else {"settings": settings}
        return model.generate(messages, tools, use_drafter=use_drafter, on_text=self._paced(on_text, piece_s),
                              should_stop=should_stop, **kwargs)

    def compare(self, messages, tools=None, *, settings=None, on_text=None, on_run=None, should_stop=None):
        model, piece_s = self._model(messages)
        kwargs = {} if settings is None else {"settings": settings}
        return model.compare(messages, tools, on_text=self._paced(on_text, piece_s), on_run=on_run,
                             should_stop=should_stop, **kwargs)

    def describe(self) -> dict[str, Any]:
        return {"target": self.model_id, "drafter": self.drafter_id, "engine": "scripted", "decode": "eager",
                "fallback_reason": "the scripted double has no GPU", "pid": os.getpid()}

    def close(self) -> None:
        pass


def main(argv: list[str]) -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1` prints where a stuck server is
    if "--zero-gpu" in argv:
        argv = [a for a in argv if a != "--zero-gpu"]
        from tests.app import zerogpu

        zerogpu.install()
        os.environ["SPACES_ZERO_GPU"] = "true"
    import app

    app.load_engine = lambda *args, **kwargs: ScriptedEngine()
    app.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
