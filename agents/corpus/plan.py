"""What one corpus task is: the user's words, the tool calls that solve it, and how its answer is judged.

A `Task` holds a plan (turns of native tool calls, the last one followed by a final answer written from the
real tool output) and the facts a correct final answer states. `PolicyModel` plays the plan as a
protocol.ChatModel, so the real agent graph, parser, tools and sandbox produce the transcript. Pure Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from agents.call_syntax import QUOTE, render_value
from protocol import GenerationResult, GenerationSettings, GenerationStats, Message, ToolSpec



@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    """One model turn of tool calls. A mistake turn is context for the fix after it, never a training target."""

    calls: tuple[Call, ...]
    is_mistake: bool = False


@dataclass(frozen=True)
class Task:
    family: str
    text: str  # what the user types
    key: str  # family and parameters: hold-out is decided on this, not on the wording
    turns: tuple[Turn, ...]
    answer: Callable[[str], str]  # all tool output of the run -> the final answer
    facts: tuple[str, ...]  # what a correct final answer states (matched as whole words, any case)
    output_facts: tuple[str, ...] = ()  # what the last run must print (checked while generating)
    files: dict[str, str] = field(default_factory=dict)  # files in the workspace before the run

    def is_correct(self, final_answer: str) -> bool:
        """Does `final_answer` state every fact?"""
        return all(mentions(final_answer, fact) for fact in self.facts)


NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?!\d)")  # 25, 0.0113, the 133 of "133x"; not the 2 of "v2"
NUMBER_WORDS = dict(zip("one two three four five six seven eight nine ten eleven twelve".split(), range(1, 13)))


def invented_numbers(answer: str, sources: Sequence[str]) -> list[str]:
    """The numbers (10 and up, or any decimal) that `answer` states and none of `sources` (the task, what the tools
    printed) holds, as digits or as a word ("three people" -> 3 rows), in order: an answer that gets its count
    right by luck still says "below 200" for a task about 100. Single digits are left out: prose uses them for
    structure ("index 3", "len(xs) - 1"), and a lucky one cannot be told from a derived one."""
    known = {n for source in sources for n in NUMBER.findall(source)}
    known |= {str(v) for source in sources for w, v in NUMBER_WORDS.items() if mentions(source, w)}
    return [n for n in NUMBER.findall(answer) if n not in known and len(n) > 1]


def mentions(text: str, fact: str) -> bool:
    """`fact` occurs in `text` as a whole word (numbers are not matched inside longer numbers)."""
    pattern = r"(?<![\w.])" + re.escape(fact.lower()) + r"(?![\w])"
    return re.search(pattern, text.lower()) is not None


def call_text(calls: Sequence[Call]) -> str:
    """The raw model text of a turn of calls, as the engine returns it (the stop token cut off)."""
    return "".join(f"<|tool_call>call:{c.name}{render_value(c.arguments)}<tool_call|>" for c in calls)


class PlanError(RuntimeError):
    """The real tools did not do what the plan expected: a corpus bug, never silently kept."""


class PolicyModel:
    """A protocol.ChatModel that plays one task's plan, turn by turn, reading the real tool output."""

    model_id = "corpus/policy"
    drafter_id = None

    def __init__(self, task: Task, available_tools: Sequence[str]) -> None:
        self.task = task
        self.available = set(available_tools)
        self.calls: list[tuple[list[Message], list[ToolSpec] | None]] = []  # every request, as received

    def generate(self, messages: Sequence[Message], tools: Sequence[ToolSpec] | None = None, *,
                 use_drafter: bool, settings: GenerationSettings = GenerationSettings(), on_text=None,
                 should_stop=None) -> GenerationResult:
        self.calls.append(([dict(m) for m in messages], [dict(t) for t in tools] if tools else None))
        index = sum(1 for m in messages if m["role"] == "assistant")
        if index < len(self.task.turns):
            turn = self.task.turns[index]
            missing = {c.name for c in turn.calls} - self.available
            if missing:
                raise PlanError(f"{self.task.key}: the plan calls {sorted(missing)}, which the toolbox lacks")
            text = call_text(turn.calls)
        else:
            text = self.task.answer(tool_output(messages))
        return _result(text)

    def compare(self, *args, **kwargs):
        raise PlanError("the corpus policy runs in baseline mode only")

    def describe(self) -> dict[str, Any]:
        return {"model_id": self.model_id}


def tool_output(messages: Sequence[Message]) -> str:
    """Every tool reply of the conversation, joined: what the final answer may be written from."""
    return "\n".join(str(m.get("content") or "") for m in messages if m["role"] == "tool")


def last_turn_output(messages: Sequence[Message]) -> str:
    """The tool replies after the last assistant message."""
    out: list[str] = []
    for m in reversed(messages):
        if m["role"] != "tool":
            break
        out.append(str(m.get("content") or ""))
    return "\n".join(reversed(out))


def _result(text: str) -> GenerationResult:
    stats = GenerationStats(used_drafter=False, prompt_tokens=0, new_tokens=1, prefill_s=0.0, decode_s=0.0,
                            wall_s=0.0, peak_mem_bytes=None)
    return GenerationResult(text=text, token_ids=(0,), token_texts=(text,), stop_reason="eos", stats=stats)
