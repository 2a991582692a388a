"""agents.file_tools through Toolbox.call: paged reads, targeted edits, inserts, search, listing, argument types."""

from __future__ import annotations

import pytest

from agents.file_tools import LIST_ENTRIES, READ_LINES, SEARCH_MATCHES, WRITE_CAP_BYTES, split_lines
from agents.tools import Toolbox

FIVE = "one\ntwo\nthree\nfour\nfive\n"


@pytest.fixture
def box(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    return Toolbox(ws)


def put(box: Toolbox, path: str, content: str | bytes) -> None:
    file = box.workspace / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(content if isinstance(content, bytes) else content.encode())


@pytest.mark.parametrize("text, lines", [
    ("", []), ("a", ["a"]), ("a\n", ["a"]), ("a\n\n", ["a", ""]), ("a\nb", ["a", "b"]),
    ("a\r\nb\r\n", ["a\r", "b\r"]), ("x\x0cy\u2028z\n", ["x\x0cy\u2028z"]),  # only \n ends a line
])
def test_lines_are_counted_as_editors_count_them(text, lines):
    assert split_lines(text) == lines


@pytest.mark.parametrize("content, args, expected", [
    (FIVE, {}, "a.py, lines 1-5 of 5:\n1\tone\n2\ttwo\n3\tthree\n4\tfour\n5\tfive"),
    (FIVE, {"offset": 2, "limit": 2}, "a.py, lines 2-3 of 5 (read on with offset=4):\n2\ttwo\n3\tthree"),
    (FIVE, {"offset": 5}, "a.py, lines 5-5 of 5:\n5\tfive"),
    (FIVE, {"offset": "4", "limit": 1.0}, "a.py, lines 4-4 of 5 (read on with offset=5):\n4\tfour"),
    ("no newline", {}, "a.py, lines 1-1 of 1:\n1\tno newline"),
    ("", {}, "a.py is empty (0 lines)."),
    ("\tindented\n", {}, "a.py, lines 1-1 of 1:\n1\t\tindented"),
    ("x" * 1500 + "\n", {}, "a.py, lines 1-1 of 1:\n1\t" + "x" * 1000 + "… [line cut: 500 more characters]"),
])
def test_read_file_shows_numbered_lines_and_where_the_page_is(box, content, args, expected):
    put(box, "a.py", content)
    outcome = box.call("read_file", {"path": "a.py", **args})
    assert (outcome.output, outcome.is_error) == (expected, False)


def test_read_file_pages_by_default_and_says_how_to_go_on(box):
    put(box, "long.py", "".join(f"line {i}\n" for i in range(1, 451)))
    first = box.call("read_file", {"path": "long.py"}).output
    assert first.splitlines()[0] == f"long.py, lines 1-{READ_LINES} of 450 (read on with offset={READ_LINES + 1}):"
    assert len(first.splitlines()) == READ_LINES + 1 and first.splitlines()[-1] == f"{READ_LINES}\tline {READ_LINES}"
    last = box.call("read_file", {"path": "long.py", "offset": 401}).output
    assert last.splitlines()[0] == "long.py, lines 401-450 of 450:" and last.endswith("450\tline 450")


@pytest.mark.parametrize("content, args, fragment", [
    (FIVE, {"offset": 6}, "has 5 lines; give an offset from 1 to 5"),
    (FIVE, {"offset": 0}, "offset counts from 1"),
    (FIVE, {"limit": 0}, "limit must be at least 1"),
    (FIVE, {"offset": "two"}, "must be an integer"),
    (FIVE, {"offset": True}, "must be an integer"),
    (FIVE, {"offset": 2.5}, "must be an integer"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", {}, "looks binary"),
])
def test_bad_reads_are_errors_that_say_what_to_do(box, content, args, fragment):
    put(box, "a.py", content)
    outcome = box.call("read_file", {"path": "a.py", **args})
    assert outcome.is_error and fragment in outcome.output


def test_a_null_argument_counts_as_absent(box):
    put(box, "a.py", FIVE)
    assert box.call("read_file", {"path": "a.py", "offset": None, "limit": None}).output.startswith(
        "a.py, lines 1-5 of 5:")
    assert "needs the argument(s) 'path'" in box.call("read_file", {"path": None}).output


# ---- edits ----

@pytest.mark.parametrize("old_text, new_text, after, summary", [
    ("two\n", "TWO\n", "one\nTWO\nthree\nfour\nfive\n", "Edited a.py at line 2: 1 line replaced by 1 line; the file has 5 lines."),
    ("three", "3", "one\ntwo\n3\nfour\nfive\n", "Edited a.py at line 3: 1 line replaced by 1 line; the file has 5 lines."),
    ("two\nthree\n", "", "one\nfour\nfive\n", "Edited a.py at line 2: 2 lines replaced by 0 lines; the file has 3 lines."),
    ("five\n", "five\nsix\nseven\n", FIVE + "six\nseven\n",
     "Edited a.py at line 5: 1 line replaced by 3 lines; the file has 7 lines."),
])
def test_edit_replaces_one_exact_snippet_and_shows_the_region(box, old_text, new_text, after, summary):
    put(box, "a.py", FIVE)
    outcome = box.call("edit_file", {"path": "a.py", "old_text": old_text, "new_text": new_text})
    assert not outcome.is_error, outcome.output
    assert (box.workspace / "a.py").read_text() == after
    lines = outcome.output.splitlines()
    assert lines[0] == summary
    assert lines[1].startswith("Lines ") and lines[1].endswith(" now:")
    shown = [line.split("\t", 1) for line in lines[2:]]
    assert all(split_lines(after)[int(n) - 1] == text for n, text in shown)  # numbers match the new file


@pytest.mark.parametrize("content, old_text, new_text, fragment", [
    (FIVE, "six", "6", "old_text was not found in a.py. Copy it exactly"),
    (FIVE, "2\ttwo\n3\tthree", "x", "seems to include read_file's line numbers"),
    ("x = 1\ny = 2\nx = 1\n", "x = 1", "x = 3", "occurs 2 times in a.py (at lines 1, 3)"),
    (FIVE, "", "zero", "old_text is empty"),
    (FIVE, "one", "one", "nothing would change"),
    (b"caf\xe9\n", "caf", "x", "not valid UTF-8"),
])
def test_edits_that_cannot_be_placed_change_nothing(box, content, old_text, new_text, fragment):
    put(box, "a.py", content)
    before = (box.workspace / "a.py").read_bytes()
    outcome = box.call("edit_file", {"path": "a.py", "old_text": old_text, "new_text": new_text})
    assert outcome.is_error and fragment in outcome.output
    assert (box.workspace / "a.py").read_bytes() == before


@pytest.mark.parametrize("content, after_line, text, after", [
    (FIVE, 0, "zero", "zero\n" + FIVE),
    (FIVE, 2, "2.5\n2.7\n", "one\ntwo\n2.5\n2.7\nthree\nfour\nfive\n"),
    (FIVE, 5, "six\n", FIVE + "six\n"),
    ("a\nb", 2, "c", "a\nb\nc"),  # a file without a final newline keeps that
    ("", 0, "first", "first\n"),
    (FIVE, "1", "x", "one\nx\ntwo\nthree\nfour\nfive\n"),
])
def test_insert_lines_puts_text_after_the_given_line(box, content, after_line, text, after):
    put(box, "a.py", content)
    outcome = box.call("insert_lines", {"path": "a.py", "after_line": after_line, "text": text})
    assert not outcome.is_error, outcome.output
    assert (box.workspace / "a.py").read_text() == after
    assert outcome.output.startswith(f"Inserted {len(split_lines(text))} line")


@pytest.mark.parametrize("after_line, text, fragment", [
    (6, "x", "after_line must be 0 (top) to 5 (end)"), (-1, "x", "after_line must be 0"), (1, "", "text is empty"),
])
def test_insert_out_of_range_is_refused(box, after_line, text, fragment):
    put(box, "a.py", FIVE)
    outcome = box.call("insert_lines", {"path": "a.py", "after_line": after_line, "text": text})
    assert outcome.is_error and fragment in outcome.output and (box.workspace / "a.py").read_text() == FIVE


def test_edits_of_a_missing_file_say_so(box):
    for name, args in [("edit_file", {"old_text": "a", "new_text": "b"}), ("insert_lines", {"after_line": 0, "text": "a"})]:
        outcome = box.call(name, {"path": "nope.py", **args})
        assert outcome.is_error and "does not exist" in outcome.output


def test_write_says_created_or_rewrote_and_refuses_oversize(box):
    assert box.call("write_file", {"path": "d/e/f.py", "content": "a\nb\n"}).output == "Created d/e/f.py (2 lines)."
    assert box.call("write_file", {"path": "d/e/f.py", "content": ""}).output == "Rewrote d/e/f.py (0 lines)."
    assert (box.workspace / "d/e/f.py").read_text() == ""
    assert "is a folder" in box.call("write_file", {"path": "d/e", "content": "x"}).output
    put(box, "plain.txt", "x")
    assert "'plain.txt' is a regular file" in box.call("write_file", {"path": "plain.txt/a.py", "content": "x"}).output
    big = box.call("write_file", {"path": "big.py", "content": "a" * (WRITE_CAP_BYTES + 1)})
    assert big.is_error and not (box.workspace / "big.py").exists()


# ---- search and listing ----

def test_search_lists_file_line_and_text(box):
    put(box, "calc.py", "def add(a, b):\n    return a + b\n")
    put(box, "tests/test_calc.py", "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n")
    put(box, "blob.bin", b"\x00\x01add(")
    put(box, "__pycache__/calc.pyc", "add(")
    out = box.call("search", {"text": "add("}).output
    assert out.splitlines() == ["3 matches in 2 files:", "calc.py:1: def add(a, b):",
                                "tests/test_calc.py:3: def test_add():", "tests/test_calc.py:4: assert add(1, 2) == 3"]
    assert box.call("search", {"text": "add(", "path": "calc.py"}).output == "1 match in 1 file:\ncalc.py:1: def add(a, b):"
    assert box.call("search", {"text": "(a+)+$"}).output == "No match for '(a+)+$' in the workspace."  # not a regex
    assert "within one line" in box.call("search", {"text": "a\nb"}).output


def test_search_stops_at_its_budget_and_says_how_many_more(box):
    put(box, "many.py", "hit\n" * (SEARCH_MATCHES + 15))
    out = box.call("search", {"text": "hit"}).output.splitlines()
    assert out[0] == f"{SEARCH_MATCHES + 15} matches in 1 file:"
    assert len(out) == SEARCH_MATCHES + 2 and out[-1].startswith("… and 15 more")


def test_list_files_filters_by_glob_and_skips_caches(box):
    for path in ["a.py", "b.txt", "pkg/c.py", "pkg/tests/test_c.py", ".pytest_cache/x", "__pycache__/a.pyc"]:
        put(box, path, "x")
    assert box.call("list_files", {}).output.splitlines() == [
        "a.py  (1 bytes)", "b.txt  (1 bytes)", "pkg/c.py  (1 bytes)", "pkg/tests/test_c.py  (1 bytes)"]
    assert box.call("list_files", {"pattern": "*.py"}).output.splitlines() == [
        "a.py  (1 bytes)", "pkg/c.py  (1 bytes)", "pkg/tests/test_c.py  (1 bytes)"]
    assert box.call("list_files", {"pattern": "pkg/tests/*"}).output == "pkg/tests/test_c.py  (1 bytes)"
    assert box.call("list_files", {"path": "pkg/tests"}).output == "pkg/tests/test_c.py  (1 bytes)"
    assert box.call("list_files", {"pattern": "*.js"}).output == "(no files match '*.js')"
    assert "not a folder" in box.call("list_files", {"path": "a.py"}).output


def test_list_files_caps_its_entries(box):
    for i in range(LIST_ENTRIES + 7):
        put(box, f"f{i:04d}.py", "")
    out = box.call("list_files", {}).output.splitlines()
    assert len(out) == LIST_ENTRIES + 1 and out[-1] == "… and 7 more; list a folder or give a pattern to see them."
