"""Turn untrusted model and tool text into safe display strings, and step rows into chart and summary.

Pure functions on strings and plain data; knows nothing of gradio, torch or how a run is produced.
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


def fence(code: str, language: str = "") -> str:
    """A Markdown code block whose fence is longer than any backtick run inside the code."""
    code = escape_text(code)
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    bar = "`" * max(3, longest + 1)
    return f"{bar}{language}\n{code.rstrip(chr(10))}\n{bar}"


def escape_markdown_text(text: str) -> str:
    """escape_text, with HTML made inert so model prose cannot inject markup into the chat."""
    return escape_text(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_CODE_KEYS = ("code", "source", "command")


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
        parts.append(f"`{escape_markdown_text(key)}`\n{fence(value, language)}")
    return "\n\n".join(parts) or "_(no arguments)_"


def provenance_html(token_texts: Sequence[str], provenance: Sequence[bool] | None) -> str:
    """One span per token, marked accepted-from-drafter or the target's own, with a legend."""
    legend = (
        '<div class="prov-legend"><span class="tok tok-draft">drafter, accepted</span>'
        '<span class="tok tok-target">target\'s own</span></div>'
    )
    if provenance is None:
        spans = "".join(f'<span class="tok tok-plain">{escape_html(t)}</span>' for t in token_texts)
        return '<div class="prov-note">This run had no drafter: every token is the target\'s own.</div>' \
            f'<div class="prov-text">{spans}</div>'
    if len(provenance) != len(token_texts):
        raise ValueError(f"provenance has {len(provenance)} marks for {len(token_texts)} tokens; pass one per token.")
    spans = "".join(
        f'<span class="tok {"tok-draft" if drafted else "tok-target"}">{escape_html(t)}</span>'
        for t, drafted in zip(token_texts, provenance)
    )
    share = sum(provenance) / len(provenance) if provenance else 0.0
    note = f'<div class="prov-note">{sum(provenance)} of {len(provenance)} tokens ({share:.0%}) came from the drafter.</div>'
    return f"{legend}{note}<div class=\"prov-text\">{spans}</div>"


def acceptance_html(accepted_by_position: Sequence[float]) -> str:
    """Per draft position, the share of drafted tokens the target accepted, as labelled bars."""
    if not accepted_by_position:
        return '<div class="prov-note">No drafter rounds in this step.</div>'
    bars = "".join(
        f'<div class="acc-row"><span class="acc-pos">#{i + 1}</span>'
        f'<span class="acc-bar"><span style="width:{max(0.0, min(1.0, p)) * 100:.1f}%"></span></span>'
        f'<span class="acc-val">{p:.0%}</span></div>'
        for i, p in enumerate(accepted_by_position)
    )
    return f'<div class="acc"><div class="acc-title">Acceptance by draft position</div>{bars}</div>'


def chart_svg(rows: Sequence[Mapping[str, Any]], width_px: int = 560, height_px: int = 200) -> str:
    """Grouped bars of baseline vs drafter seconds per step, as a self-contained inline SVG."""
    points = [(str(r["step"]), r.get("baseline_s"), r.get("drafter_s")) for r in rows]
    if not points:
        return '<div class="chart-empty">Per-step latency appears here as steps finish.</div>'
    top = max([v for _, b, d in points for v in (b, d) if isinstance(v, (int, float))] + [1e-9])
    left, bottom, pad = 44, 28, 10
    plot_w, plot_h = width_px - left - pad, height_px - bottom - pad - 18
    group_w = plot_w / len(points)
    bar_w = max(2.0, min(28.0, group_w * 0.36))
    out = [f'<svg class="latency-chart" viewBox="0 0 {width_px} {height_px}" role="img" '
           f'aria-label="Per-step latency, baseline vs drafter" xmlns="http://www.w3.org/2000/svg">']
    for frac in (0.0, 0.5, 1.0):  # gridlines with seconds
        y = pad + 18 + plot_h * (1 - frac)
        out.append(f'<line x1="{left}" x2="{width_px - pad}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{top * frac:.2g}s</text>')
    for i, (label, base_s, draft_s) in enumerate(points):
        center = left + group_w * (i + 0.5)
        for offset, value, cls in ((-bar_w - 1, base_s, "bar-baseline"), (1, draft_s, "bar-drafter")):
            if not isinstance(value, (int, float)):
                continue
            h = plot_h * value / top
            out.append(f'<rect x="{center + offset:.1f}" y="{pad + 18 + plot_h - h:.1f}" width="{bar_w:.1f}" '
                       f'height="{h:.1f}" class="{cls}"><title>step {html.escape(label)}: {value:.3f}s</title></rect>')
        out.append(f'<text x="{center:.1f}" y="{height_px - 10}" text-anchor="middle" class="axis">{html.escape(label)}</text>')
    out.append(f'<rect x="{left}" y="4" width="10" height="10" class="bar-baseline"/>'
               f'<text x="{left + 14}" y="13" class="axis">baseline (target only)</text>'
               f'<rect x="{left + 170}" y="4" width="10" height="10" class="bar-drafter"/>'
               f'<text x="{left + 184}" y="13" class="axis">with MTP drafter</text></svg>')
    return "".join(out)


