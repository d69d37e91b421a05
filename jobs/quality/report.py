"""A self-contained quality overview, ``<lake>/_docs/rapport-quality.html``, readable offline.

Great Expectations' Data Docs index builds its tables with scripts loaded from public CDNs,
so on a network without internet access it shows an empty page. Its per-validation pages
render without them. This page needs nothing but the browser: the latest result of every
suite, the failed expectations with samples, and a link to Great Expectations' page for
that validation.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobs.quality.gate import SuiteResult

PAGE = "rapport-quality.html"
STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}th{background:#f3f3f3}
.ok{color:#176f2c;font-weight:600}.na{color:#555;font-style:italic}.fail{color:#b00020;font-weight:600}.warn{color:#a15c00;font-weight:600}
code{font-size:.85em}"""


def page_of(key: tuple[str, ...]) -> str:
    """The Data Docs page of a stored result (``jobs.quality.docs.store``), relative to the docs folder."""
    return "validations/" + "/".join(key[:3]) + f"/{key[3]}.html"


def write(docs: Path, results: list["SuiteResult"], layer: str, run_id: str, passed: bool) -> Path:
    """Add this gate's results to the overview (one section per layer, newest gate kept)."""
    docs.mkdir(parents=True, exist_ok=True)
    sections_dir = docs / "_rapport"
    sections_dir.mkdir(exist_ok=True)
    rows = []
    for r in results:
        failed = [o for o in r.outcomes if not o.success]
        status = ("fail", "FAILED") if r.critical_failures else (("warn", "warnings") if failed else ("ok", "passed"))
        if r.not_applicable:
            status = ("na", "not applicable")
        page = page_of(r.docs_key) if r.docs_key else None  # rendered by the gate or later (jobs.quality.docs)
        link = f'<a href="{html.escape(page)}">details</a>' if page else ""
        problems = "".join(
            f"<li><span class='{'fail' if o.expectation.severity == 'critical' else 'warn'}'>{o.expectation.severity}</span> "
            f"<code>{html.escape(o.expectation.label)}</code>: "
            f"{html.escape(o.error or (str(o.unexpected_count) + ' rows' if o.unexpected_count is not None else 'observed ' + str(o.observed)))}"
            f"{(' — e.g. ' + html.escape(', '.join(map(str, o.sample)))) if o.sample else ''}</li>" for o in failed)
        if r.not_applicable:
            problems = f"<li>{html.escape(r.not_applicable)}</li>"
        rows.append(f"<tr><td>{html.escape(r.suite.table)}</td><td class='{status[0]}'>{status[1]}</td><td>{r.rows:,}</td>"
                    f"<td>{len(r.outcomes) - len(failed)} / {len(r.suite.expectations)}</td><td><ul>{problems}</ul></td>"
                    f"<td>{link}</td></tr>")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    verdict = "<span class='ok'>passed</span>" if passed else "<span class='fail'>FAILED: nothing is promoted from it</span>"
    (sections_dir / f"{layer}.html").write_text(
        f"<h2>{layer} gate: {verdict}</h2><p>run <code>{html.escape(run_id)}</code>, {when}</p>"
        "<table><tr><th>table</th><th>result</th><th>rows</th><th>expectations met</th><th>problems</th><th></th></tr>"
        + "".join(rows) + "</table>")
    body = "".join((sections_dir / f"{name}.html").read_text() for name in ("bronze", "silver", "gold")
                   if (sections_dir / f"{name}.html").exists())
    out = docs / PAGE
    out.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>Rapport data quality</title>"
                   f"<style>{STYLE}</style></head><body><h1>Rapport data quality</h1>"
                   "<p>The latest quality gate of each layer. History: <code>ops.quality_results</code>. "
                   "Each <em>details</em> link opens Great Expectations' page for that validation.</p>"
                   f"{body}</body></html>")
    return out
