"""Helpers the task families share: turns that write and run files, answers checked against the real output,
and deliberate mistakes (a typo, a lost parenthesis) whose real error the next turn fixes.
"""

from __future__ import annotations

import keyword
import random
import re
import textwrap
from dataclasses import dataclass
from typing import Callable, Sequence

from agents.corpus.plan import Call, PlanError, Task, Turn, mentions


@dataclass(frozen=True)
class Ctx:
    """What a family builder gets: its random source and the names of the tools the toolbox declares."""

    rng: random.Random
    tools: frozenset[str]
    mistake_rate: float = 0.0  # chance that the first attempt is a deliberate mistake

    def pick(self, seq: Sequence):
        return self.rng.choice(list(seq))


def code(text: str) -> str:
    """Dedented source with one trailing newline."""
    return textwrap.dedent(text).strip("\n") + "\n"


def write(path: str, content: str) -> Call:
    return Call("write_file", {"path": path, "content": content})


def run(path: str) -> Call:
    return Call("run_python", {"path": path})


def run_tests(path: str | None = None) -> Call:
    return Call("run_tests", {} if path is None else {"path": path})


def answer_with(text: str, must_print: Sequence[str] = ()) -> Callable[[str], str]:
    """A fixed final answer, given only once the real output shows `must_print`."""

    def answer(output: str) -> str:
        missing = [s for s in must_print if s not in output]
        if missing:
            raise PlanError(f"the run did not print {missing!r}; output was:\n{output[-800:]}")
        return text

    return answer


def task(ctx: Ctx, family: str, text: str, key: str, calls: Sequence[Call], answer: Callable[[str], str],
         facts: Sequence[str], output_facts: Sequence[str] = (), files: dict[str, str] | None = None,
         main: str | None = None) -> Task:
    """A task solved by one turn of `calls`; with probability ctx.mistake_rate the file `main` is first
    written with a mistake, run, and then fixed."""
    if main is not None:
        calls = [write(main, quoting(text, c.arguments["content"])) if is_write_of(c, main) else c for c in calls]
    turns: list[Turn] = [Turn(tuple(calls))]
    if main is not None and ctx.rng.random() < ctx.mistake_rate:
        source = next(c.arguments["content"] for c in calls if is_write_of(c, main))
        broken = break_code(source, ctx.rng)
        if broken is not None:
            bad_source, bad_line, good_line = broken
            bad_calls = tuple(write(main, bad_source) if is_write_of(c, main) else c for c in calls)
            turns = [Turn(bad_calls, is_mistake=True), Turn(fix_calls(ctx, main, source, bad_line, good_line, calls))]
    for fact in facts:
        assert fact, f"{key}: empty fact"
    return Task(family=family, text=text, key=key, turns=tuple(turns), answer=answer, facts=tuple(facts),
                output_facts=tuple(output_facts), files=dict(files or {}))


def is_write_of(call: Call, path: str) -> bool:
    return call.name == "write_file" and call.arguments["path"] == path


def quoting(text: str, source: str) -> str:
    """`source` opened by a docstring that quotes the task's last line word for word (the one that holds its
    values; a pasted function comes before it): the model copies the task by induction, each token the one after
    the token it copied last, and then finds the values the code needs a line above where it writes them."""
    quote = text.strip().split("\n")[-1].strip()
    if '"""' in quote or quote.endswith('"') or "\\" in quote:
        raise PlanError(f"cannot quote the task in a docstring: {quote!r}")
    return f'"""{quote}"""\n\n' + source


def fix_calls(ctx: Ctx, main: str, source: str, bad_line: str, good_line: str, calls: Sequence[Call]) -> tuple:
    """Repair the broken line (edit_file where the toolbox has it, else rewrite the file), then run again."""
    runs = tuple(c for c in calls if c.name in ("run_python", "run_tests"))
    if "edit_file" in ctx.tools:
        return (Call("edit_file", {"path": main, "old_text": bad_line, "new_text": good_line}), *runs)
    return (write(main, source), *runs)


_BUILTINS = {"print", "range", "len", "str", "int", "float", "list", "dict", "set", "sorted", "sum", "min", "max",
             "open", "enumerate", "zip", "abs", "all", "any", "repr", "round", "self", "True", "False", "None",
             "reversed", "isinstance", "map", "tuple", "chr", "ord", "divmod", "bool"}


def break_code(source: str, rng: random.Random) -> tuple[str, str, str] | None:
    """(broken source, broken line, original line): a misspelt name or a lost closing parenthesis.

    The broken line must occur once in the file, so that edit_file can replace it.
    """
    lines = source.split("\n")
    candidates = []
    for i, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith(("def ", "class ", "import ", "from ", "#")):
            continue
        for m in re.finditer(r"\b[a-z_][a-z0-9_]{3,}\b", line):
            name = m.group(0)
            if name in _BUILTINS or keyword.iskeyword(name) or _inside_string(line, m.start()):
                continue
            if re.search(rf"\b{name}\b", "\n".join(lines[:i])):  # defined or used earlier: a typo is a NameError
                candidates.append(("typo", i, m.start(), m.end()))
        if line.rstrip().endswith(")") and line.lstrip().startswith("print("):
            candidates.append(("paren", i, 0, 0))
    rng.shuffle(candidates)
    for kind, i, start, end in candidates:
        line = lines[i]
        if kind == "typo":
            name = line[start:end]
            cut = rng.randrange(1, len(name) - 1)
            bad = line[:start] + name[:cut] + name[cut + 1:] + line[end:]
        else:
            bad = line.rstrip()[:-1]
        broken = "\n".join(lines[:i] + [bad] + lines[i + 1:])
        if broken.count(bad) == 1 and source.count(line) == 1 and bad != line:
            return broken, bad, line
    return None


def _inside_string(line: str, pos: int) -> bool:
    return line[:pos].count('"') % 2 == 1 or line[:pos].count("'") % 2 == 1


def check_facts(task_: Task, answer: str) -> None:
    """Raise PlanError unless the planned answer states every fact (a family bug otherwise)."""
    missing = [f for f in task_.facts if not mentions(answer, f)]
    if missing:
        raise PlanError(f"{task_.key}: the planned answer misses {missing!r}: {answer!r}")
