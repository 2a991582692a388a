"""The page's text and HTML helpers: untrusted text shown as text, provenance spans, flags, status lines."""

from __future__ import annotations

import html
import re

import pytest
from markdown_it import MarkdownIt

from ui.render import (
    divergence_note, escape_html, escape_text, fence, literal_markdown, provenance_html, speedup_cell, status_html,
    summary_html, tool_call_markdown,
)

ESCAPES = [
    ("plain ascii", "print('hi')", "print('hi')"),
    ("newline and tab kept", "a\n\tb", "a\n\tb"),
    ("crlf normalised", "a\r\nb", "a\nb"),
    ("bell and escape", "x\x07y\x1b[31mz", "x\\x07y\\x1b[31mz"),
    ("nul", "a\x00b", "a\\x00b"),
    ("lone carriage return", "done\rfake", "done\\x0dfake"),
    ("delete and c1", "\x7f\x85\x9b", "\\x7f\\x85\\x9b"),
    ("bidi override U+202E", "abc\u202edcba", "abc\\u202edcba"),
    ("bidi isolates", "\u2066x\u2069", "\\u2066x\\u2069"),
    ("zero width and bom", "a\u200bb\ufeff", "a\\u200bb\\ufeff"),
    ("lone surrogate", "bad\udcff!", "bad\\udcff!"),
    ("unicode kept", "héllo 世界 🙂", "héllo 世界 🙂"),
]


@pytest.mark.parametrize("name,raw,shown", ESCAPES, ids=[e[0] for e in ESCAPES])
def test_untrusted_text_is_shown_escaped(name, raw, shown):
    assert escape_text(raw) == shown


def test_invalid_utf8_bytes_become_visible_escapes():
    assert escape_text(b"ok \xff\xfe end") == "ok \\xff\\xfe end"


def test_escaped_text_is_encodable_and_free_of_controls():
    nasty = "".join(chr(c) for c in range(0, 0x250)) + "\u202e\udc80\u2067"
    shown = escape_text(nasty)
    shown.encode("utf-8")  # no lone surrogates left
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", shown)


def test_html_escape_makes_markup_inert():
    assert escape_html('<script>alert("x")</script>\u202e') == \
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;\\u202e"


# Text a model or a visitor could send, each of which Markdown or HTML would otherwise turn into something
# other than the same characters: tags, links, images, autolinks, emphasis, lists, quotes, tables, LaTeX.
LITERALS = [
    ("html tags", '<img src=x onerror="alert(1)"> <a href="https://example.com/">x</a> <u>u</u>'),
    ("markdown link and image", "[click](https://example.com/) ![img](https://example.com/x.png)"),
    ("autolinks", "https://example.com/ www.example.com me@example.com <https://example.com/>"),
    ("emphasis and code", "**bold** _it_ `code` ~~gone~~"),
    ("block syntax", "# heading\n1. item\n- item\n> quote\n***\n| a | b |\n|---|---|"),
    ("entities stay letters", "&amp; &copy; &#60;b&#62;"),
    ("latex and backslashes", "$$x^2$$ \\(y\\) \\\\"),
    ("indentation kept, not code", "    four spaces\n\ttab"),
]


def rendered_text(markdown: str) -> tuple[str, set[str]]:
    """What a CommonMark renderer (with GFM tables and strike-through) shows, and which tags it made."""
    out = MarkdownIt("commonmark", {"breaks": True}).enable(["table", "strikethrough"]).render(markdown)
    tags = set(re.findall(r"<(\w+)", out))
    text = html.unescape(re.sub(r"<[^>]+>", "", out.replace("<br />\n", "\n")))
    return text.rstrip("\n"), tags


@pytest.mark.parametrize("name,raw", LITERALS, ids=[c[0] for c in LITERALS])
def test_literal_markdown_renders_exactly_the_text(name, raw):
    text, tags = rendered_text(literal_markdown(raw))
    assert tags <= {"p", "br"}
    expected = raw.replace("\t", "    ")
    assert text.replace("\u00a0", " ") == expected


def test_fence_is_longer_than_any_backtick_run_inside():
    block = fence("x = '```'\n````", "python")
    assert block.startswith("`````python\n") and block.endswith("\n`````")


def test_tool_call_shows_code_as_code_and_the_rest_as_json():
    md = tool_call_markdown("run_python", {"code": "for i in range(3):\n    print(i)", "timeout": 5})
    assert "```json" in md and '"timeout": 5' in md
    assert "```python\nfor i in range(3):\n    print(i)\n```" in md


