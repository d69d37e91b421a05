"""Helpers that build lakes from landing zones through the registered pipeline, shared by the tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from jobs.config import Config
from jobs.lake import Lake
from jobs.pipeline.runner import run_stage
from jobs.runs.window import Window
from schemas import affinity
from schemas.views import VIEWS

PII_KEY = "test-key-0123456789abcdef"
RUN_COLUMNS = {"run_id", "ingested_at", "quarantined_at", "audited_at", "found_at", "reported_at", "merged_at", "recorded_at"}


def ingest_and_refine(spark, cfg, start=None, end=None, gates: bool = True) -> dict:
    """Ingest and refine one window (with the bronze and silver gates); the refine reports by source and step."""
    window = Window(start, end)
    run_stage(spark, cfg, "ingest", window, gate=gates, checks=gates)
    reports = run_stage(spark, cfg, "refine", window, gate=gates, checks=gates).reports
    return {**{name.split(".", 1)[1]: r for name, r in reports.items()}, **reports}


def curate(spark, cfg, start=None, end=None, gates: bool = True, **options):
    """Curate one window (with its checks and the gold gate); the curate report."""
    return run_stage(spark, cfg, "curate", Window(start, end), gate=gates, checks=gates, **options).reports["curate"]


def table_rows(spark, path) -> list[tuple]:
    """Every row of a table without the columns that name the run, sorted: what 'identical' compares. A declared
    view (``gold.customer_timeline``) at a lake's path is read through that lake, as every reader reads it."""
    root, _, name = path.rstrip("/").rpartition("/")
    root, _, layer = root.rpartition("/")
    if f"{layer}.{name}" in VIEWS:
        df = Lake(Config(lake_root=root), spark).read(f"{layer}.{name}")
    elif f"{layer}.{name}" == affinity.TABLE:  # a log of changes: what it holds is what its reader reads
        df = affinity.current(spark.read.format("delta").load(path))
    else:
        df = spark.read.format("delta").load(path)
    cols = sorted(c for c in df.columns if c not in RUN_COLUMNS)
    return sorted((tuple(str(r[c]) for c in cols) for r in df.select(*cols).collect()))


def day_by_day(spark, cfg, first_day, days: int, gates: bool = False) -> list[dict]:
    """Ingest, refine and curate one landing day at a time, then the rest; returns each window's refine reports.
    Gates are off by default: what this compares is the tables, and the gates are tested on their own."""
    start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=timezone.utc)
    reports = []
    windows = [(start + timedelta(days=d), start + timedelta(days=d + 1)) for d in range(days)]
    for lo, hi in windows + [(start + timedelta(days=days), None)]:
        reports.append(ingest_and_refine(spark, cfg, lo, hi, gates=gates))
        curate(spark, cfg, lo, hi, gates=gates)
    return reports
