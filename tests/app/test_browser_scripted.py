"""The page in a real browser, run the ZeroGPU way, with the scripted model double.

`python -m tests.app.scripted_server --zero-gpu`: every run happens in a forked worker with pickled
arguments and updates (tests.app.zerogpu), and the double makes tool calls, hostile text, divergence,
long streams and slowdowns happen on cue (a marker in the task picks the scenario).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.app.conftest import open_page, run_state, serve, submit, table_rows, wait_for_end, wait_for_rows

pytestmark = pytest.mark.browser
HOSTILE_TASK = '[hostile] <img src=x onerror="window.__pwned=1"> <a href="https://example.com/">link</a> <u>u</u>'
LIVE_MARKUP = """() => document.querySelectorAll('img[src="x"], u, a[href*="example.com"], #chat b').length"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(["-m", "tests.app.scripted_server", "--zero-gpu", "--model", "tiny"],
               tmp_path_factory.mktemp("scripted"), SPACE_ID="test/playground") as (url, app):
        yield url, app


@pytest.fixture(scope="module")
def page(chromium, server):
    tab = open_page(chromium, server[0])
    yield tab
    tab.context.close()


BUSY = ("Run started", "generating", "running tool", "Stopping", "ahead of you")


def new_run(page) -> None:
    """A new conversation on the Per step tab; a run an earlier test left going (one that failed before its stop)
    is stopped first, and the tab it left open closed, so that one failure does not take the tests after it down
    with it (a hidden tab does not draw the step table they read)."""
    if any(word in run_state(page) for word in BUSY):
        page.click("#stop-btn")
        page.wait_for_function("/Run ended|cancelled/.test(document.querySelector('#run-state').innerText)")
    page.click("#new-btn")
    page.wait_for_function("document.querySelector('#run-state').innerText.includes('New conversation')")
    page.get_by_role("tab", name="Per step").click()


def test_model_and_user_text_render_as_text_in_every_panel(page):
    new_run(page)
    submit(page, HOSTILE_TASK)
    wait_for_end(page)
    assert page.evaluate(LIVE_MARKUP) == 0 and page.evaluate("window.__pwned") is None
    chat = page.inner_text("#chat")
    assert HOSTILE_TASK in chat  # the task, character for character
    assert '<b>Done</b>: <img src=x onerror="window.__pwned=1"> <a href="https://example.com/">click me</a>' in chat
    assert "[md link](https://example.com/) ![md image](https://example.com/x.png)" in chat
    assert "<u>underlined</u>" in page.inner_text("#live")
    last = wait_for_rows(page, 2)[-1]
    assert last[10].startswith("NO at token 0:")  # divergence: position and both tokens
    page.get_by_role("tab", name="Token provenance").click()
    page.wait_for_selector("#provenance .tok")
    assert "Outputs differ at token 0" in page.inner_text("#provenance")
    assert page.evaluate(LIVE_MARKUP) == 0


def test_the_live_view_keeps_both_runs_wrapped_with_counters(page):
    new_run(page)
    submit(page, "[live] stream for me")
    page.wait_for_function("""() => {
        const t = document.querySelector('#live [data-run="drafter"] .live-text');
        return document.querySelectorAll('#live .live-run').length == 2 && t && t.textContent.length > 30; }""")
    boxes = page.evaluate("""() => [...document.querySelectorAll('#live .live-run')].map(b => ({
        run: b.dataset.run, count: b.querySelector('.live-count').textContent,
        text: b.querySelector('.live-text').textContent.length,
        overflowX: b.querySelector('.live-text').scrollWidth - b.querySelector('.live-text').clientWidth}))""")
    by_run = {b["run"]: b for b in boxes}
    assert by_run["baseline"]["text"] > 300 and by_run["drafter"]["text"] > 30  # the first run was not wiped
    assert all(b["overflowX"] <= 1 for b in boxes)  # wrapped, not one line off the edge
    assert re.search(r"[1-9]\d* tokens · [\d.]+ s", by_run["drafter"]["count"])
    assert page.evaluate("[...document.querySelectorAll('#chat pre')].every(p => p.scrollWidth <= p.clientWidth + 1)")
    wait_for_end(page)
    assert re.search(r"\d+ tokens in [\d.]+ s · [\d.]+ tok/s · first token", page.inner_text("#live"))


def test_stop_mid_step_keeps_the_step_as_stopped_out_of_the_totals_and_in_the_export(page, server, tmp_path):
    new_run(page)
    submit(page, "[slow] a long one")
    page.wait_for_function("/generating/.test(document.querySelector('#run-state').innerText)")
    page.wait_for_timeout(800)
    clicked_s = time.monotonic()
    page.click("#stop-btn")
    wait_for_end(page, 20_000)
    assert time.monotonic() - clicked_s < 10
    assert "Run ended: stopped" in run_state(page)
    page.wait_for_timeout(1200)
    assert "Stopping" not in run_state(page)
    assert wait_for_rows(page, 1)[0][1] == "stopped: left out"
    page.wait_for_function("document.querySelectorAll('#latency-plot .mark-rect path').length == 2")
    summary = page.inner_text("#summary")
    assert "left out of the speedup" in summary and "faster" not in summary
    with page.expect_download() as download:
        page.click("#export")
    data = json.loads(open(download.value.path()).read())
    assert data["end_reason"] == "stopped" and len(data["steps"]) == 1
    assert data["environment"]["pid"] != server[1].pid  # the run happened in a forked worker


