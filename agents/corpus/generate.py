"""Make the corpus: sample tasks, play each through the real agent graph, tools and sandbox, write transcripts.

    python -m agents.corpus --count 3000 --seed 7     # writes agents/corpus/data/transcripts.jsonl.gz

Tasks whose parameters hash into the held-back bucket never enter the corpus: `sample_tasks(held_out=True)`
gives them to evaluation, to measure what the model learnt beyond its corpus. The page's eight example tasks
enter it only as `--example-copies` plays each (their exact text and parameters; mistakes drawn per copy), so
the examples a visitor clicks are ones the small model has seen; evaluation reports them apart from the
held-back variants. The output is gzip'd JSON lines: a
header (tool declarations, generator settings), then one transcript per line in the chat-template message
format. Knows no torch: inference/train.py renders and tokenizes.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Iterator, Sequence

from agents.corpus import bugs, examples, more
from agents.corpus.build import Ctx, check_facts
from agents.corpus.plan import PlanError, PolicyModel, Task
from agents.events import AgentConfig, RunDone
from agents.graph import run_agent
from protocol import GenerationSettings

DATA = Path(__file__).resolve().parent / "data" / "transcripts.jsonl.gz"
EXAMPLES_JSON = Path(__file__).resolve().parents[2] / "assets" / "examples.json"
FORMAT = 1
HELD_OUT_BUCKETS = 8  # one parameter hash bucket in eight is held back for evaluation
MISTAKE_RATE = 0.15
EXAMPLE_COPIES = 12  # plays of each page example in the corpus (~7% of it)

# (family, weight): the examples' themes weigh three times as much as the others.
FAMILIES: list[tuple[Callable[..., Task], int]] = (
    [(f, 3) for f in (examples.fizzbuzz, examples.primes, bugs.fix_bug, examples.word_freq, examples.roman,
                      examples.fib_timing, examples.json_csv, examples.brackets)]
    + [(bugs.fix_file, 2)] + [(f, 1) for f in more.FAMILIES])

# What the shipped corpus keeps: the example tasks' families, so a small model can master them (held-back
# variants of these families measure that it did not memorise the examples).
SHIPPED_FAMILIES = ("fizzbuzz", "primes", "fix_bug", "word_freq", "roman", "fib_timing", "json_csv", "brackets")

# The page's examples (assets/examples.json, by title) as tasks with known answers: evaluation only.
EXAMPLE_PARAMS: dict[str, tuple[Callable[..., Task], dict[str, Any]]] = {
    "FizzBuzz, tested": (examples.fizzbuzz, {"n": 15, "fn": "fizzbuzz", "words": (3, 5, "Fizz", "Buzz")}),
    "Primes below 100": (examples.primes, {"limit": 100, "kind": "count"}),
    "Fix a bug": (bugs.fix_bug, {"bug": "median", "inputs": ([3, 1, 4, 1], [5, 2, 9])}),
    "Word frequencies": (examples.word_freq, {"sentence": "the quick brown fox jumps over the lazy dog the end",
                                              "top": 3, "path": "words.txt"}),
    "Roman numerals": (examples.roman, {"top": 3999}),
    "Fibonacci timing": (examples.fib_timing, {"agree": 20, "n": 25}),
    "JSON to CSV": (examples.json_csv, {"kind": "people"}),
    "Balanced brackets": (examples.brackets, {"cases": ("([]{})", "([)]", "((", "")}),
}


def example_tasks(tools: frozenset[str] = frozenset({"write_file", "run_python", "run_tests"}), *,
                  copy: int | None = None, mistake_rate: float = MISTAKE_RATE) -> list[Task]:
    """The page's eight example tasks, with the facts a correct answer states: without `copy` as evaluation
    runs them (no mistake); with `copy` the corpus's copy number `copy` (a mistake with `mistake_rate`)."""
    out = []
    for i, item in enumerate(json.loads(EXAMPLES_JSON.read_text(encoding="utf-8"))):
        family, params = EXAMPLE_PARAMS[item["title"]]
        ctx = (Ctx(random.Random(0), tools) if copy is None
               else Ctx(random.Random(f"example {i} copy {copy}"), tools, mistake_rate))
        out.append(family(ctx, text=item["task"], **params))
    return out


def corpus_examples(copies: int, tools: frozenset[str], mistake_rate: float = MISTAKE_RATE) -> list[Task]:
    """The page's examples as the corpus holds them: `copies` plays of each, copy by copy."""
    return [t for copy in range(copies) for t in example_tasks(tools, copy=copy, mistake_rate=mistake_rate)]


def _example_texts() -> set[str]:
    return {item["task"] for item in json.loads(EXAMPLES_JSON.read_text(encoding="utf-8"))}


