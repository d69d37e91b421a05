"""Bronze ingest on generated data: matches the manifest, idempotent, interval-safe, crash-safe."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone

import pytest

from jobs.config import Config
from jobs.lake import Lake
from schemas.sources import EVENT_SOURCES as SOURCES
from jobs.runs.window import Window
from tests.conftest import SMALL

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 1, tzinfo=timezone.utc)


def take(spark, cfg, source, start=None, end=None):
    """The registered ingest step of one source, for one window."""
    from jobs.pipeline.runner import run_step

    return run_step(spark, cfg, f"ingest.{source}", Window(start, end), progress=False)


def rows(spark, path, cols=("source_file", "line_number", "value")):
    return sorted(tuple(r) for r in spark.read.format("delta").load(path).select(*cols).collect())


@pytest.fixture(scope="module")
def ingested(spark, small_landing, tmp_path_factory):
    landing, manifest = small_landing
    cfg = Config(lake_root=str(tmp_path_factory.mktemp("lake")), landing_root=str(landing))
    reports = {s: take(spark, cfg, s) for s in SOURCES}
    return cfg, manifest, reports


@pytest.mark.parametrize("source", SOURCES)
def test_bronze_and_quarantine_match_the_manifest(spark, ingested, source):
    cfg, manifest, reports = ingested
    lake, s, r = Lake(cfg, spark), manifest["sources"][source], reports[source]
    readable = s["lines"] - s["truncated_gzip"]["lines"]
    assert r.files_taken == s["files"] and r.lines == readable + s["truncated_gzip"]["members"]
    assert r.quarantined == {"malformed_json": s["bad"]["malformed_json"],
                             "corrupt_gzip_member": s["truncated_gzip"]["members"]}
    assert lake.read(f"bronze.{source}").count() == readable - s["bad"]["malformed_json"]
    q = lake.read("ops.quarantine").where(f"source = '{source}'")
    by_reason = {row.reason: row.n for row in q.groupBy("reason").count().withColumnRenamed("count", "n").collect()}
    assert by_reason == r.quarantined
    # a quarantined line says where it came from, exactly
    sample = q.where("reason = 'malformed_json'").first()
    assert sample.raw and sample.source_file.startswith(f"{source}/dt=") and sample.line_number >= 1
    log = lake.read("ops.ingest_log").where(f"source = '{source}'")
    assert log.count() == s["files"]
    assert log.selectExpr("sum(lines) = sum(bronze_rows + quarantined) AS ok").first().ok  # lines include damaged members


def test_rerunning_takes_nothing_and_changes_nothing(spark, ingested):
    cfg, _, _ = ingested
    lake = Lake(cfg, spark)
    before = {s: lake.version(f"bronze.{s}") for s in SOURCES}
    for s in SOURCES:
        again = take(spark, cfg, s)
        assert again.files_taken == 0 and again.files_skipped > 0
    assert {s: lake.version(f"bronze.{s}") for s in SOURCES} == before


def test_day_by_day_gives_the_same_bronze_as_one_run(spark, ingested, small_landing, tmp_path):
    cfg, _, _ = ingested
    daily = Config(lake_root=str(tmp_path / "lake"), landing_root=cfg.landing_root)
    last_day = SMALL["days"] + 8  # late arrivals and duplicates land days after the window
    for d in range(last_day):
        take(spark, daily, "orders", START + timedelta(days=d), START + timedelta(days=d + 1))
    take(spark, daily, "orders", START + timedelta(days=last_day), None)
    assert rows(spark, Lake(daily).path("bronze.orders")) == rows(spark, Lake(cfg).path("bronze.orders"))


def test_a_run_that_died_before_logging_is_cleaned_up(spark, ingested, tmp_path):
    cfg, _, _ = ingested
    crashed = Config(lake_root=str(tmp_path / "lake"), landing_root=cfg.landing_root)
    lake = Lake(crashed, spark)
    take(spark, crashed, "social")
    expected = rows(spark, lake.path("bronze.social"))
    shutil.rmtree(lake.path("ops.ingest_log"))  # as if the log write never happened
    report = take(spark, crashed, "social")
    assert report.recovered_rows == len(expected)
    assert rows(spark, lake.path("bronze.social")) == expected
    q = lake.read("ops.quarantine").where("source = 'social'")
    assert q.count() == q.dropDuplicates(["source_file", "line_number"]).count()


def test_a_file_that_changes_after_it_was_taken_is_taken_again_as_a_new_version(spark, small_landing, tmp_path):
    landing, _ = small_landing
    copy = tmp_path / "landing"
    shutil.copytree(landing / "orders", copy / "orders")
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(copy))
    first = take(spark, cfg, "orders")
    target = sorted((copy / "orders").rglob("*.json.gz"))[3]
    rel = target.relative_to(copy).as_posix()
    lake = Lake(cfg, spark)
    before = lake.read("bronze.orders").where(f"source_file = '{rel}'").count()
    target.write_bytes(target.read_bytes() + target.read_bytes())  # the collector rewrote it, twice as long
    report = take(spark, cfg, "orders")
    assert (report.files_taken, report.files_changed, report.recovered_rows) == (1, 1, 0)
    assert lake.read("bronze.orders").where(f"source_file = '{rel}'").count() == before  # version 1 kept as it was
    assert lake.read("bronze.orders").where(f"source_file = '{rel}@v2'").count() == 2 * before
    versions = {r.file_version: r.source_file for r in lake.read("ops.ingest_log").where(f"path = '{rel}'").collect()}
    assert versions == {1: rel, 2: f"{rel}@v2"} and first.files_taken > 1
    assert take(spark, cfg, "orders").files_taken == 0  # and that version is not taken twice


def test_cli_ingest_reports_per_source(tmp_path, small_landing):
    import subprocess
    import sys

    landing, manifest = small_landing
    env = {"PATH": "/usr/bin:/bin", "RAPPORT_LAKE_ROOT": str(tmp_path / "lake"), "RAPPORT_LANDING_ROOT": str(landing)}
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "ingest", "--source", "social"], capture_output=True,
                          text=True, env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "social" in proc.stdout and f"malformed_json {manifest['sources']['social']['bad']['malformed_json']:,}" in proc.stdout


def test_ingests_a_landing_zone_on_s3_once(spark, small_landing, s3_config, tmp_path):
    import dataclasses

    from jobs.storage import s3_client

    landing, manifest = small_landing
    cfg, bucket = s3_config
    client = s3_client(cfg)
    for path in sorted((landing / "orders").rglob("*.json.gz")):
        client.upload_file(str(path), bucket, f"landing/{path.relative_to(landing).as_posix()}")
    cfg = dataclasses.replace(cfg, landing_root=f"s3://{bucket}/landing", lake_root=str(tmp_path / "lake"))
    report = take(spark, cfg, "orders")
    s = manifest["sources"]["orders"]
    assert report.files_taken == s["files"]
    assert report.bronze_rows == s["lines"] - s["truncated_gzip"]["lines"] - s["bad"]["malformed_json"]
    assert report.quarantined["corrupt_gzip_member"] == s["truncated_gzip"]["members"]
    assert take(spark, cfg, "orders").files_taken == 0  # ETags already logged
    key = f"landing/{sorted((landing / 'orders').rglob('*.json.gz'))[0].relative_to(landing).as_posix()}"
    client.put_object(Bucket=bucket, Key=key, Body=b"")  # replaced upstream: a new ETag
    assert take(spark, cfg, "orders").files_taken == 1
