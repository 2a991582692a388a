"""More task families beyond the examples' themes, so the model learns coding-agent work, not eight scripts."""

from __future__ import annotations

import math

from agents.corpus.build import Ctx, answer_with, code, run, run_tests, task, write
from agents.corpus.examples import NAMES, WORDS
from agents.corpus.plan import Call, Task


def gcd_lcm(ctx: Ctx) -> Task:
    a, b = ctx.rng.randint(4, 200), ctx.rng.randint(4, 200)
    text = ctx.pick([f"Write Python functions gcd(a, b) and lcm(a, b) and use them on {a} and {b}.",
                     f"Compute the greatest common divisor and least common multiple of {a} and {b} in Python, with "
                     "your own gcd function (Euclid)."])
    source = code(f'''
        def gcd(a, b):
            while b:
                a, b = b, a % b
            return a


        def lcm(a, b):
            return a * b // gcd(a, b)


        print("gcd:", gcd({a}, {b}))
        print("lcm:", lcm({a}, {b}))
        ''')
    g, l = math.gcd(a, b), a * b // math.gcd(a, b)
    out = [f"gcd: {g}", f"lcm: {l}"]
    return task(ctx, "gcd_lcm", text, f"gcd_lcm:{a}:{b}", [write("gcd.py", source), run("gcd.py")],
                answer_with(f"gcd({a}, {b}) = {g} and lcm({a}, {b}) = {l}.", out), [str(g), str(l)], out, main="gcd.py")


def factorial_digits(ctx: Ctx) -> Task:
    n = ctx.rng.randint(10, 60)
    text = ctx.pick([f"What is the sum of the digits of {n}! ? Compute it in Python.",
                     f"Write Python that computes {n} factorial and the sum of its digits, and run it."])
    source = code(f'''
        import math

        value = math.factorial({n})
        print("digits:", len(str(value)))
        print("digit sum:", sum(int(d) for d in str(value)))
        ''')
    value = str(math.factorial(n))
    total = sum(int(d) for d in value)
    out = [f"digits: {len(value)}", f"digit sum: {total}"]
    return task(ctx, "factorial_digits", text, f"factorial_digits:{n}", [write("digits.py", source), run("digits.py")],
                answer_with(f"{n}! has {len(value)} digits, and their sum is {total}.", out), [str(total)], out,
                main="digits.py")


def palindromes(ctx: Ctx) -> Task:
    pool = ["level", "python", "radar", "noon", "code", "civic", "kayak", "agent", "refer", "model", "rotor",
            "token", "stats", "tenet", "shell"]
    words = ctx.rng.sample(pool, ctx.rng.randint(4, 6))
    text = ctx.pick([f"Which of these words are palindromes: {', '.join(words)}? Check with Python.",
                     f"Write is_palindrome(word) in Python and print which of {words} are palindromes."])
    source = code(f'''
        def is_palindrome(word):
            return word == word[::-1]


        words = {words!r}
        print([w for w in words if is_palindrome(w)])
        ''')
    found = [w for w in words if w == w[::-1]]
    answer = (f"The palindromes are: {', '.join(found)}." if found else "None of these words is a palindrome.")
    out = [repr(found)]
    return task(ctx, "palindromes", text, "palindromes:" + ",".join(words),
                [write("palindromes.py", source), run("palindromes.py")], answer_with(answer, out),
                found or ["None"], out, main="palindromes.py")


def caesar(ctx: Ctx) -> Task:
    shift = ctx.rng.randint(1, 25)
    message = " ".join(ctx.rng.sample(WORDS, ctx.rng.randint(2, 4)))
    text = ctx.pick([f"Write a Caesar cipher in Python: encode '{message}' with shift {shift}, then decode it back.",
                     f"Encrypt the message '{message}' with a Caesar shift of {shift} in Python and check that "
                     "decrypting gives the original."])
    source = code(f'''
        def shift_text(text, shift):
            out = ""
            for c in text:
                if c.isalpha():
                    out += chr((ord(c) - ord("a") + shift) % 26 + ord("a"))
                else:
                    out += c
            return out


        secret = shift_text("{message}", {shift})
        print("encoded:", secret)
        print("decoded:", shift_text(secret, -{shift}))
        ''')
    secret = "".join(chr((ord(c) - 97 + shift) % 26 + 97) if c.isalpha() else c for c in message)
    out = [f"encoded: {secret}", f"decoded: {message}"]
    return task(ctx, "caesar", text, f"caesar:{message}:{shift}", [write("caesar.py", source), run("caesar.py")],
                answer_with(f"With shift {shift}, '{message}' encodes to '{secret}', and decoding gives "
                            f"'{message}' back.", out), [secret], out, main="caesar.py")


