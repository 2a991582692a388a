"""The run's numbers as frames for Gradio's table and plots: stopped steps, slowdowns, divergence, tok/s."""

from __future__ import annotations

import pytest

from ui.tables import (
    TABLE_COLUMNS, content_frame, content_plot_frame, cumulative_frame, cumulative_note, latency_frame,
    position_frame, stop_text, table_cells, table_frame, table_styler,
)

ROW = {"step": 1, "kind": "tool_call", "new_tokens": 12, "baseline_s": 1.23456, "drafter_s": 0.5, "speedup": 2.469,
       "acceptance": 0.75, "mean_accepted_length": 2.5, "identical": True, "stop_reason": "eos", "stopped": False,
       "baseline_tokens_per_s": 9.72, "drafter_tokens_per_s": 24.0, "baseline_ttft_s": 0.1234, "drafter_ttft_s": 0.1201,
       "divergence": None}


def cells(**changes) -> dict:
    frame_row, tones = table_cells({**ROW, **changes})
    return {c: (v, t) for c, v, t in zip(TABLE_COLUMNS, frame_row, tones)}


def test_table_leads_with_speedup_and_acceptance_and_shows_rates_per_step():
    assert list(TABLE_COLUMNS[:3]) == ["#", "speedup", "accept"]  # what a phone shows without scrolling
    row = cells()
    assert row["speedup"] == ("▲ 2.47×", "good") and row["accept"][0] == "75%"
    assert row["target s"][0] == "1.235" and row["drafter s"][0] == "0.500"
    assert row["tok/s target → drafter"][0] == "9.7 → 24.0"
    assert row["TTFT s target / drafter"][0] == "0.123 / 0.120"
    assert row["stop"][0] == "eos" and row["same output"][0] == "yes" and row["kind"][0] == "tool"


def test_a_stopped_step_says_so_instead_of_a_speedup():
    row = cells(stopped=True, speedup=11.31, stop_reason={"baseline": "stopped", "drafter": "eos"})
    assert row["speedup"] == ("stopped: left out", "warn")
    assert row["stop"] == ("baseline: stopped / drafter: eos", "warn")


def test_a_slowdown_is_flagged_in_the_table():
    assert cells(speedup=0.22)["speedup"] == ("▼ 0.22× slower", "bad")


def test_divergence_names_the_position_and_both_tokens_as_text():
    row = cells(identical=False, divergence={"index": 7, "baseline_token": "<img src=x>", "drafter_token": " no"})
    assert row["same output"] == ("NO at token 7: “<img src=…” vs “ no”", "warn")
    assert cells(identical=False, divergence=None)["same output"] == ("NO (differs)", "warn")


@pytest.mark.parametrize("stop_reason,shown", [
    ("max_new_tokens", "max_new_tokens"),
    ({"baseline": "eos", "drafter": "eos"}, "eos"),
    ({"baseline": "eos", "drafter": "max_new_tokens"}, "baseline: eos / drafter: max_new_tokens"),
    (None, "–"),
])
def test_stop_reason_is_one_value_or_one_per_run(stop_reason, shown):
    assert stop_text(stop_reason) == shown


def test_single_mode_rows_show_dashes_for_the_side_that_did_not_run():
    row = cells(baseline_s=None, speedup=None, identical=None, baseline_tokens_per_s=None, baseline_ttft_s=None)
    assert row["target s"][0] == "–" and row["speedup"][0] == "–" and row["same output"][0] == "–"
    assert row["tok/s target → drafter"][0] == "– → 24.0"


def test_rows_without_the_newer_report_keys_still_render():
    frame = table_frame([{"step": 1, "kind": "final_answer", "new_tokens": 3, "baseline_s": 1.0, "drafter_s": 0.5,
                          "speedup": 2.0, "acceptance": None, "mean_accepted_length": None, "identical": True}])
    assert list(frame.iloc[0][["#", "speedup", "stop", "kind"]]) == [1, "▲ 2.00×", "–", "answer"]
    assert table_frame([]).shape == (0, len(TABLE_COLUMNS))


