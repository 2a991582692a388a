"""Task families in the spirit of the page's eight example tasks, each with many variants.

Each family takes a Ctx and optional fixed parameters (the examples themselves are built that way, for
evaluation) and returns a Task. Wording varies; the parameters decide hold-out.

The planned code is written for a small model to copy from close by: it names the task's numbers in its first
lines, under a docstring that quotes the task (build.quoting), and prints its findings as the sentences the
final answer then repeats, so every number in an answer is a copy from a few tokens back rather than a value
recalled from under a key hundreds of tokens away (docs/PERFORMANCE.md, "The trained mini pair").
"""

from __future__ import annotations

import json
import re

from agents.corpus.build import Ctx, answer_with, code, run, task, write
from agents.corpus.plan import PlanError, Task

WORDS = ("apple banana cherry river stone cloud green blue red fox dog cat bird tree sun moon star sea hill "
         "road light dark fast slow big small old new tea cake bread milk rain snow wind fire").split()
NAMES = ("Ada Alan Grace Linus Guido Barbara Ken Dennis Margaret Edsger Donald Frances Niklaus Radia Tim "
         "Sophie Mei Omar Lena Ivan Priya Yuki Carlos Amara").split()
CITIES = ("Paris Berlin Lisbon Oslo Rome Madrid Vienna Prague Dublin Athens Tokyo Lima Cairo Quito Seoul "
          "Nairobi Denver Austin Boston Toronto").split()


# ---- FizzBuzz ----

FIZZ_WORDS = [(3, 5, "Fizz", "Buzz")] * 4 + [(2, 7, "Foo", "Bar"), (3, 4, "Ping", "Pong"), (4, 6, "Tick", "Tock")]


def fizzbuzz(ctx: Ctx, n: int | None = None, fn: str | None = None, words=None, text: str | None = None) -> Task:
    n = n or ctx.rng.randint(5, 40)
    fn = fn or ctx.pick(["fizzbuzz", "fizzbuzz", "fizz_buzz", "fb"])
    a, b, wa, wb = words or ctx.pick(FIZZ_WORDS)
    rule = "" if (a, b, wa, wb) == (3, 5, "Fizz", "Buzz") else (
        f" ('{wa}' for multiples of {a}, '{wb}' for multiples of {b}, '{wa}{wb}' for both)")
    what = "FizzBuzz" if not rule else f"{wa}{wb}"
    text = text or ctx.pick([
        f"Write a Python function {fn}(n) that returns the list of {what} strings for 1..n{rule}. Run it for n={n} "
        "and check the output against the expected list.",
        f"Implement {fn}(n) in Python returning the {what} strings for 1 to n{rule}. Run it with n={n} and verify "
        "the result against the expected list.",
        f"Write {fn}(n) that returns {what} for the numbers 1..n{rule}, then run it for n={n} and check it.",
        f"I need a {what} function{rule}: {fn}(n) returning a list of strings for 1..n. Test it for n={n} against "
        "the expected list.",
    ])
    source = code(f'''
        N = {n}


        def {fn}(n):
            out = []
            for i in range(1, n + 1):
                if i % {a} == 0 and i % {b} == 0:
                    out.append("{wa}{wb}")
                elif i % {a} == 0:
                    out.append("{wa}")
                elif i % {b} == 0:
                    out.append("{wb}")
                else:
                    out.append(str(i))
            return out


        result = {fn}(N)
        expected = [("{wa}" * (i % {a} == 0) + "{wb}" * (i % {b} == 0)) or str(i) for i in range(1, N + 1)]
        print(result)
        print(f"{fn}({{N}}) returns {{len(result)}} strings ending in {{result[-1]!r}}; it matches the expected "
              f"list: {{result == expected}}")
        ''')
    expected = [(wa * (i % a == 0) + wb * (i % b == 0)) or str(i) for i in range(1, n + 1)]
    path = f"{fn}.py"
    found = f"{fn}({n}) returns {n} strings ending in '{expected[-1]}'; it matches the expected list: True"
    answer = f"{found}. I wrote {fn}(n) in {path} and ran it."
    return task(ctx, "fizzbuzz", text, f"fizzbuzz:{fn}:{n}:{wa}{wb}", [write(path, source), run(path)],
                answer_with(answer, [found]), facts=[f"{fn}({n})", "matches the expected list: True"],
                output_facts=[found], main=path)


# ---- primes ----