def collatz(ctx: Ctx) -> Task:
    limit = ctx.pick([10, 20, 50, 100, 200, 500, 1000])
    text = ctx.pick([f"Which starting number below {limit} has the longest Collatz sequence? Use Python.",
                     f"Write collatz_steps(n) in Python and find the n below {limit} that takes the most steps to "
                     "reach 1."])
    source = code(f'''
        def collatz_steps(n):
            steps = 0
            while n != 1:
                n = n // 2 if n % 2 == 0 else 3 * n + 1
                steps += 1
            return steps


        best = max(range(1, {limit}), key=collatz_steps)
        print("best:", best)
        print("steps:", collatz_steps(best))
        ''')

    def steps(n):
        s = 0
        while n != 1:
            n, s = (n // 2 if n % 2 == 0 else 3 * n + 1), s + 1
        return s
    best = max(range(1, limit), key=steps)
    out = [f"best: {best}", f"steps: {steps(best)}"]
    return task(ctx, "collatz", text, f"collatz:{limit}", [write("collatz.py", source), run("collatz.py")],
                answer_with(f"Below {limit}, {best} has the longest Collatz sequence: {steps(best)} steps to reach 1.",
                            out), [str(best), str(steps(best))], out, main="collatz.py")


def leap_years(ctx: Ctx) -> Task:
    start = ctx.rng.randint(1800, 2000)
    end = start + ctx.rng.randint(20, 200)
    text = ctx.pick([f"How many leap years are there from {start} to {end} inclusive? Write is_leap(year) in Python.",
                     f"Count the leap years between {start} and {end} (both included) with Python."])
    source = code(f'''
        def is_leap(year):
            return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


        years = [y for y in range({start}, {end} + 1) if is_leap(y)]
        print("count:", len(years))
        print("first:", years[0], "last:", years[-1])
        ''')
    years = [y for y in range(start, end + 1) if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)]
    out = [f"count: {len(years)}"]
    return task(ctx, "leap_years", text, f"leap_years:{start}:{end}", [write("leap.py", source), run("leap.py")],
                answer_with(f"There are {len(years)} leap years from {start} to {end}, from {years[0]} to "
                            f"{years[-1]}.", out), [str(len(years))], out, main="leap.py")


def temperatures(ctx: Ctx) -> Task:
    values = sorted(ctx.rng.sample(range(-20, 105, 5), ctx.rng.randint(3, 5)))
    text = ctx.pick([f"Convert these Celsius temperatures to Fahrenheit with Python: {', '.join(map(str, values))}.",
                     f"Write celsius_to_fahrenheit(c) in Python and print a table for {values}."])
    source = code(f'''
        def celsius_to_fahrenheit(c):
            return c * 9 / 5 + 32


        for c in {values}:
            print(c, "C =", celsius_to_fahrenheit(c), "F")
        ''')
    rows = [f"{c} C = {c * 9 / 5 + 32} F" for c in values]
    return task(ctx, "temperatures", text, f"temperatures:{values}", [write("convert.py", source), run("convert.py")],
                answer_with("; ".join(rows) + ".", rows), [rows[0], rows[-1]], rows, main="convert.py")


