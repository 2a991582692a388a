"""Untrusted model, tool and user text made safe to show, and the page's small HTML fragments.

Pure functions on strings and plain data; knows nothing of gradio, torch or how a run is produced. Every
piece of model, tool or user text that reaches a panel goes through escape_html (HTML panels),
literal_markdown (chat prose) or fence (chat code blocks): it is shown as text, never as markup.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any, Mapping, Sequence

# Characters that can reorder or hide text on screen (Trojan-Source style): bidi embeddings, overrides,
# isolates and marks, plus zero-width characters and the byte-order mark.
_INVISIBLE = frozenset(
    [0x061C, 0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x2028, 0x2029, 0xFEFF]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)


def _escape_char(ch: str) -> str:
    code = ord(ch)
    if ch in "\n\t":
        return ch
    if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF or code in _INVISIBLE:  # lone surrogate (from bad UTF-8) or bidi/invisible
        return f"\\u{code:04x}"
    return ch


_NEEDS_ESCAPE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff" + "".join(map(chr, _INVISIBLE)) + "]")


def escape_text(text: str | bytes) -> str:
    """Make text safe to show: control, bidi, invisible characters and invalid UTF-8 become visible escapes."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", errors="backslashreplace")
    text = text.replace("\r\n", "\n")
    return _NEEDS_ESCAPE.sub(lambda m: _escape_char(m.group(0)), text)


def escape_html(text: str | bytes) -> str:
    """escape_text, then HTML-escaped so it can sit inside an element."""
    return html.escape(escape_text(text), quote=True)


# Every ASCII punctuation mark Markdown (CommonMark + GFM: emphasis, links, images, autolinks, tables,
# strike-through, headings, lists, LaTeX `$`) could read as syntax, backslash-escaped. `&`, `<`, `>` become
# entities instead (a backslash before an entity would show the entity's letters).
_MARKDOWN_PUNCT = re.compile(r"""([!"#$%'()*+,\-./:=?@\[\\\]^_`{|}~])""")


_LEADING_BLANKS = re.compile(r"^[ \t]+", re.MULTILINE)