def test_styler_colours_follow_the_tones():
    styled = table_styler([ROW, {**ROW, "step": 2, "speedup": 0.5}])
    html = styled.to_html()
    assert "color: #15803d" in html and "color: #b91c1c" in html
    assert list(styled.data.columns) == list(TABLE_COLUMNS)


def test_latency_bars_are_one_per_step_and_run_never_stacked():
    frame = latency_frame([{"step": 1, "baseline_s": 2.0, "drafter_s": 1.0},
                           {"step": 2, "baseline_s": None, "drafter_s": 0.4, "stopped": True}])
    assert frame.to_dict("records") == [
        {"step": "1 T", "seconds": 2.0, "run": "target only"}, {"step": "1 D", "seconds": 1.0, "run": "with drafter"},
        {"step": "2 D (stopped)", "seconds": 0.4, "run": "with drafter"}]
    assert frame["step"].is_unique


def test_cumulative_points_and_the_time_saved_so_far():
    rows = [{"step": 1, "baseline_s": 2.0, "drafter_s": 1.0, "saved_s": 1.0},
            {"step": 3, "baseline_s": 5.0, "drafter_s": 2.5, "saved_s": 2.5}]
    frame = cumulative_frame(rows)
    assert frame[frame.run == "target only"]["seconds"].tolist() == [2.0, 5.0]
    assert frame[frame.run == "with drafter"]["step"].tolist() == [1, 3]
    assert cumulative_note(rows) == ("After step 3: 5.00 s target only vs 2.50 s with the drafter; 2.50 s saved "
                                     "so far.")
    assert "LOST" in cumulative_note([{"step": 1, "baseline_s": 1.0, "drafter_s": 3.0, "saved_s": -2.0}])
    assert "appears here" in cumulative_note([])


ACC = {"thought": {"tokens": 10, "accepted": 3, "tried": 6, "rate": 0.5},
       "prose": {"tokens": 4, "accepted": 0, "tried": 0, "rate": 0.0},
       "code": {"tokens": 20, "accepted": 15, "tried": 18, "rate": 15 / 18},
       "tool_call": {"tokens": 8, "accepted": 1, "tried": 7, "rate": 1 / 7}}


def test_acceptance_by_content_per_step_and_for_the_run():
    frame = content_frame([(1, ACC), (2, {"code": ACC["code"]})], ACC)
    assert frame.columns.tolist() == ["step", "thought", "prose", "code", "tool-call syntax"]
    assert frame.iloc[0].tolist() == ["1", "50% (3/6)", "no drafts (4 tok)", "83% (15/18)", "14% (1/7)"]
    assert frame.iloc[1].tolist() == ["2", "–", "–", "83% (15/18)", "–"]
    assert frame.iloc[2, 0] == "run"


def test_acceptance_by_content_without_rejection_marks_says_the_rate_is_unknown():
    unknown = {"code": {"tokens": 10, "accepted": 4, "tried": None, "rate": None}}
    assert content_frame([(1, unknown)], None).iloc[0]["code"] == "4/10 tokens drafted (rate unknown)"
    assert content_plot_frame(unknown).empty


def test_the_stop_reasons_of_both_runs_come_from_the_row():
    row = cells(baseline_stop_reason="max_new_tokens", drafter_stop_reason="eos")
    assert row["stop"][0] == "baseline: max_new_tokens / drafter: eos"
    assert cells(baseline_stop_reason="eos", drafter_stop_reason="eos")["stop"][0] == "eos"


def test_content_plot_shows_only_categories_where_a_draft_was_tried():
    frame = content_plot_frame(ACC)
    assert frame["content"].tolist() == ["thought", "code", "tool-call syntax"]
    assert frame["acceptance %"].round(1).tolist() == [50.0, 83.3, 14.3]
    assert content_plot_frame(None).empty


def test_position_frame_is_a_percentage_per_draft_position():
    assert position_frame([1.0, 0.5]).to_dict("records") == [
        {"draft position": "#1", "acceptance %": 100.0}, {"draft position": "#2", "acceptance %": 50.0}]
    assert position_frame(None).empty