# Table columns shown, keyed by the step-row field they come from (agents.report.step_rows).
TABLE_COLUMNS = {
    "step": "#", "kind": "kind", "new_tokens": "tokens", "baseline_s": "base s", "drafter_s": "draft s",
    "speedup": "speedup", "acceptance": "accept", "mean_accepted_length": "acc len", "identical": "same",
}


_KIND_LABELS = {"tool_call": "tool", "final_answer": "answer"}


def _cell(key: str, value: Any) -> Any:
    if value is None:
        return "–"
    if key == "kind":
        return _KIND_LABELS.get(value, value)
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if key in ("baseline_s", "drafter_s") and isinstance(value, (int, float)):
        return f"{value:.3f}"
    if key == "speedup" and isinstance(value, (int, float)):
        return f"{value:.2f}×"
    if key == "acceptance" and isinstance(value, (int, float)):
        return f"{value:.0%}"
    if key == "mean_accepted_length" and isinstance(value, (int, float)):
        return f"{value:.2f}"
    return escape_text(str(value)) if isinstance(value, str) else value


def table_frame(rows: Sequence[Mapping[str, Any]]):
    """The per-step table as a DataFrame of display strings, one row per step."""
    import pandas as pd

    data = [[_cell(key, row.get(key)) for key in TABLE_COLUMNS] for row in rows]
    return pd.DataFrame(data, columns=list(TABLE_COLUMNS.values()))


def _fmt_s(value: Any) -> str:
    return f"{value:.2f}s" if isinstance(value, (int, float)) else "–"


def summary_html(totals: Mapping[str, Any] | None) -> str:
    """Run totals (agents.report.run_totals) as a grid of labelled numbers."""
    totals = totals or {}
    speedup = totals.get("speedup")
    saved = totals.get("saved_s")
    cells = [
        ("LLM time, baseline", _fmt_s(totals.get("baseline_s")), ""),
        ("LLM time, drafter", _fmt_s(totals.get("drafter_s")), ""),
        ("Overall speedup", f"{speedup:.2f}×" if isinstance(speedup, (int, float)) and speedup else "–",
         "good" if isinstance(speedup, (int, float)) and speedup > 1 else ""),
        ("Time saved", _fmt_s(saved), "good" if isinstance(saved, (int, float)) and saved > 0 else ""),
        ("Tool time", _fmt_s(totals.get("tool_s")), ""),
        ("Steps", str(totals.get("steps", "–")), ""),
    ]
    body = "".join(f'<div class="cell"><div class="label">{label}</div><div class="value {cls}">{value}</div></div>'
                   for label, value, cls in cells)
    return f'<div class="summary-grid">{body}</div>'


def status_html(phase: str, model: str, message: str, fraction: float | None) -> str:
    """The model-load line: loading with a progress bar, ready, or failed with its cause and fix."""
    name = f"<code>{escape_html(model)}</code>" if model else "the model"
    text = escape_html(message)
    if phase == "ready":  # message: what is loaded, where
        return f'<div class="banner banner-ok"><b>Model {name} ready.</b> {text}</div>'
    if phase == "failed":
        return f'<div class="banner banner-error"><b>Loading {name} failed.</b> {text}</div>'
    if phase == "loading":
        bar = "" if fraction is None else \
            f'<div class="load-bar"><span style="width:{max(0.0, min(1.0, fraction)) * 100:.0f}%"></span></div>'
        percent = "" if fraction is None else f" ({fraction:.0%})"
        return f'<div class="banner banner-info">Loading {name}{percent}: {text} The page works meanwhile.{bar}</div>'
    return f'<div class="banner banner-info">{text}</div>'
