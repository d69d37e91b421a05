"""Weekly maintenance on a copy of a real lake: tables keep their rows, abandoned staging goes, live staging stays."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from jobs import maintenance
from jobs.bronze.ingest import new_run_id
from jobs.catalog import existing_tables
from jobs.lake import Lake
from tests.lakes import table_rows

pytestmark = pytest.mark.integration


def test_maintenance_compacts_every_table_without_changing_rows_and_clears_abandoned_staging(spark, refined, tmp_path):
    cfg, _, _ = refined
    shutil.copytree(Lake(cfg).root, tmp_path / "lake")
    cfg = dataclasses.replace(cfg, lake_root=str(tmp_path / "lake"))
    lake = Lake(cfg, spark)
    staging = tmp_path / "lake" / "_staging"
    abandoned, running = "export-20260101T000000-0123abcd", new_run_id("export")
    for run_id in (abandoned, running):
        (staging / run_id / "interactions").mkdir(parents=True)
        (staging / run_id / "interactions" / "part-0.parquet").write_bytes(b"x")
    (staging / "not-a-run").mkdir()

    path = lake.path("silver.clickstream_events")
    before = table_rows(spark, path)
    summary = maintenance.run(cfg)
    assert summary["tables"] == len(existing_tables(cfg)) > 10
    assert summary["staging_removed"] == 1
    assert not (staging / abandoned).exists() and (staging / running).exists() and (staging / "not-a-run").exists()
    assert table_rows(spark, path) == before
