"""The file tools the model calls (list, read, search, write, edit, insert) and how their output reads.

Each returns text for the model within its own character budget and raises ToolError with what to do
instead. Reads show numbered lines and say "lines X-Y of N" so the model can page; edits replace one
exact, unique snippet or insert after a line, and echo the changed region with line numbers. All I/O goes
through agents.files (regular files only, never blocking). Knows nothing of models or LangGraph.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from agents.files import (
    ToolError, kind_of, make_parents, read_regular, relative, resolve_in_workspace, walk, write_regular,
)

READ_LINES = 200  # read_file's default page
READ_CHARS = 12_000  # budget of one read_file page
LINE_CHARS = 1_000  # a longer line is shown cut
READ_CAP_BYTES = 8 << 20  # read_file and the edit tools load at most this much of a file
WRITE_CAP_BYTES = 256 << 10  # write_file refuses larger contents
LIST_ENTRIES = 200
LIST_CHARS = 8_000
SEARCH_MATCHES = 60
SEARCH_CHARS = 8_000
SEARCH_FILE_BYTES = 1 << 20  # search looks at the first MiB of each file
EDIT_CONTEXT_LINES = 3  # lines shown around an edit
EDIT_SHOWN_LINES = 40
EDIT_CHARS = 4_000
_BINARY_PROBE = 8192
_NUMBERED = re.compile(r"\s*\d+\t")  # a line copied from read_file's output with its number


# ---- text helpers ----

def split_lines(text: str) -> list[str]:
    """The file's lines as editors count them: split on \\n only, a final newline ends the last line."""
    if not text:
        return []
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def numbered(lines: list[str], first: int) -> list[str]:
    """`N<tab>line` for each line, long lines cut."""
    out = []
    for n, line in enumerate(lines, first):
        if len(line) > LINE_CHARS:
            line = f"{line[:LINE_CHARS]}… [line cut: {len(line) - LINE_CHARS} more characters]"
        out.append(f"{n}\t{line}")
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}{'es' if word.endswith('ch') else 's'}"


def _load_text(workspace: Path, path: str, *, for_edit: bool = False) -> tuple[Path, str, str, bool]:
    """(file, shown name, text, whether the cap cut it) of a text file in the workspace."""
    file = resolve_in_workspace(workspace, path)
    shown = relative(workspace, file)
    data, size = read_regular(file, shown, READ_CAP_BYTES)
    if b"\x00" in data[:_BINARY_PROBE]:
        raise ToolError(f"{shown!r} looks binary ({size} bytes); the file tools show text files only.")
    cut = size > len(data)
    if for_edit:
        if cut:
            raise ToolError(f"{shown!r} is {size} bytes; the edit tools change files up to {READ_CAP_BYTES} bytes.")
        try:
            return file, shown, data.decode("utf-8"), False
        except UnicodeDecodeError:
            raise ToolError(f"{shown!r} is not valid UTF-8; rewrite it with write_file instead.") from None
    return file, shown, data.decode("utf-8", errors="replace"), cut


# ---- tools ----

def list_files(workspace: Path, path: str = ".", pattern: str | None = None) -> str:
    root = resolve_in_workspace(workspace, path)
    if not root.is_dir():
        raise ToolError(f"{path!r} is not a folder in the workspace; give a folder, or use read_file for a file.")
    found = walk(root)
    lines, chars, hidden = [], 0, 0
    for entry in found.entries:
        name = relative(workspace, entry.path)
        if pattern and not fnmatch.fnmatchcase(name if "/" in pattern else entry.path.name, pattern):
            continue
        what = f"{entry.size} bytes" if kind_of(entry.mode) == "a regular file" else kind_of(entry.mode)
        line = f"{name}  ({what})"
        if len(lines) >= LIST_ENTRIES or chars + len(line) > LIST_CHARS:
            hidden += 1
            continue
        lines.append(line)
        chars += len(line) + 1
    if hidden:
        lines.append(f"… and {hidden} more; list a folder or give a pattern to see them.")
    if found.cut:
        lines.append(f"(listing incomplete: {found.cut})")
    if not lines:
        return f"(no files match {pattern!r})" if pattern else "(no files yet)"
    return "\n".join(lines)