def is_held_out(task: Task) -> bool:
    """Held back from training for evaluation: the task's parameters hash into the evaluation bucket."""
    return hashlib.sha256(task.key.encode()).digest()[0] % HELD_OUT_BUCKETS == 0


def is_example(task: Task, example_texts: set[str], example_keys: set[str]) -> bool:
    """One of the page's examples, by wording or by parameters (the corpus holds them only as its copies)."""
    return task.text in example_texts or task.key in example_keys


def sample_tasks(count: int, seed: int, tools: frozenset[str], *, held_out: bool,
                 mistake_rate: float = MISTAKE_RATE, families: Collection[str] | None = None) -> list[Task]:
    """`count` distinct tasks (by key and wording) from the weighted families (only `families`, if given),
    all held out or all not, and none of them a page example (those come from `example_tasks`).

    Hold-out goes by key (the parameters), so a held-out task is new in its parameters, whatever its wording."""
    rng = random.Random(seed)
    ctx = Ctx(rng, tools, mistake_rate=0.0 if held_out else mistake_rate)
    texts, example_keys = _example_texts(), {t.key for t in example_tasks(tools)}
    weighted = [f for f, w in FAMILIES for _ in range(w)]
    seen: set[tuple[str, str]] = set()
    tasks: list[Task] = []
    tries = 0
    while len(tasks) < count:
        tries += 1
        if tries > 200 * count:
            raise RuntimeError(f"could not find {count} distinct tasks (found {len(tasks)})")
        t = rng.choice(weighted)(ctx)
        if families is not None and t.family not in families:
            continue
        if (t.key, t.text) in seen or is_held_out(t) != held_out or is_example(t, texts, example_keys):
            continue
        seen.add((t.key, t.text))
        tasks.append(t)
    return tasks


@dataclass(frozen=True)
class Transcript:
    task: Task
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    no_loss: list[int]  # indices of assistant messages that are deliberate mistakes: context, never targets

    def to_json(self) -> dict[str, Any]:
        return {"family": self.task.family, "key": self.task.key, "messages": self.messages, "no_loss": self.no_loss}


def play(task: Task, sandbox, *, max_steps: int = 6, tries: int = 3) -> Transcript:
    """Run `task`'s plan through the real agent graph, tools and sandbox; PlanError if it goes off plan `tries`
    times in a row (a run killed from outside, e.g. by a busy machine, gets another go)."""
    for attempt in range(tries):
        try:
            return _play_once(task, sandbox, max_steps)
        except PlanError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def run_in_workspace(task: Task, model_for: Callable[[Path], Any], config: AgentConfig, sandbox) -> RunDone | None:
    """`task` through the real agent graph in a fresh workspace holding its files, with the model that
    `model_for(workspace)` gives; the run's RunDone. The workspace is removed afterwards."""
    from agents.sandbox import make_workspace, remove_workspace

    workspace = make_workspace()
    try:
        for name, content in task.files.items():
            (workspace / name).write_text(content, encoding="utf-8")
        model = model_for(workspace)
        done = None
        for event in run_agent(model, task.text, config=config, workspace=workspace, sandbox=sandbox):
            if isinstance(event, RunDone):
                done = event
        return done
    finally:
        remove_workspace(workspace)


def _play_once(task: Task, sandbox, max_steps: int) -> Transcript:
    policies: list[PolicyModel] = []

    def policy_for(workspace: Path) -> PolicyModel:
        policies.append(PolicyModel(task, _tool_names(workspace, sandbox)))
        return policies[-1]

    config = AgentConfig(mode="baseline", max_steps=max_steps, settings=GenerationSettings(max_new_tokens=4096))
    done = run_in_workspace(task, policy_for, config, sandbox)
    policy = policies[-1]
    if done is None or done.reason != "answered":
        raise PlanError(f"{task.key}: the run ended {getattr(done, 'reason', None)} ({getattr(done, 'error', '')})")
    check_facts(task, done.final_answer)
    _check_steps(task, done)
    messages = getattr(done, "messages", None) or (
        policy.calls[-1][0] + [{"role": "assistant", "content": done.final_answer}])
    tools = policy.calls[-1][1] or []
    assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    no_loss = [assistant[i] for i, turn in enumerate(task.turns) if turn.is_mistake]
    return Transcript(task, [dict(m) for m in messages], tools, no_loss)


def _check_steps(task: Task, done: RunDone) -> None:
    """A mistake turn must really go wrong (an error, or output without the facts); every other turn's tools
    must succeed."""
    for turn, step in zip(task.turns, done.steps):
        output = "\n".join(r.output for r in step.tool_results)
        errored = any(r.is_error or (r.call.name.startswith("run_") and getattr(r, "exit_code", 0) != 0)
                      for r in step.tool_results)
        wrong = errored or any(fact not in output for fact in task.output_facts)
        if (wrong if turn.is_mistake else errored) != turn.is_mistake:
            raise PlanError(f"{task.key}: step {step.index} {'failed' if errored else 'passed'} against the plan:\n"
                            f"{output[-600:]}")


