"""Helpers that build lakes from generated landing zones, shared by the silver and gold tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from jobs.bronze import ingest
from jobs.silver import refine

PII_KEY = "test-key-0123456789abcdef"
RUN_COLUMNS = {"run_id", "ingested_at", "quarantined_at", "audited_at"}


def ingest_and_refine(spark, cfg, start=None, end=None) -> dict:
    for source in ingest.SOURCES + ingest.REFERENCE:
        ingest.run(spark, cfg, source, start, end, progress=False)
    return refine.run_all(spark, cfg, start, end)


def table_rows(spark, path) -> list[tuple]:
    """Every row of a table without the columns that name the run, sorted: what 'identical' compares."""
    df = spark.read.format("delta").load(path)
    cols = sorted(c for c in df.columns if c not in RUN_COLUMNS)
    return sorted((tuple(str(r[c]) for c in cols) for r in df.select(*cols).collect()))


def day_by_day(spark, cfg, first_day, days: int) -> list[dict]:
    """Ingest, refine and curate one landing day at a time, then the rest; returns each window's refine reports."""
    from jobs.gold import curate

    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=timezone.utc)
    reports = []
    windows = [(start + timedelta(days=d), start + timedelta(days=d + 1)) for d in range(days)]
    for lo, hi in windows + [(start + timedelta(days=days), None)]:
        reports.append(ingest_and_refine(spark, cfg, lo, hi))
        curate.run(spark, cfg, lo, hi)
    return reports
