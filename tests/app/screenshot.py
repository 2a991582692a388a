"""Refresh the README's screenshot: `python -m tests.app.screenshot [--model mini] [--out assets/screenshot.png]`.

Starts `python app.py`, runs an example task in compare mode in headless chromium, and saves the finished
page. Tests never write the tracked screenshot; this explicit command does.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.app.conftest import CHROMIUM, CHROMIUM_ARGS, REPO, open_page, serve, wait_for_end


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="preset to run (default: what app.py picks)")
    p.add_argument("--example", default="FizzBuzz, tested", help="title of the example task to run")
    p.add_argument("--tab", default="Token provenance", help="results tab to show (the drafter's tokens in green)")
    p.add_argument("--out", type=Path, default=REPO / "assets" / "screenshot.png")
    p.add_argument("--timeout-s", type=float, default=900)
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    command = ["app.py", *(["--model", args.model] if args.model else [])]
    with tempfile.TemporaryDirectory() as logs, serve(command, Path(logs)) as (url, _), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        page = open_page(browser, url)
        page.get_by_text(args.example, exact=True).first.click()
        page.wait_for_function("document.querySelector('#task textarea').value.length > 10")
        page.click("#run-btn")
        wait_for_end(page, int(args.timeout_s * 1000))
        page.get_by_role("tab", name=args.tab).click()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(args.out), full_page=True)
        browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
