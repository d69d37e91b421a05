"""Retention: raw lines past RAPPORT_RAW_RETENTION_DAYS lose their personal data once their landing date is
refined and reconciled; lineage and counts stay, so everything still reconciles; an unreconciled date keeps them."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from jobs.lake import Lake
from jobs.runs.report import ReconciliationError
from jobs.pipeline.runner import run_stage, run_step
from jobs.runs.window import Window

pytestmark = pytest.mark.integration


def counts(lake: Lake) -> dict[str, int]:
    return {name: lake.read(name).count() for name in (
        "bronze.clickstream", "bronze.social", "bronze.orders", "ops.quarantine", "silver.clickstream_events",
        "silver.social_interactions", "silver.orders")}


@pytest.fixture(scope="module")
def expired(spark, refined, tmp_path_factory):
    """A copy of the refined lake, one orders date made unreconcilable (a bronze line lost), then retention
    with 10 days (the generated dates are three weeks old)."""
    cfg, _, _ = refined
    root = tmp_path_factory.mktemp("retention")
    shutil.copytree(Lake(cfg).root, root / "lake")
    shutil.copytree(cfg.landing_root, root / "landing")  # this module lands more files
    cfg = dataclasses.replace(cfg, lake_root=str(root / "lake"), landing_root=str(root / "landing"),
                              raw_retention_days=10)
    lake = Lake(cfg, spark)
    lost_date = lake.read("bronze.orders").agg({"landing_dt": "max"}).first()[0]
    victim = lake.read("bronze.orders").where(f"landing_dt = DATE '{lost_date}'").orderBy("source_file", "line_number") \
        .select("source_file", "line_number").limit(1)
    lake.delete_keys("bronze.orders", victim, ["source_file", "line_number"])
    day = Window.parse(str(lost_date), str(lost_date + timedelta(days=1)))
    with pytest.raises(ReconciliationError):
        run_step(spark, cfg, "refine.orders", day)
    before = counts(lake)
    report = run_step(spark, cfg, "retention", Window())
    return cfg, lost_date, before, report


def test_raw_values_of_reconciled_dates_go_and_every_row_stays(spark, expired):
    cfg, lost_date, before, report = expired
    lake = Lake(cfg, spark)
    assert counts(lake) == before  # no row lost or added: only values dropped
    assert set(report.expired) >= {"clickstream", "social", "orders"}
    assert report.kept == {"orders": [lost_date]}
    assert lost_date not in report.expired["orders"]
    for source in ("clickstream", "social"):
        assert lake.read(f"bronze.{source}").where("value IS NOT NULL OR expired_at IS NULL").count() == 0
    orders = lake.read("bronze.orders")
    assert orders.where(f"landing_dt = DATE '{lost_date}' AND (value IS NULL OR expired_at IS NOT NULL)").count() == 0
    assert orders.where(f"landing_dt <> DATE '{lost_date}' AND value IS NOT NULL").count() == 0
    q = lake.read("ops.quarantine")
    assert q.where("expired_at IS NOT NULL").count() > 0
    assert q.where("expired_at IS NOT NULL AND (raw IS NOT NULL OR raw_bytes IS NOT NULL OR detail IS NOT NULL "
                   "OR reason IS NULL)").count() == 0
    assert q.where(f"expired_at IS NULL AND NOT (source = 'orders' AND landing_dt = DATE '{lost_date}') "
                   "AND source IN ('clickstream', 'social', 'orders')").count() == 0
    # the newest extract of each reference data set is what silver is built from: it stays
    for name in ("customers", "products"):
        newest = lake.read(f"bronze.{name}").agg({"landing_dt": "max"}).first()[0]
        assert lake.read(f"bronze.{name}").where(f"landing_dt = DATE '{newest}' AND value IS NULL").count() == 0
    recorded = {(r.source, r.landing_dt): r for r in lake.read("ops.retention").collect()}
    assert sum(r.bronze_rows for (s, _), r in recorded.items() if s == "clickstream") == before["bronze.clickstream"]
    assert ("orders", lost_date) not in recorded


def test_everything_still_reconciles_and_passes_its_gate(spark, expired):
    cfg, _, before, _ = expired
    lake = Lake(cfg, spark)
    refined = run_stage(spark, cfg, "refine", Window(), only=("refine.clickstream", "refine.social"),
                        gate=False).reports
    assert refined["refine.clickstream"].balanced and refined["refine.social"].balanced
    assert refined["refine.clickstream"].new_rows == 0 and refined["refine.clickstream"].bronze_rows > 0
    assert counts(lake) == before  # refine skipped the expired lines: nothing quarantined, nothing added
    gate = run_step(spark, cfg, "gate.bronze", Window())
    assert gate.passed, gate.counts()


def test_a_new_file_for_an_expired_date_makes_it_due_again_and_a_second_run_does_nothing(spark, expired):
    from tests.handmade import land, seg

    cfg, _, _, _ = expired
    lake = Lake(cfg, spark)
    assert run_step(spark, cfg, "retention", Window()).expired == {}
    hour = lake.read("bronze.clickstream").agg({"landing_dt": "min"}).first()[0]
    from datetime import datetime, timezone

    at = datetime(hour.year, hour.month, hour.day, 23, tzinfo=timezone.utc)
    land(Path(cfg.landing_root), "clickstream", at, [seg("late-device-1", "late-user-1", at)])
    window = Window(at, at + timedelta(hours=1))
    run_stage(spark, cfg, "ingest", window, only=("ingest.clickstream",), gate=False)
    assert run_stage(spark, cfg, "refine", window, only=("refine.clickstream",), gate=False).reports[
        "refine.clickstream"].balanced
    assert lake.read("bronze.clickstream").where("value LIKE '%late-device-1%'").count() == 1
    again = run_step(spark, cfg, "retention", Window())
    assert again.expired == {"clickstream": [hour]} and again.bronze_rows == 1
    assert lake.read("bronze.clickstream").where("value IS NOT NULL").count() == 0
