"""The playground in a real browser: Debian's chromium, driven by Playwright, against `python app.py --model tiny`."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO / "assets" / "screenshot.png"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, app: subprocess.Popen, log_path: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if app.poll() is not None:
            pytest.fail(f"app exited with {app.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"app did not answer on {url} within {timeout_s}s:\n{log_path.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run).")
        pytest.skip(f"{CHROMIUM} is missing; `apt-get install chromium` to run the browser test.")
    port = free_port()
    log_path = tmp_path_factory.mktemp("app") / "app.log"
    env = {**os.environ, "PLAYGROUND_MAX_NEW_TOKENS": "24", "PLAYGROUND_MAX_STEPS": "3",
           "PLAYGROUND_ALLOW_UNSANDBOXED": os.environ.get("PLAYGROUND_ALLOW_UNSANDBOXED", "")}
    with open(log_path, "wb") as log_file:
        app = subprocess.Popen([sys.executable, "app.py", "--model", "tiny", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, app, log_path)
        yield url
    finally:
        stop_group(app)


def stop_group(app: subprocess.Popen) -> None:
    """End the app and everything it started (its own process group), stragglers included."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(app.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        app.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(app.pid, signal.SIGKILL)
    app.wait(timeout=10)


@pytest.fixture(scope="module")
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(app_url)
        page.wait_for_function("document.querySelector('#model-status')?.innerText.includes('ready')",
                               timeout=90_000)
        yield page
        browser.close()


def run_state(page) -> str:
    return page.inner_text("#run-state")


def table_rows(page) -> list[list[str]]:
    """The per-step table's body rows, as cell texts."""
    return page.eval_on_selector_all(
        "#step-table tr", "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.textContent.trim()))")


def start_example(page, title: str) -> None:
    page.click("#new-btn")
    page.get_by_text(title, exact=True).first.click()
    page.wait_for_function("document.querySelector('#task textarea').value.length > 10")
    page.click("#run-btn")


def test_a_run_streams_steps_with_both_latencies_and_a_chart(page):
    start_example(page, "FizzBuzz, tested")
    page.wait_for_function("""() => [...document.querySelectorAll('#step-table tr')].some(r =>
        [...r.querySelectorAll('td')].filter(td => /^\\d+\\.\\d{3}$/.test(td.textContent.trim())).length >= 2)""")
    row = next(r for r in table_rows(page) if len([c for c in r if re.fullmatch(r"\d+\.\d{3}", c)]) >= 2)
    assert row[0].isdigit() and row[5].endswith("×")
    assert page.locator("#chart svg rect.bar-baseline").count() >= 1
    assert page.locator("#chart svg rect.bar-drafter").count() >= 1
    page.wait_for_function("document.querySelector('#run-state').innerText.includes('Run ended')", timeout=90_000)
    page.wait_for_function("document.querySelector('#step-pick input')?.value.startsWith('Step')")
    page.wait_for_selector("#provenance .tok")
    page.wait_for_timeout(500)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert "Step 1" in page.inner_text("#chat")


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
        page.wait_for_function("/running/.test(document.querySelector('#run-state').innerText)")
        page.wait_for_timeout(1500)
        clicked_s = time.monotonic()
        page.click("#stop-btn")
        page.wait_for_function("document.querySelector('#run-state').innerText.includes('Run ended')", timeout=30_000)
        assert time.monotonic() - clicked_s < 15
        assert "Run ended: stopped" in run_state(page)
    finally:
        set_max_new_tokens(page, 24)


def test_an_empty_task_warns_without_running(page):
    page.click("#new-btn")
    page.fill("#task textarea", "   ")
    page.click("#run-btn")
    page.wait_for_selector("text=Type a task first")
    assert "No run yet" in run_state(page)