def _tool_names(workspace: Path, sandbox) -> frozenset[str]:
    from agents.tools import Toolbox

    return frozenset(spec["function"]["name"] for spec in Toolbox(workspace, sandbox).specs())


def toolbox_tools(sandbox) -> frozenset[str]:
    """The tool names a run with `sandbox` declares."""
    from agents.sandbox import make_workspace, remove_workspace

    workspace = make_workspace()
    try:
        return _tool_names(workspace, sandbox)
    finally:
        remove_workspace(workspace)


def generate(tasks: Sequence[Task], sandbox, *, workers: int = 2, max_failed: float = 0.02,
             progress: Callable[[int, int], None] | None = None) -> tuple[list[Transcript], list[str]]:
    """Play every task (in a few threads: the sandbox runs each workspace on its own), keeping their order.

    Returns (transcripts, why each dropped task went off plan); raises PlanError when more than `max_failed` of
    the tasks go off plan (a family is broken, not unlucky).
    """
    def attempt(t: Task) -> Transcript | str:
        try:
            return play(t, sandbox)
        except PlanError as e:
            return str(e)

    out: list[Transcript] = []
    failed: list[str] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, result in enumerate(pool.map(attempt, tasks)):
            (failed if isinstance(result, str) else out).append(result)
            if progress:
                progress(i + 1, len(tasks))
    if len(failed) > max_failed * len(tasks):
        raise PlanError(f"{len(failed)} of {len(tasks)} tasks went off plan; the first:\n{failed[0]}")
    return out, failed


def write_corpus(path: Path, transcripts: Sequence[Transcript], settings: dict[str, Any]) -> None:
    """gzip'd JSON lines: a header with the shared tool declarations, then one transcript per line."""
    tools = transcripts[0].tools
    for t in transcripts:
        if t.tools != tools:
            raise PlanError(f"{t.task.key}: tool declarations differ between transcripts")
    path.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 and sorted keys: the same corpus gives the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as f:
        header = {"format": FORMAT, "tools": tools, "settings": settings}
        f.write((json.dumps(header, sort_keys=True, ensure_ascii=False) + "\n").encode())
        for t in transcripts:
            f.write((json.dumps(t.to_json(), sort_keys=True, ensure_ascii=False) + "\n").encode())


def read_corpus(path: Path = DATA) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """(header, transcripts) of a corpus file."""
    lines = gzip.open(path, "rt", encoding="utf-8").read().splitlines()
    header = json.loads(lines[0])
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: corpus format {header.get('format')!r}, expected {FORMAT}; regenerate it with "
                         "python -m agents.corpus")
    return header, (json.loads(line) for line in lines[1:])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m agents.corpus", description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=3000, help="tasks sampled (before --families keeps some)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--mistake-rate", type=float, default=MISTAKE_RATE)
    p.add_argument("--out", type=Path, default=DATA)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--example-copies", type=int, default=EXAMPLE_COPIES, help="plays of each page example")
    p.add_argument("--families", default=",".join(SHIPPED_FAMILIES),
                   help="comma-separated families kept from the sampled tasks ('all': every family)")
    args = p.parse_args(argv)
    families = None if args.families == "all" else set(args.families.split(","))
    from agents.sandbox import open_sandbox

    sandbox = open_sandbox()
    if not sandbox.available:
        print(f"error: the corpus needs real tool output, but the sandbox is off: {sandbox.reason}", file=sys.stderr)
        return 1
    tools = toolbox_tools(sandbox)
    tasks = sample_tasks(args.count, args.seed, tools, held_out=False, mistake_rate=args.mistake_rate)
    if families is not None:  # filtered after sampling: the kept tasks are the same whichever families are kept
        tasks = [t for t in tasks if t.family in families]
    tasks += corpus_examples(args.example_copies, tools, args.mistake_rate)
    start = time.monotonic()

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"{done}/{total} transcripts, {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)

    transcripts, failed = generate(tasks, sandbox, workers=args.workers, progress=progress)
    for why in failed:
        print(f"dropped (off plan): {why.splitlines()[0]}", file=sys.stderr)
    settings = {"count": args.count, "seed": args.seed, "mistake_rate": args.mistake_rate, "tools": sorted(tools),
                "example_copies": args.example_copies,
                "families": sorted(families) if families is not None else "all"}
    write_corpus(args.out, transcripts, settings)
    families: dict[str, int] = {}
    for t in transcripts:
        families[t.task.family] = families.get(t.task.family, 0) + 1
    print(f"wrote {len(transcripts)} transcripts to {args.out} ({args.out.stat().st_size} bytes): "
          + ", ".join(f"{k} {v}" for k, v in sorted(families.items())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