def primes(ctx: Ctx, limit: int | None = None, kind: str | None = None, text: str | None = None) -> Task:
    limit = limit or ctx.pick(list(range(20, 301, 10)) + [500, 1000])
    kind = kind or ctx.pick(["count", "count", "count", "sum"])
    found = [p for p in range(2, limit) if all(p % d for d in range(2, int(p ** 0.5) + 1))]
    show = "print(primes)\n" if limit <= 300 else ""
    source = code(f'''
        LIMIT = {limit}


        def sieve(limit):
            is_prime = [True] * limit
            is_prime[0:2] = [False, False]
            for i in range(2, int(limit ** 0.5) + 1):
                if is_prime[i]:
                    for j in range(i * i, limit, i):
                        is_prime[j] = False
            return [i for i in range(limit) if is_prime[i]]


        primes = sieve(LIMIT)
        ''') + show
    if kind == "count":
        text = text or ctx.pick([
            f"Write and run Python code that prints all prime numbers below {limit} using a sieve of Eratosthenes, "
            "then tell me how many there are.",
            f"How many primes are there below {limit}? Use a sieve of Eratosthenes in Python, print them and count them.",
            f"Use Python to list the primes below {limit} with a sieve of Eratosthenes and report how many there are.",
        ])
        source += 'print(f"There are {len(primes)} primes below {LIMIT}; the largest is {primes[-1]}.")\n'
        line = f"There are {len(found)} primes below {limit}; the largest is {found[-1]}."
        answer = f"{line} I found them with a sieve of Eratosthenes in primes.py."
        facts, out = [str(len(found)), str(limit)], [line]
    else:
        text = text or ctx.pick([
            f"Write Python that computes the sum of all primes below {limit} with a sieve of Eratosthenes, run it "
            "and tell me the sum.",
            f"What is the sum of the prime numbers below {limit}? Compute it in Python with a sieve.",
        ])
        source += 'print(f"The {len(primes)} primes below {LIMIT} add up to {sum(primes)}.")\n'
        line = f"The {len(found)} primes below {limit} add up to {sum(found)}."
        answer = f"{line} I used a sieve of Eratosthenes in primes.py."
        facts, out = [str(sum(found)), str(limit)], [line]
    return task(ctx, "primes", text, f"primes:{kind}:{limit}", [write("primes.py", source), run("primes.py")],
                answer_with(answer, out), facts=facts, output_facts=out, main="primes.py")


# ---- word frequencies ----

def word_freq(ctx: Ctx, sentence: str | None = None, top: int | None = None, path: str | None = None,
              text: str | None = None) -> Task:
    top = top or ctx.pick([2, 3, 3, 4])
    path = path or ctx.pick(["words.txt", "words.txt", "text.txt", "sentence.txt"])
    if sentence is None:
        pool = ctx.rng.sample(WORDS, ctx.rng.randint(5, 8))
        words = pool + [ctx.pick(pool[:3]) for _ in range(ctx.rng.randint(2, 5))]
        ctx.rng.shuffle(words)
        sentence = " ".join(words)
    counts: dict[str, int] = {}
    for w in sentence.split():
        counts[w] = counts.get(w, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]  # stable: ties keep first-seen order
    number = {2: "two", 3: "three", 4: "four"}[top]  # the task may say either
    text = text or ctx.pick([
        f"Write a file {path} containing the sentence '{sentence}', then write Python code that reads it and "
        f"prints the {number} most frequent words with their counts.",
        f"Save the text '{sentence}' to {path}, then count the words in it with Python and print the top {top} "
        "with their counts.",
    ])
    source = code(f'''
        from collections import Counter

        TOP = {top}


        with open("{path}") as f:
            words = f.read().split()

        print(f"The {{TOP}} most frequent words in {path}:")
        for word, count in Counter(words).most_common(TOP):
            print(f"{{word}} ({{count}})")
        ''')
    out = [f"The {top} most frequent words in {path}:"] + [f"{w} ({c})" for w, c in ranked]
    answer = "\n".join(out)
    return task(ctx, "word_freq", text, f"word_freq:{sentence}:{top}",
                [write("count_words.py", source), write(path, sentence + "\n"), run("count_words.py")],
                answer_with(answer, out), facts=[ranked[0][0], f"{ranked[0][0]} ({ranked[0][1]})"], output_facts=out,
                main="count_words.py")


# ---- Roman numerals ----

ROMAN_CODE = '''
    VALUES = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
              (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]


    def to_roman(n):
        out = ""
        for value, letters in VALUES:
            while n >= value:
                out += letters
                n -= value
        return out


    def from_roman(s):
        total = 0
        i = 0
        for value, letters in VALUES:
            while s.startswith(letters, i):
                total += value
                i += len(letters)
        return total


    '''