def read_file(workspace: Path, path: str, offset: int = 1, limit: int = READ_LINES) -> str:
    _, shown, text, cut = _load_text(workspace, path)
    lines = split_lines(text)
    total = f"at least {len(lines)} (only the first {READ_CAP_BYTES} bytes are read)" if cut else str(len(lines))
    if not lines:
        return f"{shown} is empty (0 lines)."
    if offset < 1 or limit < 1:
        raise ToolError("offset counts from 1 and limit must be at least 1.")
    if offset > len(lines):
        raise ToolError(f"{shown} has {len(lines)} lines; give an offset from 1 to {len(lines)}.")
    page = numbered(lines[offset - 1:offset - 1 + limit], offset)
    shown_lines, chars = [], 0
    for line in page:  # the budget cuts at a line boundary; at least one line is always shown
        if shown_lines and chars + len(line) + 1 > READ_CHARS:
            break
        shown_lines.append(line)
        chars += len(line) + 1
    last = offset + len(shown_lines) - 1
    more = f" (read on with offset={last + 1})" if last < len(lines) else ""
    return f"{shown}, lines {offset}-{last} of {total}{more}:\n" + "\n".join(shown_lines)


def search(workspace: Path, text: str, path: str = ".") -> str:
    if not isinstance(text, str) or not text:
        raise ToolError("Give the text to search for.")
    if "\n" in text:
        raise ToolError("search matches within one line; give text without a newline.")
    top = resolve_in_workspace(workspace, path)
    if top.is_dir():
        found = walk(top)
        files, cut = [e.path for e in found.entries if kind_of(e.mode) == "a regular file"], found.cut
    else:
        files, cut = [top], None
    matches, chars, more, in_files = [], 0, 0, set()
    for file in files:
        shown = relative(workspace, file)
        try:
            data, _ = read_regular(file, shown, SEARCH_FILE_BYTES)
        except ToolError:
            if file == top:
                raise
            continue
        if b"\x00" in data[:_BINARY_PROBE] or text.encode() not in data:
            continue
        for n, line in enumerate(split_lines(data.decode("utf-8", errors="replace")), 1):
            if text not in line:
                continue
            in_files.add(shown)
            shown_line = line.strip()
            shown_line = shown_line if len(shown_line) <= 200 else shown_line[:200] + "…"
            hit = f"{shown}:{n}: {shown_line}"
            if len(matches) >= SEARCH_MATCHES or chars + len(hit) > SEARCH_CHARS:
                more += 1
                continue
            matches.append(hit)
            chars += len(hit) + 1
    if not matches:
        where = "the workspace" if path.strip() in (".", "") else repr(path)
        return f"No match for {text!r} in {where}." + (f" (search incomplete: {cut})" if cut else "")
    head = f"{_plural(len(matches) + more, 'match')} in {_plural(len(in_files), 'file')}:"
    tail = [f"… and {more} more; search a folder or a file to see them."] if more else []
    tail += [f"(search incomplete: {cut})"] if cut else []
    return "\n".join([head, *matches, *tail])


def write_file(workspace: Path, path: str, content: str) -> str:
    data = content.encode("utf-8")
    if len(data) > WRITE_CAP_BYTES:
        raise ToolError(f"The content is {len(data)} bytes; write_file takes at most {WRITE_CAP_BYTES}. "
                        "Split it over several files.")
    file = resolve_in_workspace(workspace, path)
    shown = relative(workspace, file)
    if file.is_dir():
        raise ToolError(f"{shown!r} is a folder; give a file name.")
    make_parents(workspace, file, shown)
    created = write_regular(file, shown, data)
    return f"{'Created' if created else 'Rewrote'} {shown} ({_plural(len(split_lines(content)), 'line')})."


