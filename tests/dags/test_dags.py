"""The DAGs: they parse fast and cleanly, and the chain builds gold through Airflow itself (dag.test)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timezone

import pytest

from jobs.airflow_local import airflow_env, run_chain
from jobs.config import Config
from jobs.generate import Params, generate
from jobs.gold import curate
from jobs.lake import Lake
from tests.lakes import PII_KEY, ingest_and_refine, table_rows

PARSE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "durations": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats},
    "dags": {d.dag_id: {"tags": sorted(d.tags), "owner": d.owner, "retries": d.default_args.get("retries"),
                        "max_active_runs": d.max_active_runs, "tasks": len(d.tasks)} for d in bag.dags.values()},
    "heavy_imports": sorted(m for m in ("pyspark", "great_expectations", "deltalake", "pysail") if m in sys.modules),
}))
"""


@pytest.mark.unit
def test_dagbag_parses_fast_with_owners_tags_and_retries(tmp_path):
    from jobs.airflow_local import REPO

    proc = subprocess.run([sys.executable, "-c", PARSE, str(REPO / "dags")], env=airflow_env(tmp_path / "airflow"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["errors"] == {}
    assert set(info["dags"]) == {"rapport_ingest", "rapport_refine", "rapport_curate", "rapport_export", "rapport_maintenance"}
    assert all(seconds < 1.0 for seconds in info["durations"].values()), info["durations"]
    for dag_id, d in info["dags"].items():
        assert "rapport" in d["tags"] and d["owner"] == "rapport" and d["retries"] >= 1 and d["max_active_runs"] == 1, dag_id
    assert info["heavy_imports"] == []  # parsing starts no engine and loads no Spark, GE or Delta code


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    root = tmp_path_factory.mktemp("af-landing")
    generate(Params(customers=400, days=3, start=date(2026, 11, 1), seed=11), root, progress=False)
    return root


def _env_config(monkeypatch, lake: str, landing) -> Config:
    monkeypatch.setenv("RAPPORT_LAKE_ROOT", lake)
    monkeypatch.setenv("RAPPORT_LANDING_ROOT", str(landing))
    monkeypatch.setenv("RAPPORT_PII_KEY", PII_KEY)
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    return Config(lake_root=lake, landing_root=str(landing), pii_key=PII_KEY)


@pytest.mark.integration
def test_the_dag_chain_builds_gold_through_airflow(spark, landing, tmp_path, monkeypatch):
    cfg = _env_config(monkeypatch, str(tmp_path / "lake"), landing)
    summary = run_chain(tmp_path / "airflow", datetime(2026, 11, 12, tzinfo=timezone.utc))
    assert summary == {"rapport_ingest": "success", "rapport_refine": "success", "rapport_curate": "success"}
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:  # the real metadata DB recorded the runs
        runs = dict(db.execute("SELECT dag_id, state FROM dag_run").fetchall())
        gates = db.execute("SELECT count(*) FROM task_instance WHERE task_id LIKE 'gate_%' AND state = 'success'").fetchone()[0]
    assert runs == {"rapport_ingest": "success", "rapport_refine": "success", "rapport_curate": "success"} and gates == 3
    direct = Config(lake_root=str(tmp_path / "direct"), landing_root=str(landing), pii_key=PII_KEY)
    ingest_and_refine(spark, direct)
    curate.run(spark, direct, full=True)
    for table in ("customer_timeline", "customer_relationship", "daily_product_trends", "campaign_performance"):
        assert table_rows(spark, Lake(cfg).path(f"gold.{table}")) == table_rows(spark, Lake(direct).path(f"gold.{table}")), table


@pytest.mark.integration
def test_a_three_day_backfill_gives_the_same_tables_as_one_run(spark, landing, tmp_path, monkeypatch):
    home = tmp_path / "airflow"
    daily = _env_config(monkeypatch, str(tmp_path / "daily"), landing)
    days = ["2026-11-01T00:00:00+00:00", "2026-11-02T00:00:00+00:00", "2026-11-03T00:00:00+00:00", None]
    for i in range(3):  # one run per daily interval, in order, as `airflow backfill create` schedules them
        end = days[i + 1] if i < 2 else None  # the last day also takes what arrived late
        assert set(run_chain(home, datetime.fromisoformat(days[i]), (days[i], end)).values()) == {"success"}
    once = _env_config(monkeypatch, str(tmp_path / "once"), landing)
    assert set(run_chain(home, datetime(2026, 11, 4, tzinfo=timezone.utc), (days[0], None)).values()) == {"success"}
    for layer, table in (("silver", "clickstream_events"), ("silver", "orders"), ("silver", "identity_map"),
                         ("gold", "customer_timeline"), ("gold", "customer_relationship"),
                         ("gold", "daily_product_trends")):
        assert table_rows(spark, Lake(daily).path(layer, table)) == table_rows(spark, Lake(once).path(layer, table)), table


@pytest.mark.integration
def test_the_export_dag_publishes_through_the_airflow_connections(spark, landing, tmp_path, monkeypatch, s3_config,
                                                                  served_engine):
    """rapport_export on gold, its engine from the rapport_spark connection, S3 from aws_default (both by env)."""
    from jobs.export.snapshot import SnapshotStore, verify
    from jobs.storage import s3_client

    cfg = _env_config(monkeypatch, str(tmp_path / "lake"), landing)
    ingest_and_refine(spark, cfg)
    curate.run(spark, cfg, full=True)
    s3, bucket = s3_config
    url, _ = served_engine
    host, port = url.removeprefix("sc://").rsplit(":", 1)
    monkeypatch.setenv("RAPPORT_EXPORT_URI", f"s3://{bucket}/recs")
    for var in ("RAPPORT_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)  # only the connection tells where S3 is
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing",
        "extra": {"region_name": "us-east-1", "endpoint_url": s3.s3_endpoint_url}}))
    monkeypatch.setenv("AIRFLOW_CONN_RAPPORT_SPARK", json.dumps({"conn_type": "spark_connect", "host": host,
                                                                 "port": int(port)}))
    home = tmp_path / "airflow"
    assert run_chain(home, datetime(2026, 11, 5, tzinfo=timezone.utc), dags=("rapport_export",)) == {
        "rapport_export": "success"}
    store = SnapshotStore(s3_client(s3), f"s3://{bucket}/recs")
    for dataset in ("interactions", "customer_features"):
        latest = store.latest(dataset)
        assert latest is not None and verify(s3_client(s3), store.uri(latest.prefix)).ok, dataset
    with sqlite3.connect(home / "airflow.db") as db:  # the task said which engine it ran on
        (value,) = db.execute("SELECT value FROM xcom WHERE dag_id = 'rapport_export' AND task_id = 'export'").fetchone()
    result = json.loads(value)
    assert result["engine"] == url and set(result["published"]) == {"interactions", "customer_features"}


@pytest.mark.integration
def test_the_export_dag_skips_when_no_export_location_is_set(tmp_path, monkeypatch, landing):
    _env_config(monkeypatch, str(tmp_path / "lake"), landing)
    monkeypatch.delenv("RAPPORT_EXPORT_URI", raising=False)
    home = tmp_path / "airflow"
    assert run_chain(home, datetime(2026, 11, 5, tzinfo=timezone.utc), dags=("rapport_export",)) == {
        "rapport_export": "success"}
    with sqlite3.connect(home / "airflow.db") as db:
        assert db.execute("SELECT state FROM task_instance WHERE task_id = 'export'").fetchone() == ("skipped",)