def test_provenance_marks_accepted_refused_and_untried_tokens_and_escapes_them():
    html_ = provenance_html(["<b>", "x\u202e", "y", "z"], [True, False, True, False], [False, True, False, False])
    spans = re.findall(r'<span class="tok (tok-\w+)">(.*?)</span>', html_.split('class="prov-text"')[1])
    assert spans == [("tok-draft", "&lt;b&gt;"), ("tok-rejected", "x\\u202e"), ("tok-draft", "y"), ("tok-target", "z")]
    assert "2 of 4 tokens (50%) came from the drafter" in html_
    assert "2 of 3 positions where a draft was tried were accepted" in html_


def test_provenance_without_rejection_marks_still_works():
    html_ = provenance_html(["a", "b"], [True, False])
    assert "tok-rejected" not in html_ and "1 of 2 tokens (50%)" in html_


@pytest.mark.parametrize("provenance,rejected", [([True], None), ([True, False], [True])])
def test_provenance_rejects_mismatched_marks(provenance, rejected):
    with pytest.raises(ValueError, match="one per token"):
        provenance_html(["a", "b"], provenance, rejected)


def test_provenance_without_drafter_says_so():
    assert "no drafter" in provenance_html(["a"], None)


@pytest.mark.parametrize("speedup,compact,text,tone", [
    (2.469, False, "▲ 2.47× faster", "good"),
    (2.469, True, "▲ 2.47×", "good"),
    (1.0, True, "▲ 1.00×", "good"),
    (0.22, False, "▼ 0.22× slower", "bad"),
    (0.22, True, "▼ 0.22× slower", "bad"),
    (None, False, "–", ""),
    (0.0, False, "–", ""),
])
def test_a_slowdown_is_flagged_as_clearly_as_a_win(speedup, compact, text, tone):
    assert speedup_cell(speedup, compact) == (text, tone)


def test_summary_shows_totals_and_dashes_when_empty():
    out = summary_html({"baseline_s": 4.0, "drafter_s": 2.0, "saved_s": 2.0, "speedup": 2.0, "tool_s": 0.5,
                        "steps": 3}, 0.75)
    assert "4.00 s" in out and "2.00× faster" in out and "0.50 s" in out and ">3<" in out and "75%" in out
    assert 'class="value good">▲ 2.00× faster' in out and "Time saved" in out
    assert summary_html(None).count("–") >= 6


def test_summary_flags_time_lost_and_names_the_stopped_steps():
    out = summary_html({"baseline_s": 4.0, "drafter_s": 580.3, "saved_s": -576.32, "speedup": 0.22, "tool_s": 0.0,
                        "steps": 4, "excluded_steps": [2, 4]})
    assert 'Time lost</div><div class="value bad">576.32 s' in out
    assert 'class="value bad">▼ 0.22× slower' in out and "-576" not in out
    assert "Stopped steps 2, 4: cut short, so left out of the speedup and time saved." in out
    assert "slower than the target alone" in out


def test_divergence_note_names_the_position_and_both_tokens_escaped():
    note = divergence_note({"index": 12, "baseline_token": " foo\n", "drafter_token": "<b>\u202e"})
    assert note == "token 12: baseline “ foo\\n” vs drafter “<b>\\u202e”"
    assert divergence_note(None) is None


@pytest.mark.parametrize("phase,needle", [("loading", "Loading"), ("ready", "ready"), ("failed", "failed")])
def test_status_escapes_the_loader_message(phase, needle):
    out = status_html(phase, "tiny", "<img src=x> cause; fix", 0.5)
    assert needle in out and "<img" not in out


def test_status_shows_the_stand_in_sentence_and_the_engine_details():
    out = status_html("ready", "mini", "Target mini.", 1.0, stand_in="a small model <trained> here",
                      info={"engine": "fast", "decode": "eager", "fallback_reason": "no GPU <here>"})
    assert "Offline stand-in" in out and "a small model &lt;trained&gt; here" in out
    assert "engine <code>fast</code>" in out and "decode <code>eager</code>" in out
    assert "CUDA graphs not used: no GPU &lt;here&gt;" in out
    assert "stand-in" not in status_html("ready", "e2b", "Target e2b.", 1.0, info={"engine": "fast"})
