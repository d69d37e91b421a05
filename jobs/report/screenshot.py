"""``python -m jobs.report.screenshot [LAKE] [PNG]``: the docs' picture of the newest report under a lake.

Uses Playwright with Debian's Chromium (``/usr/bin/chromium``, or ``CHROMIUM``), the network off.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from jobs.config import Config
from jobs.report.build import latest


def shoot(page: Path, png: Path, height: int = 1500) -> None:
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("no Chromium found: apt-get install chromium, or set CHROMIUM")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True, viewport={"width": 1200, "height": height})
            tab = context.new_page()
            tab.goto(page.as_uri(), wait_until="load")
            png.parent.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(png), clip={"x": 0, "y": 0, "width": 1200, "height": height})
        finally:
            browser.close()


def main(argv: list[str]) -> int:
    lake = argv[0] if argv else "demo/lake"
    png = Path(argv[1] if len(argv) > 1 else "docs/report.png")
    page = latest(Config(lake_root=lake))
    if page is None:
        print(f"no report under {lake}/_reports: run `make demo` (or `rapport report`) first", file=sys.stderr)
        return 2
    shoot(page, png)
    print(f"{png}: {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
