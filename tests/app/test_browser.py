"""The playground in a real browser with the real engine: `python app.py --model tiny`, in-process."""

from __future__ import annotations

import re
import time

import pytest

from tests.app.conftest import open_page, run_state, serve, table_rows, wait_for_end

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(chromium, tmp_path_factory):
    with serve(["app.py", "--model", "tiny"], tmp_path_factory.mktemp("app"), PLAYGROUND_MAX_NEW_TOKENS="24",
               PLAYGROUND_MAX_STEPS="3") as (url, _):
        tab = open_page(chromium, url)
        yield tab
        tab.context.close()


def start_example(page, title: str) -> None:
    page.click("#new-btn")
    page.wait_for_function("document.querySelector('#run-state').innerText.includes('New conversation')")
    page.get_by_text(title, exact=True).first.click()
    page.wait_for_function("document.querySelector('#task textarea').value.length > 10")
    page.click("#run-btn")


def test_a_run_streams_steps_with_both_latencies_a_plot_and_provenance(page, tmp_path):
    start_example(page, "FizzBuzz, tested")
    page.wait_for_function("""() => [...document.querySelectorAll('#step-table [role=row][data-index]')].some(r =>
        [...r.querySelectorAll('[role=gridcell]')].filter(c => /^\\d+\\.\\d{3}$/.test(c.textContent.trim())).length >= 2)""")
    row = next(r for r in table_rows(page) if len([c for c in r if re.fullmatch(r"\d+\.\d{3}", c)]) >= 2)
    assert row[0].isdigit() and "×" in row[1] and row[2].endswith("%")
    wait_for_end(page)
    assert "Step 1" in page.inner_text("#chat")
    page.wait_for_selector("#latency-plot .mark-rect path")
    page.get_by_role("tab", name="Token provenance").click()
    page.wait_for_selector("#provenance .tok")
    assert page.input_value("#step-pick input").startswith("Step")
    page.wait_for_selector("#position-plot .mark-rect path", state="attached")  # 0% bars have no height
    assert "tiny" in page.inner_text("#model-status") and "not Gemma 4's weights" in page.inner_text("#model-status")
    page.get_by_role("tab", name="Per step").click()
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)  # never the tracked assets/screenshot.png


def set_max_new_tokens(page, value: int) -> None:
    if not page.is_visible("#max-new"):
        page.get_by_text("Settings", exact=True).click()
    box = page.locator("#max-new input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_stop_ends_the_run(page):
    set_max_new_tokens(page, 4096)  # minutes of generation on a CPU: only Stop can end this run soon
    try:
        start_example(page, "Primes below 100")
        page.wait_for_function("/generating/.test(document.querySelector('#run-state').innerText)")
        page.wait_for_timeout(1500)
        clicked_s = time.monotonic()
        page.click("#stop-btn")
        wait_for_end(page, 30_000)
        assert time.monotonic() - clicked_s < 15
        assert "Run ended: stopped" in run_state(page)
        page.wait_for_timeout(1500)
        assert "Stopping" not in run_state(page)  # never sticks
    finally:
        set_max_new_tokens(page, 24)


def test_an_empty_task_warns_without_running(page):
    page.click("#new-btn")
    page.fill("#task textarea", "   ")
    page.click("#run-btn")
    page.wait_for_selector("text=Type a task first")
    assert "New conversation" in run_state(page)
