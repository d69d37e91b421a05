"""The report's HTML: one file, styles inline, charts as inline SVG, numbers formatted for people."""

from __future__ import annotations

import html
import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header{background:#0b3d5c;color:#fff;padding:1.2rem 2rem}header h1{margin:0;font-size:1.5rem}
header p{margin:.3rem 0 0;opacity:.9}nav{padding:.5rem 2rem;background:#e8eef2;font-size:.9rem}
nav a{margin-right:1.2rem;color:#0b3d5c}main{padding:1rem 2rem;max-width:72rem}
section{background:#fff;border:1px solid #dde3e8;border-radius:6px;margin:1rem 0;padding:1rem 1.4rem}
h2{margin:.2rem 0 .4rem;font-size:1.2rem;color:#0b3d5c}.reading{font-size:1.05rem;margin:.2rem 0 .8rem}
.chart{overflow-x:auto;margin:.5rem 0}table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
th,td{border-bottom:1px solid #e3e7ea;padding:.25rem .6rem;text-align:left}td.n,th.n{text-align:right}
.fixes li{margin:.2rem 0}.tag{display:inline-block;padding:0 .4rem;border-radius:3px;font-size:.8rem;color:#fff}
.missing{background:#D55E00}.stale{background:#B07800}.silent{background:#3A8CC0}.consistent{background:#007A5A}
.unscheduled{background:#888}.ok{color:#007A5A}.bad{color:#B00020}footer{padding:1rem 2rem;color:#666;font-size:.8rem}
.milestone{background:#fff5d6}.channel{display:inline-block;min-width:4rem}
"""


def n(value: Any) -> str:
    """A count or amount with thousands separators; decimals kept to two places."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, Decimal) or (isinstance(value, float) and not float(value).is_integer()):
        return f"{float(value):,.2f}"
    return f"{int(value):,}"


def money(value: Any, currency: str) -> str:
    """An amount in the shop's currency, as people write it (``$1,234.50``, ``€1,234.50``)."""
    from babel.numbers import format_currency

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format_currency(float(value), currency, locale="en_US")


def pct(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * float(value):+.{digits}f}%" if digits >= 0 else f"{100 * float(value):.0f}%"


def share(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if 0 < float(value) < 0.001:
        return "<0.1%"
    return f"{100 * float(value):.1f}%"


def when(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def table(headers: Iterable[tuple[str, bool]], rows: Iterable[Iterable[str]], name: str = "") -> str:
    """``headers``: (title, numeric); ``rows``: already formatted cells; ``name`` marks it for readers and tests."""
    headers = list(headers)
    head = "".join(f"<th class='{'n' if num else ''}'>{esc(h)}</th>" for h, num in headers)
    body = "".join("<tr>" + "".join(f"<td class='{'n' if headers[i][1] else ''}'>{c}</td>" for i, c in enumerate(r))
                   + "</tr>" for r in rows)
    return f"<table data-table='{esc(name)}'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def section(anchor: str, title: str, reading: str, body: str) -> str:
    return (f"<section id='{anchor}' data-section='{anchor}'><h2>{esc(title)}</h2>"
            f"<p class='reading'>{reading}</p>{body}</section>")


def chart(svg: str, name: str) -> str:
    return f"<div class='chart' data-chart='{name}'>{svg}</div>"


def document(title: str, subtitle: str, sections: list[tuple[str, str, str]], footer: str) -> str:
    """``sections``: (anchor, title, html)."""
    nav = "".join(f"<a href='#{a}'>{esc(t)}</a>" for a, t, _ in sections)
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p>{subtitle}</p></header><nav>{nav}</nav><main>"
            + "".join(body for _, _, body in sections) + f"</main><footer>{footer}</footer></body></html>")