def bubble_sort_tests(ctx: Ctx) -> Task:
    algo = ctx.pick(["bubble_sort", "insertion_sort", "selection_sort"])
    cases = [ctx.rng.sample(range(1, 50), ctx.rng.randint(3, 6)) for _ in range(2)]
    text = ctx.pick([f"Implement {algo}(xs) in sorting.py, write pytest tests for it (including an empty list), "
                     "and run them.",
                     f"Write {algo}(xs) returning a new sorted list, with pytest tests in test_sorting.py. Run the tests."])
    bodies = {
        "bubble_sort": '''
            xs = list(xs)
            for i in range(len(xs)):
                for j in range(len(xs) - 1 - i):
                    if xs[j] > xs[j + 1]:
                        xs[j], xs[j + 1] = xs[j + 1], xs[j]
            return xs''',
        "insertion_sort": '''
            xs = list(xs)
            for i in range(1, len(xs)):
                x = xs[i]
                j = i - 1
                while j >= 0 and xs[j] > x:
                    xs[j + 1] = xs[j]
                    j -= 1
                xs[j + 1] = x
            return xs''',
        "selection_sort": '''
            xs = list(xs)
            for i in range(len(xs)):
                m = min(range(i, len(xs)), key=xs.__getitem__)
                xs[i], xs[m] = xs[m], xs[i]
            return xs''',
    }
    source = code(f"def {algo}(xs):" + bodies[algo].replace("\n            ", "\n    "))
    tests = code(f'''
        from sorting import {algo}


        def test_empty():
            assert {algo}([]) == []


        def test_numbers():
            assert {algo}({cases[0]}) == {sorted(cases[0])}
            assert {algo}({cases[1]}) == {sorted(cases[1])}
        ''')
    return task(ctx, "sort_tests", text, f"sort_tests:{algo}:{cases}",
                [write("sorting.py", source), write("test_sorting.py", tests), run_tests()],
                answer_with(f"I wrote {algo} in sorting.py and two tests in test_sorting.py; pytest reports "
                            "2 passed.", ["2 passed"]), ["2 passed"], ["2 passed"], main="sorting.py")


def binary_search_tests(ctx: Ctx) -> Task:
    xs = sorted(ctx.rng.sample(range(1, 100), ctx.rng.randint(5, 8)))
    present, absent = ctx.pick(xs), ctx.pick([v for v in range(1, 100) if v not in xs])
    text = ctx.pick([f"Write binary_search(xs, target) in search.py returning the index or -1, test it with pytest "
                     f"on {xs} (look for {present} and {absent}), and run the tests.",
                     f"Implement binary search in Python (search.py) with pytest tests on the list {xs}: {present} is "
                     f"found, {absent} gives -1."])
    source = code('''
        def binary_search(xs, target):
            lo, hi = 0, len(xs) - 1
            while lo <= hi:
                mid = (lo + hi) // 2
                if xs[mid] == target:
                    return mid
                if xs[mid] < target:
                    lo = mid + 1
                else:
                    hi = mid - 1
            return -1
        ''')
    tests = code(f'''
        from search import binary_search

        XS = {xs}


        def test_found():
            assert binary_search(XS, {present}) == {xs.index(present)}


        def test_missing():
            assert binary_search(XS, {absent}) == -1
        ''')
    return task(ctx, "search_tests", text, f"search_tests:{xs}:{present}:{absent}",
                [write("search.py", source), write("test_search.py", tests), run_tests()],
                answer_with(f"binary_search finds {present} at index {xs.index(present)} and returns -1 for {absent}; "
                            "both tests pass (2 passed).", ["2 passed"]), ["2 passed", str(xs.index(present))],
                ["2 passed"], main="search.py")


def run_length(ctx: Ctx) -> Task:
    letters = ctx.rng.sample("abcxyz", ctx.rng.randint(3, 5))  # distinct neighbours: every run is under 10
    s = "".join(c * ctx.rng.randint(1, 5) for c in letters)
    text = ctx.pick([f"Write run-length encode and decode functions in Python and show the round trip for '{s}'.",
                     f"Run-length encode the string '{s}' in Python (like a3b2), then decode it back."])
    source = code(f'''
        def encode(s):
            out = ""
            i = 0
            while i < len(s):
                j = i
                while j < len(s) and s[j] == s[i]:
                    j += 1
                out += s[i] + str(j - i)
                i = j
            return out


        def decode(s):
            out = ""
            for i in range(0, len(s), 2):
                out += s[i] * int(s[i + 1])
            return out


        encoded = encode("{s}")
        print("encoded:", encoded)
        print("round trip:", decode(encoded) == "{s}")
        ''')
    enc, i = "", 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        enc, i = enc + s[i] + str(j - i), j
    out = [f"encoded: {enc}", "round trip: True"]
    return task(ctx, "run_length", text, f"run_length:{s}", [write("rle.py", source), run("rle.py")],
                answer_with(f"'{s}' encodes to '{enc}', and decoding gives the original back.", out), [enc], out,
                main="rle.py")


