"""The browser the browser tests drive: Debian's Chromium (``make test`` installs it) or ``CHROMIUM``. Missing, the
test fails saying what to install: it is never skipped."""

from __future__ import annotations

import os
import shutil

import pytest


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("Chromium is not installed: run `make test` (it installs Debian's chromium as root) or "
                    "`apt-get install chromium`, or set CHROMIUM=/path/to/chromium", pytrace=False)
    return found
