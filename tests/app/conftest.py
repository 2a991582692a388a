"""Browser-test fixtures: the app in a subprocess on a free port, Debian's chromium through Playwright.

Without chromium the browser tests skip locally and fail under CI=1 (CI must install it, see .ci/run).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def require_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run).")
        pytest.skip(f"{CHROMIUM} is missing; `apt-get install chromium` to run the browser tests.")


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
            time.sleep(0.3)
    pytest.fail(f"app did not answer on {url} within {timeout_s}s:\n{log_path.read_text()[-3000:]}")


def stop_group(app: subprocess.Popen) -> None:
    """End the app and everything it started (its own process group), stragglers included."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(app.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        app.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(app.pid, signal.SIGKILL)
    app.wait(timeout=10)


@contextlib.contextmanager
def serve(command: list[str], log_dir: Path, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """Run `command` (an app entry point taking --host/--port) and yield (url, process)."""
    require_chromium()
    port = free_port()
    log_path = log_dir / "app.log"
    full_env = {**os.environ, "PLAYGROUND_ALLOW_UNSANDBOXED": os.environ.get("PLAYGROUND_ALLOW_UNSANDBOXED", ""),
                **env}
    with open(log_path, "wb") as log_file:
        app = subprocess.Popen([sys.executable, *command, "--host", "127.0.0.1", "--port", str(port)], cwd=REPO,
                               env=full_env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, app, log_path)
        yield url, app
    finally:
        stop_group(app)


@pytest.fixture(scope="session")
def chromium():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_page(browser, url: str, width: int = 1440, height: int = 1000):
    """A fresh tab (its own Gradio session) on the app, once the model is ready."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_function("document.querySelector('#model-status')?.innerText.includes('ready')", timeout=90_000)
    return page


def run_state(page) -> str:
    return page.inner_text("#run-state")


def table_rows(page, table: str = "#step-table") -> list[list[str]]:
    """A gr.Dataframe's body rows in order, as cell texts (Gradio draws them as grid rows, not <tr>)."""
    return page.eval_on_selector_all(
        f"{table} [role=row][data-index]",
        """rows => rows.sort((a, b) => a.dataset.index - b.dataset.index)
                       .map(r => [...r.querySelectorAll('[role=gridcell]')].map(c => c.textContent.trim()))""")


def wait_for_rows(page, count: int, table: str = "#step-table") -> list[list[str]]:
    """Wait until the table shows `count` body rows (a redraw lands a moment after the state line), then read it."""
    page.wait_for_function(f"document.querySelectorAll('{table} [role=row][data-index]').length == {count}")
    return table_rows(page, table)


def wait_for_end(page, timeout_ms: int = 90_000) -> None:
    page.wait_for_function("document.querySelector('#run-state').innerText.includes('Run ended')", timeout=timeout_ms)


def submit(page, task: str) -> None:
    page.fill("#task textarea", task)
    page.click("#run-btn")