def anagrams(ctx: Ctx) -> Task:
    pairs_pool = [("listen", "silent"), ("evil", "vile"), ("night", "thing"), ("state", "taste"), ("apple", "paper"),
                  ("python", "typhon"), ("below", "elbow"), ("heart", "earth"), ("cat", "act"), ("dusty", "study"),
                  ("stone", "notes"), ("table", "bleat"), ("code", "coed"), ("rain", "ring")]
    pairs = ctx.rng.sample(pairs_pool, ctx.rng.randint(2, 4))
    text = ctx.pick([f"Write is_anagram(a, b) in Python and check these pairs: " +
                     ", ".join(f"{a}/{b}" for a, b in pairs) + ".",
                     "Which of these word pairs are anagrams? " + ", ".join(f"{a} and {b}" for a, b in pairs) +
                     ". Use Python."])
    source = code(f'''
        def is_anagram(a, b):
            return sorted(a) == sorted(b)


        for a, b in {pairs!r}:
            print(a, b, is_anagram(a, b))
        ''')
    rows = [f"{a} {b} {sorted(a) == sorted(b)}" for a, b in pairs]
    answer = "; ".join(f"{a}/{b}: {sorted(a) == sorted(b)}" for a, b in pairs) + "."
    return task(ctx, "anagrams", text, f"anagrams:{pairs}", [write("anagram.py", source), run("anagram.py")],
                answer_with(answer, rows), [f"{a}/{b}: {sorted(a) == sorted(b)}" for a, b in pairs], rows,
                main="anagram.py")


def perfect_numbers(ctx: Ctx) -> Task:
    limit = ctx.pick([30, 100, 500, 1000, 10000])
    text = ctx.pick([f"Find all perfect numbers below {limit} with Python.",
                     f"Write Python that lists the perfect numbers (equal to the sum of their proper divisors) below "
                     f"{limit}."])
    source = code(f'''
        def is_perfect(n):
            return n == sum(d for d in range(1, n) if n % d == 0)


        print([n for n in range(2, {limit}) if is_perfect(n)])
        ''')
    found = [n for n in (6, 28, 496, 8128) if n < limit]
    out = [repr(found)]
    return task(ctx, "perfect", text, f"perfect:{limit}", [write("perfect.py", source), run("perfect.py")],
                answer_with(f"The perfect numbers below {limit} are {', '.join(map(str, found))}.", out),
                [str(n) for n in found], out, main="perfect.py")


def matrix(ctx: Ctx) -> Task:
    def m():
        return [[ctx.rng.randint(0, 9) for _ in range(2)] for _ in range(2)]
    a, b = m(), m()
    text = ctx.pick([f"Multiply the matrices {a} and {b} in Python without numpy.",
                     f"Write matmul(a, b) in plain Python and compute {a} times {b}."])
    source = code(f'''
        def matmul(a, b):
            return [[sum(a[i][k] * b[k][j] for k in range(len(b))) for j in range(len(b[0]))] for i in range(len(a))]


        print(matmul({a}, {b}))
        ''')
    prod = [[sum(a[i][k] * b[k][j] for k in range(2)) for j in range(2)] for i in range(2)]
    out = [repr(prod)]
    return task(ctx, "matrix", text, f"matrix:{a}:{b}", [write("matmul.py", source), run("matmul.py")],
                answer_with(f"{a} times {b} is {prod}.", out), [repr(prod)], out, main="matmul.py")