def test_a_queued_visitor_is_told_where_they_wait_and_can_give_up_the_place(page, chromium, server):
    new_run(page)
    submit(page, "[slow] hold the GPU")
    page.wait_for_function("/generating/.test(document.querySelector('#run-state').innerText)")
    other = open_page(chromium, server[0])
    try:
        submit(other, "[slow] me too")
        other.wait_for_function("document.querySelector('#run-state').innerText.includes('1 run is ahead of you')")
        other.click("#stop-btn")
        other.wait_for_function("document.querySelector('#run-state').innerText.includes('cancelled before it started')")
    finally:
        page.click("#stop-btn")
        wait_for_end(page, 20_000)
        other.context.close()


def test_new_run_and_the_chats_clear_reset_every_panel(page):
    for reset in ("#new-btn", "#chat button[aria-label='Clear']"):
        new_run(page)
        submit(page, "write hello")
        wait_for_end(page)
        page.get_by_role("tab", name="Token provenance").click()
        page.wait_for_selector("#provenance .tok")
        page.click(reset)
        page.wait_for_function("document.querySelector('#run-state').innerText.includes('New conversation')")
        assert page.inner_text("#provenance").strip() == "Pick a finished step."
        assert page.evaluate("document.querySelectorAll('#chat .message').length") == 0
        assert "Step" not in page.inner_text("#live") and "–" in page.inner_text("#summary")
        page.get_by_role("tab", name="Per step").click()
        assert wait_for_rows(page, 0) == []


def test_a_new_run_clears_the_previous_provenance_at_once(page):
    new_run(page)
    submit(page, "write hello")
    wait_for_end(page)
    page.get_by_role("tab", name="Token provenance").click()
    page.wait_for_selector("#provenance .tok")
    new_run(page)
    page.get_by_role("tab", name="Token provenance").click()
    assert page.inner_text("#provenance").strip() == "Pick a finished step."
    submit(page, "write hello")
    wait_for_end(page)
    page.wait_for_selector("#provenance .tok")
    submit(page, "[slow] the next run of the conversation")
    page.wait_for_function("/generating/.test(document.querySelector('#run-state').innerText)")
    # cleared while the next run is still generating (a page under load may draw the two a moment apart)
    page.wait_for_function("document.querySelector('#provenance').innerText.trim() == 'Pick a finished step.'",
                           timeout=20_000)
    assert "generating" in run_state(page)
    page.click("#stop-btn")
    wait_for_end(page, 20_000)


def test_a_slowdown_is_flagged_as_clearly_as_a_win(page):
    new_run(page)
    submit(page, "[slower] a step the drafter gets wrong")
    wait_for_end(page)
    page.wait_for_selector("#summary .value.bad")
    summary = page.inner_text("#summary")
    assert "TIME LOST" in summary.upper() and "slower" in summary
    assert "slower" in wait_for_rows(page, 1)[0][1]


def test_the_banner_says_what_the_stand_in_is_and_how_the_engine_decodes(page):
    status = page.inner_text("#model-status")
    assert "Offline stand-in" in status and "not Gemma 4's weights" in status
    assert "decode eager" in status and "CUDA graphs not used" in status


def test_on_a_space_visitors_cannot_switch_the_shared_model(page):
    page.get_by_text("Settings", exact=True).click()
    page.wait_for_selector("text=Model switching is off on this shared server")
    assert page.get_by_role("button", name="Load model").is_disabled()
    page.get_by_text("Settings", exact=True).click()


def test_on_a_phone_the_numbers_come_before_the_chat_and_the_table_shows_speedup(chromium, server):
    phone = open_page(chromium, server[0], width=390, height=844)
    try:
        boxes = {sel: phone.locator(sel).bounding_box() for sel in ("#task", "#summary", "#live", "#chat")}
        assert boxes["#task"]["y"] < boxes["#summary"]["y"] < boxes["#live"]["y"] < boxes["#chat"]["y"]
        submit(phone, "write hello")
        wait_for_end(phone)
        for name in ("speedup", "accept"):
            header = phone.locator("#step-table thead th", has_text=name).first.bounding_box()
            assert header["x"] + header["width"] <= 390, name
        assert phone.evaluate("document.documentElement.scrollWidth") <= 392
    finally:
        phone.context.close()


def test_a_follow_up_continues_the_conversation_through_the_fork(page):
    new_run(page)
    submit(page, "write hello")
    wait_for_end(page)
    assert page.input_value("#task textarea") == ""  # ready for the follow-up
    submit(page, "now add type hints")
    page.wait_for_function("document.querySelector('#chat').innerText.includes('I still have hello.py')")
    wait_for_end(page)
    chat = page.inner_text("#chat")
    assert chat.index("write hello") < chat.index("now add type hints") < chat.index("I still have hello.py")
    assert [r[0] for r in wait_for_rows(page, 1)] == ["1"]  # the table shows this turn's steps


def test_the_task_box_is_bounded(page):
    new_run(page)
    page.fill("#task textarea", "x" * 25_000)
    assert len(page.input_value("#task textarea")) == 20_000
    page.fill("#task textarea", "")


def test_the_cumulative_and_by_content_views_fill_in(page):
    new_run(page)
    submit(page, "write hello")
    wait_for_end(page)
    assert page.evaluate("document.querySelectorAll('#latency-plot .mark-rect path').length") == 4  # 2 steps × 2 runs
    page.get_by_role("tab", name="Cumulative").click()
    page.wait_for_selector("#cumulative-plot .mark-line path")
    assert re.search(r"After step 2: [\d.]+ s target only vs [\d.]+ s with the drafter; [\d.]+ s saved so far",
                     page.inner_text("#cumulative-note"))
    page.get_by_role("tab", name="By content").click()
    page.wait_for_selector("#content-plot .mark-rect path")
    rows = wait_for_rows(page, 3, "#content-table")
    assert [r[0] for r in rows] == ["1", "2", "run"]
    assert re.fullmatch(r"\d+% \(\d+/\d+\)", rows[-1][4])  # tool-call syntax, over the run