def literal_markdown(text: str | bytes) -> str:
    """Text for a Markdown panel (the chat) that renders exactly as typed: no markup, links, images or HTML.
    Leading indentation becomes no-break spaces (kept on screen, never read as a code block)."""
    text = _MARKDOWN_PUNCT.sub(r"\\\1", escape_text(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # An entity, not the character: renderers trim a paragraph's leading whitespace, no-break spaces included.
    return _LEADING_BLANKS.sub(lambda m: m.group(0).replace("\t", "    ").replace(" ", "&#160;"), text)


def fence(code: str, language: str = "") -> str:
    """A Markdown code block whose fence is longer than any backtick run inside the code."""
    code = escape_text(code)
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    bar = "`" * max(3, longest + 1)
    return f"{bar}{language}\n{code.rstrip(chr(10))}\n{bar}"


_CODE_KEYS = ("code", "source", "command", "content", "new_text", "old_text")


def tool_call_markdown(name: str, arguments: Mapping[str, Any]) -> str:
    """Show a tool call's arguments: multi-line strings (code, files) as code blocks, the rest as JSON."""
    code_like = {k: v for k, v in arguments.items() if isinstance(v, str) and ("\n" in v or k in _CODE_KEYS)}
    plain = {k: v for k, v in arguments.items() if k not in code_like}
    parts = []
    if plain:
        parts.append(fence(json.dumps(plain, ensure_ascii=False, indent=1, default=str), "json"))
    for key, value in code_like.items():
        language = "python" if key in ("code", "source") or name.endswith("python") else \
            "bash" if key == "command" else ""
        parts.append(f"{literal_markdown(key)}\n{fence(value, language)}")
    return "\n\n".join(parts) or "_(no arguments)_"


def short_token(token: str, max_chars: int = 16) -> str:
    """A token as a quoted, escaped, bounded string: for divergence notes and table cells."""
    shown = escape_text(token).replace("\n", "\\n").replace("\t", "\\t")
    if len(shown) > max_chars:
        shown = shown[: max_chars - 1] + "…"
    return f"“{shown}”"


def divergence_note(divergence: Mapping[str, Any] | None) -> str | None:
    """'token 12: baseline “a” vs drafter “b”' for a step whose two outputs differ; None when identical."""
    if not divergence:
        return None
    return (f"token {divergence['index']}: baseline {short_token(str(divergence.get('baseline_token') or '(end)'))} "
            f"vs drafter {short_token(str(divergence.get('drafter_token') or '(end)'))}")


# ---- token provenance ----

def provenance_html(token_texts: Sequence[str], provenance: Sequence[bool] | None,
                    draft_rejected: Sequence[bool] | None = None) -> str:
    """One span per token: accepted drafter token, the target's token where a draft was refused, or the
    target's token where no draft was tried; with a legend and the counts."""
    if provenance is None:
        spans = "".join(f'<span class="tok tok-plain">{escape_html(t)}</span>' for t in token_texts)
        return '<div class="prov-note">This run had no drafter: every token is the target\'s own.</div>' \
            f'<div class="prov-text">{spans}</div>'
    if len(provenance) != len(token_texts):
        raise ValueError(f"provenance has {len(provenance)} marks for {len(token_texts)} tokens; pass one per token.")
    if draft_rejected is not None and len(draft_rejected) != len(token_texts):
        raise ValueError(f"draft_rejected has {len(draft_rejected)} marks for {len(token_texts)} tokens; "
                         "pass one per token or None.")
    rejected = draft_rejected or [False] * len(token_texts)
    classes = ["tok-draft" if drafted else "tok-rejected" if refused else "tok-target"
               for drafted, refused in zip(provenance, rejected)]
    spans = "".join(f'<span class="tok {cls}">{escape_html(t)}</span>' for t, cls in zip(token_texts, classes))
    legend = ['<span class="tok tok-draft">drafter, accepted</span>']
    if draft_rejected is not None:
        legend.append('<span class="tok tok-rejected">target, draft refused</span>')
    own = ", no draft tried" if draft_rejected is not None else "'s own"
    legend.append(f'<span class="tok tok-target">target{own}</span>')
    accepted, tried = sum(provenance), sum(provenance) + sum(rejected)
    share = accepted / len(provenance) if provenance else 0.0
    note = f"{accepted} of {len(provenance)} tokens ({share:.0%}) came from the drafter"
    if draft_rejected is not None:
        note += f"; {accepted} of {tried} positions where a draft was tried were accepted" if tried else \
            "; no draft was tried"
    return (f'<div class="prov-legend">{"".join(legend)}</div><div class="prov-note">{note}.</div>'
            f'<div class="prov-text">{spans}</div>')


# ---- run summary and status lines ----

def _fmt_s(value: Any) -> str:
    return f"{value:.2f} s" if isinstance(value, (int, float)) else "–"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def speedup_cell(speedup: Any, compact: bool = False) -> tuple[str, str]:
    """(text, tone) of a speedup: a win is 'good', a slowdown 'bad' and says so in words and an arrow, not
    colour only. `compact` (table cells) keeps the word for slowdowns only."""
    value = _number(speedup)
    if value is None or value <= 0:
        return "–", ""
    if value >= 1:
        return (f"▲ {value:.2f}×" if compact else f"▲ {value:.2f}× faster"), "good"
    return f"▼ {value:.2f}× slower", "bad"


def summary_html(totals: Mapping[str, Any] | None, acceptance: float | None = None) -> str:
    """Run totals (agents.report.run_totals) as labelled numbers; a slowdown and time lost are flagged as
    clearly as a win, and stopped steps left out of the totals are named."""
    totals = totals or {}
    speed_text, speed_tone = speedup_cell(totals.get("speedup"))
    saved = _number(totals.get("saved_s"))
    if saved is None:
        saved_label, saved_text, saved_tone = "Time saved", "–", ""
    elif saved >= 0:
        saved_label, saved_text, saved_tone = "Time saved", f"{saved:.2f} s", "good" if saved > 0 else ""
    else:
        saved_label, saved_text, saved_tone = "Time lost", f"{-saved:.2f} s", "bad"
    excluded = list(totals.get("excluded_steps") or [])
    steps = totals.get("steps")
    cells = [
        ("LLM time, target only", _fmt_s(totals.get("baseline_s")), ""),
        ("LLM time, with drafter", _fmt_s(totals.get("drafter_s")), ""),
        ("Overall speedup", speed_text, speed_tone),
        (saved_label, saved_text, saved_tone),
        ("Drafter acceptance", f"{acceptance:.0%}" if isinstance(acceptance, (int, float)) else "–", ""),
        ("Tool time", _fmt_s(totals.get("tool_s")), ""),
        ("Steps", "–" if steps is None else str(steps), ""),
    ]
    body = "".join(f'<div class="cell"><div class="label">{label}</div><div class="value {tone}">{value}</div></div>'
                   for label, value, tone in cells)
    notes = []
    if excluded:
        names = ", ".join(str(i) for i in excluded)
        notes.append(f'<div class="summary-note warn">Stopped step{"s" if len(excluded) > 1 else ""} {names}: '
                     "cut short, so left out of the speedup and time saved.</div>")
    if saved_tone == "bad":
        notes.append('<div class="summary-note bad">With the drafter this run was slower than the target alone.</div>')
    return f'<div class="summary-grid">{body}</div>{"".join(notes)}'


def engine_line(info: Mapping[str, Any] | None) -> str:
    """What serves the model, from Engine.describe(): engine, decode mode and why CUDA graphs were not used."""
    if not info:
        return ""
    parts = []
    for key, label in (("engine", "engine"), ("decode", "decode"), ("device", "device"), ("gpu", "GPU"),
                       ("dtype", "dtype")):
        if info.get(key):
            parts.append(f"{label} <code>{escape_html(str(info[key]))}</code>")
    line = " · ".join(parts)
    if info.get("fallback_reason"):
        line += f' <span class="fallback">(CUDA graphs not used: {escape_html(str(info["fallback_reason"]))})</span>'
    return line


def status_html(phase: str, model: str, message: str, fraction: float | None, *, stand_in: str | None = None,
                info: Mapping[str, Any] | None = None) -> str:
    """The model line: loading with a progress bar, ready (with engine details and, for an offline stand-in,
    what it is), or failed with its cause and fix."""
    name = f"<code>{escape_html(model)}</code>" if model else "the model"
    text = escape_html(message)
    stand_in_html = "" if not stand_in else (
        f'<div class="stand-in"><b>Offline stand-in {name}, not Gemma 4\'s weights:</b> {escape_html(stand_in)}.</div>')
    if phase == "ready":
        details = engine_line(info)
        return (f'<div class="banner banner-ok"><b>Model {name} ready.</b> {text}'
                f'{f"<div class=engine-line>{details}</div>" if details else ""}{stand_in_html}</div>')
    if phase == "failed":
        return f'<div class="banner banner-error"><b>Loading {name} failed.</b> {text}{stand_in_html}</div>'
    if phase == "loading":
        bar = "" if fraction is None else \
            f'<div class="load-bar"><span style="width:{max(0.0, min(1.0, fraction)) * 100:.0f}%"></span></div>'
        percent = "" if fraction is None else f" ({fraction:.0%})"
        return f'<div class="banner banner-info">Loading {name}{percent}: {text} The page works meanwhile.{bar}</div>'
    return f'<div class="banner banner-info">{text}</div>'


def run_state_html(text: str, tone: str = "") -> str:
    """The one-line run state under the header; `text` is escaped here."""
    return f'<div class="run-state {tone}">{escape_html(text)}</div>'