def csv_stats(ctx: Ctx) -> Task:
    rows = [(ctx.pick(NAMES), ctx.rng.randint(40, 100)) for _ in range(ctx.rng.randint(3, 5))]
    data = "name,score\n" + "".join(f"{n},{s}\n" for n, s in rows)
    text = ctx.pick(["Write scores.csv with a name,score header and these rows: " +
                     "; ".join(f"{n} {s}" for n, s in rows) + ". Then compute the average, lowest and highest score "
                     "in Python.",
                     "Save these scores to scores.csv (columns name and score): " +
                     ", ".join(f"{n}={s}" for n, s in rows) + ". Read it with Python and print the mean, min and max."])
    source = code('''
        import csv

        with open("scores.csv") as f:
            scores = [int(row["score"]) for row in csv.DictReader(f)]

        print("mean:", round(sum(scores) / len(scores), 2))
        print("min:", min(scores))
        print("max:", max(scores))
        ''')
    scores = [s for _, s in rows]
    mean = round(sum(scores) / len(scores), 2)
    out = [f"mean: {mean}", f"min: {min(scores)}", f"max: {max(scores)}"]
    return task(ctx, "csv_stats", text, f"csv_stats:{rows}",
                [write("scores.csv", data), write("stats.py", source), run("stats.py")],
                answer_with(f"The average score is {mean}, the lowest {min(scores)} and the highest {max(scores)}.",
                            out), [str(mean), str(min(scores)), str(max(scores))], out, main="stats.py")


def pascal(ctx: Ctx) -> Task:
    rows = ctx.rng.randint(4, 9)
    text = ctx.pick([f"Print the first {rows} rows of Pascal's triangle with Python.",
                     f"Write pascal(n) in Python returning the first n rows of Pascal's triangle, and print {rows} rows."])
    source = code(f'''
        def pascal(n):
            rows = [[1]]
            for _ in range(n - 1):
                last = rows[-1]
                rows.append([1] + [a + b for a, b in zip(last, last[1:])] + [1])
            return rows


        for row in pascal({rows}):
            print(row)
        ''')
    tri = [[1]]
    for _ in range(rows - 1):
        tri.append([1] + [a + b for a, b in zip(tri[-1], tri[-1][1:])] + [1])
    out = [repr(r) for r in tri]
    return task(ctx, "pascal", text, f"pascal:{rows}", [write("pascal.py", source), run("pascal.py")],
                answer_with(f"The first {rows} rows of Pascal's triangle end with the row {tri[-1]}.", out),
                [repr(tri[-1])], out, main="pascal.py")


def word_count(ctx: Ctx) -> Task:
    lines = [" ".join(ctx.rng.sample(WORDS, ctx.rng.randint(2, 6))) for _ in range(ctx.rng.randint(2, 4))]
    content = "\n".join(lines) + "\n"
    text = ctx.pick(["Write notes.txt with these lines: " + " / ".join(lines) + ". Then count its lines, words and "
                     "characters with Python.",
                     "Create notes.txt containing: " + " / ".join(lines) + " (one line each), and print how many "
                     "lines, words and characters it has."])
    source = code('''
        with open("notes.txt") as f:
            text = f.read()

        print("lines:", len(text.splitlines()))
        print("words:", len(text.split()))
        print("characters:", len(text))
        ''')
    out = [f"lines: {len(lines)}", f"words: {len(content.split())}", f"characters: {len(content)}"]
    return task(ctx, "word_count", text, f"word_count:{lines}",
                [write("notes.txt", content), write("wc.py", source), run("wc.py")],
                answer_with(f"notes.txt has {len(lines)} lines, {len(content.split())} words and {len(content)} "
                            "characters.", out), [str(len(content.split())), str(len(content))], out, main="wc.py")