def _show_region(shown: str, lines: list[str], first: int, last: int) -> str:
    """Lines first..last (1-based, inclusive) with context, as the model sees the file now."""
    start, end = max(1, first - EDIT_CONTEXT_LINES), min(len(lines), last + EDIT_CONTEXT_LINES)
    if end < start:
        return f"{shown} is now empty."
    body = numbered(lines[start - 1:end], start)
    if len(body) > EDIT_SHOWN_LINES:
        half = EDIT_SHOWN_LINES // 2
        body = body[:half] + [f"… ({len(body) - 2 * half} lines not shown)"] + body[-half:]
    text = "\n".join(body)
    if len(text) > EDIT_CHARS:
        text = text[:EDIT_CHARS] + "…"
    return f"Lines {start}-{end} now:\n{text}"


def edit_file(workspace: Path, path: str, old_text: str, new_text: str) -> str:
    if old_text == "":
        raise ToolError("old_text is empty; to add lines use insert_lines, to write a whole file use write_file.")
    if old_text == new_text:
        raise ToolError("old_text and new_text are the same; nothing would change.")
    file, shown, text, _ = _load_text(workspace, path, for_edit=True)
    count = text.count(old_text)
    if count == 0:
        hint = "Copy it exactly from read_file (same spaces and indentation)"
        if all(_NUMBERED.match(line) for line in split_lines(old_text) if line.strip()):
            hint = "It seems to include read_file's line numbers; leave them out"
        raise ToolError(f"old_text was not found in {shown}. {hint}.")
    if count > 1:
        at = []
        pos = text.find(old_text)
        while pos != -1 and len(at) < 10:
            at.append(str(text.count("\n", 0, pos) + 1))
            pos = text.find(old_text, pos + 1)
        raise ToolError(f"old_text occurs {count} times in {shown} (at lines {', '.join(at)}); "
                        "include more of the surrounding lines so that it occurs once.")
    pos = text.find(old_text)
    new = text[:pos] + new_text + text[pos + len(old_text):]
    data = new.encode("utf-8")
    if len(data) > WRITE_CAP_BYTES:
        raise ToolError(f"The file would be {len(data)} bytes; files are limited to {WRITE_CAP_BYTES}.")
    write_regular(file, shown, data)
    first = text.count("\n", 0, pos) + 1
    old_count = max(1, len(split_lines(old_text)))
    new_lines = split_lines(new)
    changed = len(split_lines(new_text))
    summary = (f"Edited {shown} at line {first}: {_plural(old_count, 'line')} replaced by "
               f"{_plural(changed, 'line')}; the file has {_plural(len(new_lines), 'line')}.")
    return summary + "\n" + _show_region(shown, new_lines, first, first + max(changed, 1) - 1)


def insert_lines(workspace: Path, path: str, after_line: int, text: str) -> str:
    if text == "":
        raise ToolError("text is empty; give the lines to insert.")
    file, shown, old, _ = _load_text(workspace, path, for_edit=True)
    lines = split_lines(old)
    if not 0 <= after_line <= len(lines):
        raise ToolError(f"{shown} has {_plural(len(lines), 'line')}; after_line must be 0 (top) to {len(lines)} (end).")
    added = split_lines(text) or [""]
    new_lines = lines[:after_line] + added + lines[after_line:]
    new = "\n".join(new_lines) + ("\n" if old.endswith("\n") or not old else "")
    data = new.encode("utf-8")
    if len(data) > WRITE_CAP_BYTES:
        raise ToolError(f"The file would be {len(data)} bytes; files are limited to {WRITE_CAP_BYTES}.")
    write_regular(file, shown, data)
    summary = (f"Inserted {_plural(len(added), 'line')} after line {after_line} of {shown}; "
               f"the file has {_plural(len(new_lines), 'line')}.")
    return summary + "\n" + _show_region(shown, new_lines, after_line + 1, after_line + len(added))
