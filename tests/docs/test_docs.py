"""The docs cannot drift from the code: the reference pages are what the code gives, and the site builds strictly.

The settings, CLI and table references are generated (``python -m jobs.cli.reference``); a committed page that
differs from what the code gives now fails here, naming the command that rewrites it. The site is built with
``mkdocs build --strict`` (``make test`` does it too), so a broken link or a page left out of the nav fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli.reference import DOCS, PAGES

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(PAGES))
def test_the_reference_pages_are_what_the_code_gives(name):
    page = DOCS / name
    assert page.exists() and page.read_text() == PAGES[name](), \
        f"docs/reference/{name} is stale: run `python -m jobs.cli.reference` (or `make docs`)"


@pytest.mark.unit
def test_a_new_setting_shows_in_the_reference(monkeypatch):
    import jobs.settings as settings

    monkeypatch.setattr(settings, "SETTINGS", (*settings.SETTINGS, settings.Setting(
        "lake_root", "RAPPORT_SOMETHING_NEW", "a setting added in code")))
    assert "RAPPORT_SOMETHING_NEW" in PAGES["settings.md"]()
    assert PAGES["settings.md"]() != (DOCS / "settings.md").read_text()  # so the staleness test would fail


@pytest.mark.unit
def test_the_site_builds_strictly(tmp_path):
    out = subprocess.run([str(Path(sys.executable).with_name("mkdocs")), "build", "--strict", "--quiet",
                          "--site-dir", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert out.returncode == 0, out.stdout + out.stderr
    pages = {p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("index.html")}
    for expected in ("index.html", "reference/settings/index.html", "reference/cli/index.html",
                     "reference/tables/index.html", "quality/index.html", "architecture/index.html"):
        assert expected in pages, sorted(pages)
    assert "RAPPORT_QUARANTINE_MAX_SHARE" in (tmp_path / "site" / "reference" / "settings" / "index.html").read_text()


@pytest.mark.unit
def test_the_readme_fits_on_a_screen_or_two():
    readme = (ROOT / "README.md").read_text()
    assert readme.count("\n") <= 250
    assert "make demo" in readme and "make test" in readme
    for link in ("docs/quality.md", "docs/reference/settings.md", "docs/reference/cli.md", "docs/reference/tables.md"):
        assert f"]({link})" in readme and (ROOT / link).exists(), link
