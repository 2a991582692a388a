"""The "fix a bug" family: a user pastes a broken function, the agent writes the fixed one and runs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from agents.corpus.build import Ctx, answer_with, code, run, task, write
from agents.corpus.plan import Call, Task, Turn


@dataclass(frozen=True)
class Bug:
    name: str  # the function
    purpose: str  # "should ..."
    symptom: str  # "but fails on ..."
    broken: str
    fixed: str
    fix: str  # what the fix did, for the answer
    inputs: Callable[[Any], tuple]  # rng -> two argument values
    truth: Callable[[Any], Any]  # argument -> the right result


def _median(xs):
    xs = sorted(xs)
    n = len(xs)
    return (xs[n // 2 - 1] + xs[n // 2]) / 2 if n % 2 == 0 else xs[n // 2]


def _ints(rng, lo=1, hi=9, n=(3, 5)):
    return [rng.randint(lo, hi) for _ in range(rng.randint(*n))]


BUGS = [
    Bug("median", "return the median of a list", "fails on even-length lists",
        "def median(xs):\n    xs = sorted(xs)\n    return xs[len(xs) // 2]\n",
        "def median(xs):\n    xs = sorted(xs)\n    n = len(xs)\n    mid = n // 2\n    if n % 2 == 0:\n"
        "        return (xs[mid - 1] + xs[mid]) / 2\n    return xs[mid]\n",
        "for an even-length list it now averages the two middle values",
        lambda rng: (_ints(rng, n=(4, 4)) if rng.random() < 0.5 else _ints(rng, n=(2, 6)), _ints(rng, n=(3, 3))),
        _median),
    Bug("factorial", "return n! (the product 1 * 2 * ... * n)", "returns the wrong value for every n above 1",
        "def factorial(n):\n    result = 1\n    for i in range(1, n):\n        result *= i\n    return result\n",
        "def factorial(n):\n    result = 1\n    for i in range(1, n + 1):\n        result *= i\n    return result\n",
        "the loop now runs up to n itself (range(1, n + 1))",
        lambda rng: (rng.randint(3, 7), rng.randint(8, 12)),
        lambda n: __import__("math").factorial(n)),
    Bug("find_max", "return the largest number in a list", "fails when every number is negative",
        "def find_max(xs):\n    best = 0\n    for x in xs:\n        if x > best:\n            best = x\n    return best\n",
        "def find_max(xs):\n    best = xs[0]\n    for x in xs[1:]:\n        if x > best:\n            best = x\n"
        "    return best\n",
        "it now starts from the first element instead of 0",
        lambda rng: (_ints(rng, -9, -1), _ints(rng, -5, 9)),
        max),
    Bug("average", "return the mean of a list of numbers", "returns a rounded-down whole number",
        "def average(xs):\n    return sum(xs) // len(xs)\n",
        "def average(xs):\n    return sum(xs) / len(xs)\n",
        "it now uses true division (/) instead of floor division (//)",
        lambda rng: (_ints(rng, n=(2, 2)), _ints(rng, n=(3, 4))),
        lambda xs: sum(xs) / len(xs)),
    Bug("count_vowels", "count the vowels in a string", "misses capital letters",
        'def count_vowels(s):\n    return sum(1 for c in s if c in "aeiou")\n',
        'def count_vowels(s):\n    return sum(1 for c in s.lower() if c in "aeiou")\n',
        "it now lowercases the string before counting",
        lambda rng: (rng.choice(["Apple Pie", "ORANGE", "Hello World", "Umbrella", "AEIOU aeiou"]),
                     rng.choice(["Banana", "Ice Cream", "Open Sky", "EAGLE"])),
        lambda s: sum(1 for c in s.lower() if c in "aeiou")),
    Bug("last_item", "return the last element of a list", "raises an IndexError",
        "def last_item(xs):\n    return xs[len(xs)]\n",
        "def last_item(xs):\n    return xs[-1]\n",
        "it now indexes with -1 (the last valid index is len(xs) - 1)",
        lambda rng: (_ints(rng), _ints(rng, n=(1, 2))),
        lambda xs: xs[-1]),
    Bug("sum_even", "return the sum of the even numbers in a list", "adds up the odd numbers instead",
        "def sum_even(xs):\n    return sum(x for x in xs if x % 2 == 1)\n",
        "def sum_even(xs):\n    return sum(x for x in xs if x % 2 == 0)\n",
        "it now keeps numbers with x % 2 == 0",
        lambda rng: (_ints(rng, 1, 20, (4, 6)), _ints(rng, 1, 20, (3, 5))),
        lambda xs: sum(x for x in xs if x % 2 == 0)),
    Bug("is_palindrome", "tell whether a word reads the same backwards", "says no for words with capitals",
        "def is_palindrome(s):\n    return s == s[::-1]\n",
        "def is_palindrome(s):\n    s = s.lower()\n    return s == s[::-1]\n",
        "it now compares the lowercased word",
        lambda rng: (rng.choice(["Racecar", "Level", "Noon", "Madam", "Kayak"]),
                     rng.choice(["Python", "Refer", "Stats", "Table"])),
        lambda s: s.lower() == s.lower()[::-1]),
    Bug("reverse_words", "reverse the order of the words in a sentence", "returns the sentence unchanged",
        'def reverse_words(s):\n    return " ".join(s.split()[::1])\n',
        'def reverse_words(s):\n    return " ".join(s.split()[::-1])\n',
        "the slice step is now -1",
        lambda rng: (rng.choice(["hello big world", "one two three", "red green blue", "the cat sat"]),
                     rng.choice(["a b c d", "first second", "sun moon star sky"])),
        lambda s: " ".join(s.split()[::-1])),
    Bug("clamp", "limit x to the range lo..hi", "returns lo or hi even for values inside the range",
        "def clamp(x, lo, hi):\n    return min(lo, max(x, hi))\n",
        "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n",
        "min and max are now the right way round",
        lambda rng: ((rng.randint(-5, 15), 0, 10), (rng.randint(2, 8), 0, 10)),
        lambda args: max(args[1], min(args[0], args[2]))),
]


def fix_bug(ctx: Ctx, bug: str | None = None, inputs: tuple | None = None, text: str | None = None) -> Task:
    spec = next(b for b in BUGS if b.name == bug) if bug else ctx.pick(BUGS)
    first, second = inputs or spec.inputs(ctx.rng)
    args = [first, second]
    shown = [f"{spec.name}({', '.join(map(repr, a))})" if isinstance(a, tuple) else f"{spec.name}({a!r})"
             for a in args]
    text = text or ctx.pick([
        f"This function should {spec.purpose} but {spec.symptom}:\n\n{spec.broken}\nFix it, then run it on "
        f"{args[0]!r} and {args[1]!r} to show it works.",
        f"Fix this Python function; it should {spec.purpose} but {spec.symptom}.\n\n{spec.broken}\nShow it "
        f"working on {args[0]!r} and {args[1]!r}.",
    ])
    results = [spec.truth(a) for a in args]
    path = f"{spec.name}.py"
    source = spec.fixed + "\n\n" + labelled_prints(shown)
    out = [f"{c} = {r!r}" for c, r in zip(shown, results)]
    answer = "\n".join(out) + f"\nFixed {spec.name}: {spec.fix}."
    return task(ctx, "fix_bug", text, f"fix_bug:{spec.name}:{args!r}", [write(path, code(source)), run(path)],
                answer_with(answer, out), facts=out, output_facts=out, main=path)


def labelled_prints(calls: list[str]) -> str:
    """Lines that print each call and its result's repr, `median([1, 2]) = 1.5`: what the answer repeats."""
    return "".join(f'print(f"{c} = {{{c}!r}}")\n' for c in calls)


