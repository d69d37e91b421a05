"""A lake with the small landing zone ingested and refined once, shared by the silver tests."""

from __future__ import annotations

import pytest

from jobs.bronze import ingest
from jobs.config import Config
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


@pytest.fixture(scope="session")
def refined(spark, small_landing, tmp_path_factory):
    landing, manifest = small_landing
    cfg = Config(lake_root=str(tmp_path_factory.mktemp("lake")), landing_root=str(landing), pii_key=PII_KEY)
    return cfg, manifest, ingest_and_refine(spark, cfg)
