"""The checks a stage makes before it builds from a window: upstream gates passed, sources reconciled.

Gates and reconciliation are recorded per window (``ops.quality_gates``, ``ops.audit``). A window is
judged hour by hour, over the landing hours in it that actually hold files (``ops.ingest_log``):
for every such hour, the *latest* gate (or audit) whose window contains that hour must have passed.
So a failed hour stays blocked until its data is validated again by a run that covers it; a later
passing run of another window does not un-block it, and an hour no gate ever covered is refused
as "did not run".

This reads only the ops tables (one row per file, gate or audit): listings and counts, no row data.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterable

from schemas.sources import EVENT_SOURCES
from jobs.runs.window import HOUR, Window, parse_moment

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.lake import Lake


class PromotionRefused(RuntimeError):
    """A stage will not build from a window whose upstream gate failed or did not run, or that did not reconcile."""


@dataclass(frozen=True)
class Verdict:
    """The latest gate or audit covering an hour."""

    ok: bool
    run_id: str
    window: Window


def landed_hours(spark: "SparkSession", lake: "Lake", window: Window) -> dict[str, list[datetime]]:
    """Per source, the sorted landing hours in the window that hold at least one file taken into bronze."""
    if not lake.exists("ops.ingest_log"):
        return {}
    rows = lake.read("ops.ingest_log").where(window.sql()).select("source", "landing_dt", "landing_hour").distinct()
    out: dict[str, set[datetime]] = {}
    for r in rows.collect():  # one row per (source, hour): a listing
        out.setdefault(r.source, set()).add(
            datetime(r.landing_dt.year, r.landing_dt.month, r.landing_dt.day, r.landing_hour, tzinfo=timezone.utc))
    return {s: sorted(h) for s, h in out.items()}


def latest_per_hour(hours: list[datetime], records: Iterable[tuple[datetime | None, Verdict]]) -> dict[datetime, Verdict]:
    """For each hour, the verdict of the latest record (records come with their time) whose window contains it."""
    state: dict[datetime, Verdict] = {}
    for _, verdict in sorted(records, key=lambda r: r[0] or datetime.min.replace(tzinfo=timezone.utc)):
        w = verdict.window
        lo = 0 if w.start is None else bisect_left(hours, w.start)
        hi = len(hours) if w.end is None else bisect_left(hours, w.end)
        for h in hours[lo:hi]:
            state[h] = verdict
    return state


def spans(hours: list[datetime]) -> str:
    """Consecutive hours as readable ranges: '2026-11-03 10:00 .. 12:00, 2026-11-04 09:00 .. 10:00'."""
    out, start, prev = [], None, None
    for h in sorted(hours):
        if start is None:
            start = prev = h
        elif h == prev + HOUR:
            prev = h
        else:
            out.append((start, prev + HOUR))
            start = prev = h
    if start is not None:
        out.append((start, prev + HOUR))
    text = [f"{a:%Y-%m-%d %H:00} .. {b:%H:00}" if a.date() == b.date()
            else f"{a:%Y-%m-%d %H:00} .. {b:%Y-%m-%d %H:00}" for a, b in out[:5]]
    return ", ".join(text) + (f" and {len(out) - 5} more" if len(out) > 5 else "")


def _problems(hours: list[datetime], state: dict[datetime, Verdict]) -> tuple[list[datetime], dict[str, list[datetime]]]:
    missing = [h for h in hours if h not in state]
    failed: dict[str, list[datetime]] = {}
    for h in hours:
        v = state.get(h)
        if v is not None and not v.ok:
            failed.setdefault(v.run_id, []).append(h)
    return missing, failed


def require_gate(spark: "SparkSession", lake: "Lake", layer: str, window: Window, tables: Iterable[str],
                 stage: str) -> None:
    """Refuse unless, for every landed hour in the window, ``layer``'s latest gate of each table passed."""
    hours = landed_hours(spark, lake, window)
    if not hours:
        return
    records: dict[str, list] = {}
    if lake.exists("ops.quality_gates"):
        for r in (lake.read("ops.quality_gates").where(f"layer = '{layer}'")
                  .select("table_name", "window_start", "window_end", "status", "run_id", "checked_at").collect()):
            records.setdefault(r.table_name, []).append(
                (r.checked_at, Verdict(r.status != "failed", r.run_id, Window(parse_moment(r.window_start),
                                                                                parse_moment(r.window_end)))))
    lines = []
    for name in tables:
        source = name.split(".", 1)[1] if layer == "bronze" else None
        relevant = hours.get(source, []) if source else sorted({h for hs in hours.values() for h in hs})
        missing, failed = _problems(relevant, latest_per_hour(relevant, records.get(name, [])))
        for run_id, bad in failed.items():
            lines.append(f"  {name}: the {layer} gate failed on landing hours {spans(bad)} (gate run {run_id}; "
                         "see ops.quality_results)")
        if missing:
            lines.append(f"  {name}: no {layer} gate has validated landing hours {spans(missing)}")
    if lines:
        raise PromotionRefused(
            f"{stage} will not build from landing window {window}:\n" + "\n".join(lines) + "\n"
            f"Fix the data, then validate it again with `rapport quality validate --layer {layer} {window.cli_args()}`"
            f" (or re-run the {layer} stage for that window), and run `rapport {stage} {window.cli_args()}` again.")


def audit_records(lake: "Lake") -> dict[str, list[tuple[datetime | None, Verdict]]]:
    """Per event source, every reconciliation (``ops.audit``) with its time: one row per refine window."""
    records: dict[str, list] = {}
    if lake.exists("ops.audit"):
        for r in lake.read("ops.audit").select("source", "window_start", "window_end", "balanced", "run_id",
                                               "audited_at").collect():
            records.setdefault(r.source, []).append(
                (r.audited_at, Verdict(bool(r.balanced), r.run_id, Window(parse_moment(r.window_start),
                                                                          parse_moment(r.window_end)))))
    return records


def require_reconciled(spark: "SparkSession", lake: "Lake", window: Window, stage: str) -> None:
    """Refuse unless every landed hour of every event source is covered by a balanced refine (ops.audit)."""
    hours = {s: h for s, h in landed_hours(spark, lake, window).items() if s in EVENT_SOURCES}
    if not hours:
        return
    records = audit_records(lake)
    lines = []
    for source, relevant in sorted(hours.items()):
        missing, failed = _problems(relevant, latest_per_hour(relevant, records.get(source, [])))
        for run_id, bad in failed.items():
            lines.append(f"  {source}: refine did not reconcile landing hours {spans(bad)} (run {run_id}; see ops.audit: "
                         "landed ≠ silver + quarantined + duplicates)")
        if missing:
            lines.append(f"  {source}: landing hours {spans(missing)} have not been refined")
    if lines:
        raise PromotionRefused(
            f"{stage} will not build from landing window {window}:\n" + "\n".join(lines) + "\n"
            f"Run `rapport refine {window.cli_args()}` (after fixing what ops.audit shows), then "
            f"`rapport {stage} {window.cli_args()}`.")