def changed_region(before: str, after: str) -> tuple[str, str]:
    """(old_text, new_text) for edit_file: the lines that differ, widened by a line until old_text is not empty."""
    a, b = before.split("\n"), after.split("\n")
    head = 0
    while head < min(len(a), len(b)) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < min(len(a), len(b)) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    lo, hi_a, hi_b = head, len(a) - tail, len(b) - tail
    if lo == hi_a:
        lo -= 1
    return "\n".join(a[lo:hi_a]), "\n".join(b[lo:hi_b])


def fix_file(ctx: Ctx, bug: str | None = None, inputs: tuple | None = None) -> Task:
    """The broken function is already in a file of the workspace: read it, edit the bug away, run it."""
    spec = next(b for b in BUGS if b.name == bug) if bug else ctx.pick(BUGS)
    args = list(inputs or spec.inputs(ctx.rng))
    shown = [f"{spec.name}({', '.join(map(repr, a))})" if isinstance(a, tuple) else f"{spec.name}({a!r})"
             for a in args]
    prints = "\n\n" + "".join(f"print({c})\n" for c in shown)
    path = f"{spec.name}.py"
    broken, fixed = code(spec.broken + prints), code(spec.fixed + prints)
    old, new = changed_region(broken, fixed)
    assert broken.count(old) == 1 and broken.replace(old, new) == fixed, spec.name
    text = ctx.pick([
        f"{path} in the workspace should {spec.purpose} but {spec.symptom}. Fix it and run it.",
        f"The function in {path} should {spec.purpose}, but it {spec.symptom.removeprefix('it ')}. Find the bug, fix "
        "it and show the output.",
    ])
    results = [spec.truth(a) for a in args]
    answer = f"Fixed {path}: {spec.fix}. {shown[0]} = {results[0]!r} and {shown[1]} = {results[1]!r}."
    out = [str(r) for r in results]
    turns = (Turn((Call("read_file", {"path": path}),)),
             Turn((Call("edit_file", {"path": path, "old_text": old, "new_text": new}), run(path))))
    return Task(family="fix_file", text=text, key=f"fix_file:{spec.name}:{args!r}", turns=turns,
                answer=answer_with(answer, out), facts=tuple(repr(r) for r in results), output_facts=tuple(out),
                files={path: broken})
