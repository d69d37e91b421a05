"""Retention: raw lines keep personal data only as long as Rapport needs them.

Bronze lines and ``ops.quarantine`` rows hold what arrived, emails, phones, IPs and handles included (the
columns ``schemas/<layer>.yaml`` classes ``raw``). They are needed until their landing date is refined and
reconciled: every landed hour of it covered by a balanced refine (``ops.audit``); a reference extract's lines
until a newer extract replaced it. ``RAPPORT_RAW_RETENTION_DAYS`` (default 30) after the landing date, the raw
columns of a date no longer needed are set to NULL and stamped ``expired_at``; rows, keys and lineage stay, so
reconciliation still balances and refine skips them (their silver rows stand). A date that is not reconciled
keeps its raw lines, and the run says so: they are what a fix needs.

The files of earlier table versions still hold the values until maintenance vacuums them (7 days later): set
the retention a week shorter for a hard limit. ``ops.retention`` records each date taken and the latest file
of it then: a file that lands for that date later makes it due again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake, in_list
from jobs.runs.guards import audit_records, landed_hours, latest_per_hour
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from schemas.sources import EVENT_SOURCES, REFERENCE_SOURCES
from jobs.runs.window import Window

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


@dataclass
class RetentionReport(Report):
    retention_days: int = 0
    cutoff: date | None = None  # landing dates before it are due
    expired: dict[str, list[date]] = field(default_factory=dict)  # source -> landing dates whose raw values went
    bronze_rows: int = 0
    quarantine_rows: int = 0
    kept: dict[str, list[date]] = field(default_factory=dict)  # source -> due dates kept: not reconciled


def due(spark: "SparkSession", lake: Lake, cutoff: date) -> dict[str, dict[date, datetime]]:
    """Per source, the landing dates before ``cutoff`` with files not yet expired, and their latest file."""
    from pyspark.sql import functions as F

    if not lake.exists("ops.ingest_log"):
        return {}
    files = (lake.read("ops.ingest_log").where(f"landing_dt < DATE '{cutoff}'").groupBy("source", "landing_dt")
             .agg(F.max("ingested_at").alias("until")))
    done = {}
    if lake.exists("ops.retention"):
        done = {(r.source, r.landing_dt): r.files_until  # one row per source and date already expired
                for r in lake.read("ops.retention").collect()}
    out: dict[str, dict[date, datetime]] = {}
    for r in files.collect():  # one row per source and date: a listing
        if done.get((r.source, r.landing_dt)) is None or done[(r.source, r.landing_dt)] < r.until:
            out.setdefault(r.source, {})[r.landing_dt] = r.until
    return out


def reconciled(spark: "SparkSession", lake: Lake, source: str, dates: list[date]) -> tuple[list[date], list[date]]:
    """Split dates into (needed no longer, still needed): an event source's date is done when the latest audit
    of each of its landed hours balanced; a reference source's when a newer extract landed after it."""
    if not dates:
        return [], []
    if source in REFERENCE_SOURCES:
        hours = landed_hours(spark, lake, Window()).get(source)
        newest = max(hours).date() if hours else max(dates)
        return [d for d in dates if d < newest], [d for d in dates if d >= newest]
    window = Window(datetime.combine(min(dates), time(), timezone.utc),
                    datetime.combine(max(dates) + timedelta(days=1), time(), timezone.utc))
    hours = landed_hours(spark, lake, window).get(source, [])
    state = latest_per_hour(hours, audit_records(lake).get(source, []))
    bad = {h.date() for h in hours if h not in state or not state[h].ok}
    return [d for d in dates if d not in bad], [d for d in dates if d in bad]


def run(spark: "SparkSession", cfg: Config, window: Window | None = None, *, run_id: str | None = None,
        now: datetime | None = None) -> RetentionReport:
    """Drop the raw values of every landing date past retention that is no longer needed."""
    lake = Lake(cfg, spark)
    now = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    report = RetentionReport("retention", run_id or str(RunId.new("retention")), window or Window(),
                             retention_days=cfg.raw_retention_days)
    if cfg.raw_retention_days <= 0:
        log.info("RAPPORT_RAW_RETENTION_DAYS is 0: raw lines keep their values")
        return report
    report.cutoff = now.date() - timedelta(days=cfg.raw_retention_days)
    for source, dates in sorted(due(spark, lake, report.cutoff).items()):
        if source not in EVENT_SOURCES + REFERENCE_SOURCES:
            continue
        done, kept = reconciled(spark, lake, source, sorted(dates))
        if kept and source in EVENT_SOURCES:
            report.kept[source] = kept
            log.warning("%s: raw lines of landing dates %s are past retention but kept: they are not reconciled "
                        "(see ops.audit; refine them again once fixed)", source, ", ".join(map(str, kept)))
        if done:
            _expire(lake, report, source, done, dates, now)
    return report


def _expire(lake: Lake, report: RetentionReport, source: str, done: list[date], dates: dict[date, datetime],
            now: datetime) -> None:
    where = f"landing_dt IN ({in_list([str(d) for d in done])})"
    counts: dict[str, dict[date, int]] = {}
    for name, scope in ((f"bronze.{source}", where), ("ops.quarantine", f"source = '{source}' AND {where}")):
        if lake.exists(name):
            counts[name] = {r.landing_dt: r["count"] for r in lake.read(name).where(
                f"{scope} AND expired_at IS NULL").groupBy("landing_dt").count().collect()}  # one row per date
            if counts[name]:
                lake.expire(name, scope, now)
    bronze, quarantined = counts.get(f"bronze.{source}", {}), counts.get("ops.quarantine", {})
    lake.merge("ops.retention", lake.frame("ops.retention", [
        (source, d, bronze.get(d, 0), quarantined.get(d, 0), dates[d], report.run_id, now) for d in done]))
    report.expired[source] = done
    report.bronze_rows += sum(bronze.values())
    report.quarantine_rows += sum(quarantined.values())
    log.info("%s: raw values of %d landing date(s) up to %s dropped (%d bronze lines, %d quarantine rows)",
             source, len(done), max(done), sum(bronze.values()), sum(quarantined.values()))