def stack_tests(ctx: Ctx) -> Task:
    values = ctx.rng.sample(range(1, 30), 3)
    text = ctx.pick(["Write a Stack class (push, pop, peek, is_empty) in stack.py with pytest tests, and run them.",
                     f"Implement a Stack class in Python with push, pop, peek and is_empty; test it with pytest by "
                     f"pushing {values} and popping them back."])
    source = code('''
        class Stack:
            def __init__(self):
                self.items = []

            def push(self, item):
                self.items.append(item)

            def pop(self):
                return self.items.pop()

            def peek(self):
                return self.items[-1]

            def is_empty(self):
                return not self.items
        ''')
    tests = code(f'''
        from stack import Stack


        def test_push_pop():
            s = Stack()
            for v in {values}:
                s.push(v)
            assert s.peek() == {values[-1]}
            assert [s.pop() for _ in range(3)] == {values[::-1]}
            assert s.is_empty()
        ''')
    return task(ctx, "stack_tests", text, f"stack_tests:{values}",
                [write("stack.py", source), write("test_stack.py", tests), run_tests()],
                answer_with("I wrote the Stack class in stack.py and a test in test_stack.py; pytest reports 1 passed.",
                            ["1 passed"]), ["1 passed"], ["1 passed"], main="stack.py")


def dedupe(ctx: Ctx) -> Task:
    xs = [ctx.rng.randint(1, 9) for _ in range(ctx.rng.randint(6, 10))]
    text = ctx.pick([f"Remove the duplicates from {xs} in Python, keeping the first occurrence order.",
                     f"Write unique(xs) in Python that drops repeated items but keeps order, and run it on {xs}."])
    source = code(f'''
        def unique(xs):
            seen = set()
            out = []
            for x in xs:
                if x not in seen:
                    seen.add(x)
                    out.append(x)
            return out


        print(unique({xs}))
        ''')
    out = [repr(list(dict.fromkeys(xs)))]
    return task(ctx, "dedupe", text, f"dedupe:{xs}", [write("unique.py", source), run("unique.py")],
                answer_with(f"unique({xs}) = {out[0]}.", out), out, out, main="unique.py")


def binary(ctx: Ctx) -> Task:
    numbers = ctx.rng.sample(range(1, 1025), ctx.rng.randint(2, 4))
    text = ctx.pick([f"Write to_binary(n) in Python without bin() and convert {', '.join(map(str, numbers))}.",
                     f"Convert {numbers} to binary in Python with your own function, and check against bin()."])
    source = code(f'''
        def to_binary(n):
            digits = ""
            while n > 0:
                digits = str(n % 2) + digits
                n //= 2
            return digits or "0"


        for n in {numbers}:
            print(n, to_binary(n), to_binary(n) == bin(n)[2:])
        ''')
    out = [f"{n} {bin(n)[2:]} True" for n in numbers]
    return task(ctx, "binary", text, f"binary:{numbers}", [write("binary.py", source), run("binary.py")],
                answer_with("; ".join(f"{n} is {bin(n)[2:]}" for n in numbers) + " (each matches bin()).", out),
                [bin(n)[2:] for n in numbers], out, main="binary.py")


def quick_compute(ctx: Ctx) -> Task:
    """A one-shot question answered with run_python(code=...) and no file."""
    kind = ctx.pick(["power", "sum_squares", "product"])
    if kind == "power":
        a, b = ctx.rng.randint(2, 9), ctx.rng.randint(10, 60)
        text, snippet, value = f"What is {a} to the power {b}? Use Python.", f"print({a} ** {b})\n", a ** b
    elif kind == "sum_squares":
        n = ctx.rng.randint(10, 1000)
        text = f"What is the sum of the squares of 1..{n}? Compute it with Python."
        snippet, value = f"print(sum(i * i for i in range(1, {n} + 1)))\n", sum(i * i for i in range(1, n + 1))
    else:
        xs = [ctx.rng.randint(2, 30) for _ in range(ctx.rng.randint(3, 5))]
        text = f"Multiply {', '.join(map(str, xs))} together in Python."
        snippet, value = f"print(math.prod({xs}))\n", math.prod(xs)
        snippet = "import math\n\n" + snippet
    return task(ctx, "quick_compute", text, f"quick:{text}", [Call("run_python", {"code": snippet})],
                answer_with(f"The result is {value}.", [str(value)]), [str(value)], [str(value)])


FAMILIES = [gcd_lcm, factorial_digits, palindromes, caesar, collatz, leap_years, temperatures, bubble_sort_tests,
            binary_search_tests, run_length, anagrams, perfect_numbers, matrix, csv_stats, pascal, word_count,
            stack_tests, dedupe, binary, quick_compute]
