"""The page's pure helpers: escaping untrusted text, code fences, provenance spans, chart and table data."""

from __future__ import annotations

import re

import pytest

from ui.render import (
    acceptance_html, chart_svg, escape_html, escape_text, fence, provenance_html, status_html, summary_html,
    table_frame, tool_call_markdown,
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


def test_fence_is_longer_than_any_backtick_run_inside():
    block = fence("x = '```'\n````", "python")
    assert block.startswith("`````python\n") and block.endswith("\n`````")


def test_tool_call_shows_code_as_code_and_the_rest_as_json():
    md = tool_call_markdown("run_python", {"code": "for i in range(3):\n    print(i)", "timeout": 5})
    assert "```json" in md and '"timeout": 5' in md
    assert "```python\nfor i in range(3):\n    print(i)\n```" in md


def test_provenance_marks_each_token_and_escapes_it():
    html = provenance_html(["<b>", "x\u202e", "y"], [True, False, True])
    spans = re.findall(r'<span class="tok (tok-\w+)">(.*?)</span>', html.split('class="prov-text"')[1])
    assert spans == [("tok-draft", "&lt;b&gt;"), ("tok-target", "x\\u202e"), ("tok-draft", "y")]
    assert "2 of 3 tokens (67%)" in html


def test_provenance_rejects_mismatched_marks():
    with pytest.raises(ValueError, match="one per token"):
        provenance_html(["a", "b"], [True])


def test_provenance_without_drafter_says_so():
    assert "no drafter" in provenance_html(["a"], None)


def test_acceptance_bars_follow_positions():
    html = acceptance_html([1.0, 0.5, 0.0])
    assert re.findall(r"width:([\d.]+)%", html) == ["100.0", "50.0", "0.0"]
    assert ">#3<" in html


def test_chart_draws_a_baseline_and_a_drafter_bar_per_step_scaled_to_the_slowest():
    svg = chart_svg([{"step": 1, "baseline_s": 2.0, "drafter_s": 1.0}, {"step": 2, "baseline_s": 1.0, "drafter_s": 0.5}])
    heights = {cls: [float(h) for h in re.findall(rf'height="([\d.]+)" class="{cls}"><title>', svg)]
               for cls in ("bar-baseline", "bar-drafter")}
    base, draft = heights["bar-baseline"], heights["bar-drafter"]
    assert len(base) == len(draft) == 2
    assert base[0] == pytest.approx(2 * draft[0], rel=1e-2) and base[0] == pytest.approx(2 * base[1], rel=1e-2)


def test_chart_skips_a_missing_side_in_single_mode():
    svg = chart_svg([{"step": 1, "baseline_s": None, "drafter_s": 0.4}])
    assert svg.count('class="bar-drafter"><title>') == 1 and 'class="bar-baseline"><title>' not in svg


def test_table_formats_step_rows_for_display():
    frame = table_frame([{"step": 1, "kind": "tool_call", "new_tokens": 12, "baseline_s": 1.23456, "drafter_s": 0.5,
                          "speedup": 2.469, "acceptance": 0.75, "mean_accepted_length": 2.5, "identical": False}])
    assert list(frame.iloc[0]) == [1, "tool", 12, "1.235", "0.500", "2.47×", "75%", "2.50", "NO"]
    assert table_frame([]).shape == (0, 9)


def test_summary_shows_totals_and_dashes_when_empty():
    html = summary_html({"baseline_s": 4.0, "drafter_s": 2.0, "saved_s": 2.0, "speedup": 2.0, "tool_s": 0.5, "steps": 3})
    assert "4.00s" in html and "2.00×" in html and "0.50s" in html and ">3<" in html
    assert summary_html(None).count("–") >= 5


@pytest.mark.parametrize("phase,needle", [("loading", "Loading"), ("ready", "ready"), ("failed", "failed")])
def test_status_escapes_the_loader_message(phase, needle):
    html = status_html(phase, "tiny", "<img src=x> cause; fix", 0.5)
    assert needle in html and "<img" not in html