def to_roman(n: int) -> str:
    out = ""
    for value, letters in [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"), (50, "L"),
                           (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]:
        while n >= value:
            out, n = out + letters, n - value
    return out


def roman(ctx: Ctx, top: int | None = None, numbers: tuple[int, ...] | None = None, text: str | None = None) -> Task:
    if numbers is None and (top is not None or ctx.rng.random() < 0.6):
        top = top or ctx.pick([100, 500, 1000, 2000, 3000, 3999, 3999])
        text = text or ctx.pick([
            f"Implement to_roman(n) and from_roman(s) in Python for 1..{top}. Run a round-trip check over all "
            "numbers in that range and report whether every number survives.",
            f"Write Roman numeral conversion both ways in Python (to_roman and from_roman) and check that every "
            f"number from 1 to {top} survives a round trip.",
        ])
        source = f"TOP = {top}\n\n\n" + code(ROMAN_CODE) + "\n\n" + code('''
            bad = [n for n in range(1, TOP + 1) if from_roman(to_roman(n)) != n]
            print(f"Round trip of every number from 1 to {TOP}: {len(bad)} failures")
            ''')
        line = f"Round trip of every number from 1 to {top}: 0 failures"
        answer = f"{line}. Every number survives: to_roman then from_roman gives it back."
        return task(ctx, "roman", text, f"roman:range:{top}", [write("roman.py", source), run("roman.py")],
                    answer_with(answer, [line]), facts=[str(top), "0 failures"], output_facts=[line],
                    main="roman.py")
    numbers = numbers or tuple(sorted(ctx.rng.sample(range(1, 4000), ctx.rng.randint(2, 4))))
    shown = ", ".join(map(str, numbers))
    text = text or ctx.pick([
        f"Write to_roman(n) and from_roman(s) in Python and use them to convert {shown} to Roman numerals and back.",
        f"Convert {shown} to Roman numerals with a Python to_roman function, and check from_roman reverses it.",
    ])
    source = f"NUMBERS = [{shown}]\n\n\n" + code(ROMAN_CODE) + "\n\n" + code('''
        for n in NUMBERS:
            r = to_roman(n)
            print(f"{n} = {r}, and from_roman gives {from_roman(r)}")
        ''')
    out = [f"{n} = {to_roman(n)}, and from_roman gives {n}" for n in numbers]
    answer = "\n".join(out)
    return task(ctx, "roman", text, f"roman:numbers:{shown}", [write("roman.py", source), run("roman.py")],
                answer_with(answer, out), facts=[to_roman(n) for n in numbers], output_facts=out, main="roman.py")


# ---- Fibonacci timing ----

def fib_timing(ctx: Ctx, agree: int | None = None, n: int | None = None, text: str | None = None) -> Task:
    agree = agree or ctx.pick([10, 15, 20, 20, 25])
    n = n or ctx.pick([18, 20, 22, 24, 25, 26])
    text = text or ctx.pick([
        f"Write a recursive and an iterative Fibonacci function in Python, check they agree for n = 0..{agree}, and "
        f"time both for n = {n}. Which is faster and by how much?",
        f"Compare a recursive and an iterative Fibonacci in Python: check they give the same values for n up to "
        f"{agree}, then time each for n = {n} and tell me which wins and by how much.",
    ])
    source = code(f'''
        import time

        AGREE = {agree}
        N = {n}


        def fib_rec(n):
            return n if n < 2 else fib_rec(n - 1) + fib_rec(n - 2)


        def fib_iter(n):
            a, b = 0, 1
            for _ in range(n):
                a, b = b, a + b
            return a


        agree = all(fib_rec(i) == fib_iter(i) for i in range(AGREE + 1))
        print(f"fib_rec and fib_iter agree for n up to {{AGREE}}: {{agree}}")
        start = time.perf_counter()
        fib_rec(N)
        rec_s = time.perf_counter() - start
        start = time.perf_counter()
        fib_iter(N)
        iter_s = time.perf_counter() - start
        print(f"For n = {{N}} the iterative version is faster: {{iter_s:.6f}} s against {{rec_s:.6f}} s, "
              f"about {{rec_s / iter_s:.0f}}x faster.")
        ''')
    agreed = f"fib_rec and fib_iter agree for n up to {agree}: True"

    def answer(output: str) -> str:
        timing = re.search(rf"For n = {n} the iterative version is faster: [\d.]+ s against [\d.]+ s, "
                           r"about \d+x faster\.", output)
        if not (timing and agreed in output):
            raise PlanError(f"fib timing output not as planned:\n{output[-600:]}")
        return f"{agreed}\n{timing.group(0)}"

    return task(ctx, "fib_timing", text, f"fib_timing:{agree}:{n}", [write("fib.py", source), run("fib.py")],
                answer, facts=["iterative", "faster", f"n = {n}", f"n up to {agree}: True"], output_facts=[agreed],
                main="fib.py")


# ---- JSON to CSV ----

KINDS = {
    "people": (["name", "age", "city"], lambda ctx: {"name": ctx.pick(NAMES), "age": ctx.rng.randint(18, 80),
                                                     "city": ctx.pick(CITIES)}),
    "books": (["title", "author", "year"], lambda ctx: {"title": " ".join(ctx.rng.sample(WORDS, 2)).title(),
                                                        "author": ctx.pick(NAMES), "year": ctx.rng.randint(1900, 2024)}),
    "products": (["name", "price", "stock"], lambda ctx: {"name": ctx.pick(WORDS), "price": ctx.rng.randint(1, 99),
                                                          "stock": ctx.rng.randint(0, 500)}),
}
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def json_csv(ctx: Ctx, kind: str | None = None, rows: list[dict] | None = None, text: str | None = None) -> Task:
    kind = kind or ctx.pick(["people", "people", "books", "products"])
    fields, make = KINDS[kind]
    rows = rows or [make(ctx) for _ in range(ctx.rng.randint(2, 4))]
    count = NUMBER_WORDS[len(rows)]
    out_path = f"{kind}.csv"
    text = text or ctx.pick([
        f"Create data.json holding a list of {count} {kind} with {', '.join(fields[:-1])} and {fields[-1]}. Write "
        f"Python that converts it to {out_path} with a header row, then print the CSV file.",
        f"Make a JSON file data.json with {count} {kind} ({', '.join(fields)}), convert it to {out_path} with a "
        "header row using Python, and show me the CSV.",
    ])
    source = code(f'''
        import csv
        import json

        with open("data.json") as f:
            rows = json.load(f)

        with open("{out_path}", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames={json.dumps(fields)})
            writer.writeheader()
            writer.writerows(rows)

        with open("{out_path}") as f:
            print(f"{out_path} holds a header row and {{len(rows)}} rows:")
            print(f.read())
        ''')
    header = ",".join(fields)
    lines = [f"{out_path} holds a header row and {len(rows)} rows:", header] + [
        ",".join(str(r[k]) for k in fields) for r in rows]
    answer = "\n".join(lines)
    return task(ctx, "json_csv", text, "json_csv:" + json.dumps(rows),
                [write("convert.py", source), write("data.json", json.dumps(rows, indent=2) + "\n"), run("convert.py")],
                answer_with(answer, lines), facts=[header, f"{len(rows)} rows"], output_facts=[header],
                main="convert.py")  # the task leaves the data to the model: only the header is the task's


# ---- balanced brackets ----

def brackets(ctx: Ctx, cases: tuple[str, ...] | None = None, text: str | None = None) -> Task:
    if cases is None:
        pool = ["()", "[]", "{}", "([])", "{[()]}", "(]", "([)]", "((", "))", "", "{}[]()", "[(])", "(()", "{{}}",
                "([]{})", "[{}]()", "}{", "((()))", "[", "]["]
        cases = tuple(ctx.rng.sample(pool, ctx.rng.randint(3, 5)))
    shown = ", ".join(repr(c) for c in cases[:-1]) + f", and {cases[-1]!r}" if len(cases) > 1 else repr(cases[0])
    text = text or ctx.pick([
        f"Write is_balanced(s) in Python that checks whether (), [] and {{}} are balanced. Test it on {shown} and "
        "print the results.",
        f"Check bracket balance in Python: write is_balanced(s) for (), [] and {{}}, and run it on {shown}.",
    ])
    source = code(f'''
        CASES = [{", ".join(repr(c) for c in cases)}]


        def is_balanced(s):
            pairs = {{")": "(", "]": "[", "}}": "{{"}}
            stack = []
            for c in s:
                if c in "([{{":
                    stack.append(c)
                elif c in pairs:
                    if not stack or stack.pop() != pairs[c]:
                        return False
            return not stack


        for s in CASES:
            print(f"is_balanced({{s!r}}) = {{is_balanced(s)}}")
        ''')
    out = [f"is_balanced({c!r}) = {_balanced(c)}" for c in cases]
    answer = "\n".join(out)
    return task(ctx, "brackets", text, "brackets:" + "|".join(cases), [write("brackets.py", source), run("brackets.py")],
                answer_with(answer, out), facts=out, output_facts=out, main="brackets.py")


def _balanced(s: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for c in s:
        if c in "([{":
            stack.append(c)
        elif c in pairs and (not stack or stack.pop() != pairs[c]):
            return False
    return not stack
