"""The DAGs: they parse fast and cleanly, and the chain builds gold through Airflow itself (dag.test)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone

import pytest

from jobs.airflow_local import airflow_env, run_chain
from jobs.config import Config
from jobs.generate import Params, generate
from jobs.lake import Lake
from tests.lakes import PII_KEY, curate, ingest_and_refine, table_rows

PARSE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "durations": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats},
    "dags": {d.dag_id: {"tags": sorted(d.tags), "owner": d.owner, "retries": d.default_args.get("retries"),
                        "max_active_runs": d.max_active_runs, "tasks": len(d.tasks),
                        "edges": sorted([t.task_id, u] for t in d.tasks for u in t.downstream_task_ids),
                        "rules": {t.task_id: str(t.trigger_rule) for t in d.tasks}}
             for d in bag.dags.values()},
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
    assert set(info["dags"]) == {"rapport_ingest", "rapport_refine", "rapport_curate", "rapport_export",
                                 "rapport_maintenance", "rapport_privacy"}
    assert info["dags"]["rapport_privacy"]["edges"] == [["privacy", "retention"]]  # requests first, then retention
    assert ["gate_gold", "report"] in info["dags"]["rapport_curate"]["edges"]  # the report only from gold that passed
    # weekly: whole-table gate, then compaction whatever the gate said
    assert info["dags"]["rapport_maintenance"]["edges"] == [["gate_full", "maintenance"]]
    assert info["dags"]["rapport_maintenance"]["rules"]["maintenance"].lower().endswith("all_done"), info["dags"]["rapport_maintenance"]["rules"]
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
def test_the_dag_chain_builds_gold_through_airflow(spark, landing, tmp_path, monkeypatch, lineage_receiver):
    cfg = _env_config(monkeypatch, str(tmp_path / "lake"), landing)
    url, events = lineage_receiver  # OpenLineage on: the provider's task events and Rapport's step events join up
    monkeypatch.setenv("OPENLINEAGE_URL", url)
    summary = run_chain(tmp_path / "airflow", datetime(2026, 11, 12, tzinfo=timezone.utc))
    assert summary == {"rapport_ingest": "success", "rapport_refine": "success", "rapport_curate": "success"}
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:  # the real metadata DB recorded the runs
        runs = dict(db.execute("SELECT dag_id, state FROM dag_run").fetchall())
        gates = db.execute("SELECT count(*) FROM task_instance WHERE task_id LIKE 'gate_%' AND state = 'success'").fetchone()[0]
        report = db.execute("SELECT state FROM task_instance WHERE dag_id = 'rapport_curate' AND task_id = 'report'").fetchone()
    assert report == ("success",) and len(list((tmp_path / "lake" / "_reports").glob("2026-*/index.html"))) == 1
    assert runs == {"rapport_ingest": "success", "rapport_refine": "success", "rapport_curate": "success"} and gates == 3
    steps = [e for e in events if e["job"]["name"].startswith("rapport.")]
    tasks = {(e["job"]["name"], e["run"]["runId"]) for e in events if e["job"]["name"].startswith("rapport_")}
    assert {e["job"]["name"] for e in steps} >= {"rapport.refine.clickstream", "rapport.curate", "rapport.gate.gold"}
    for e in steps:  # each step's parent is the Airflow task that ran it, as the provider itself reported it
        parent = e["run"]["facets"]["parent"]
        assert parent["job"]["name"].split(".")[0] in runs and parent["root"]["job"]["name"] in runs, parent
        assert (parent["job"]["name"], parent["run"]["runId"]) in tasks, (parent, sorted(tasks)[:5])
    direct = Config(lake_root=str(tmp_path / "direct"), landing_root=str(landing), pii_key=PII_KEY)
    ingest_and_refine(spark, direct)
    curate(spark, direct, full=True)
    for table in ("customer_timeline", "customer_relationship", "daily_product_trends", "campaign_performance"):
        assert table_rows(spark, Lake(cfg).path(f"gold.{table}")) == table_rows(spark, Lake(direct).path(f"gold.{table}")), table


@pytest.mark.slow
@pytest.mark.integration
def test_a_failed_bronze_gate_stops_refine_for_its_window_and_a_later_passing_window_does_not_unblock_it(
        spark, landing, tmp_path, monkeypatch):
    """Day 1 holds a line the (test's) bronze suite forbids; day 2 is clean. Through Airflow's dag.test()."""
    import gzip
    import shutil

    from jobs.config import REPO_ROOT

    mine = tmp_path / "landing"
    shutil.copytree(landing, mine)
    poisoned = mine / "clickstream" / "dt=2026-11-01" / "hour=12" / "part-poison.json.gz"
    poisoned.write_bytes(gzip.compress(b'{"type": "page", "messageId": "POISON-1", "anonymousId": "a"}\n'))
    suites = tmp_path / "suites"
    shutil.copytree(REPO_ROOT / "quality" / "suites", suites)
    with open(suites / "bronze_clickstream.yaml", "a") as f:
        f.write("  - {type: expect_column_values_to_not_match_regex, column: value, regex: POISON, severity: critical}\n")
    cfg = _env_config(monkeypatch, str(tmp_path / "lake"), mine)
    monkeypatch.setenv("RAPPORT_QUALITY_SUITES", str(suites))
    home, day1, day2 = tmp_path / "airflow", ("2026-11-01T00:00", "2026-11-02T00:00"), ("2026-11-02T00:00", "2026-11-03T00:00")
    date = datetime(2026, 11, 1, tzinfo=timezone.utc)

    assert run_chain(home, date, day1, dags=("rapport_ingest",), strict=False)["rapport_ingest"] == "failed"
    refused = run_chain(home, date, day1, dags=("rapport_refine",), strict=False)
    assert refused["rapport_refine"] == "failed"
    log = open(refused["log"]).read()
    # the gate judged the whole day-1 window it ran for: every landed hour of it stays blocked
    assert "bronze.clickstream: the bronze gate failed on landing hours 2026-11-01 00:00 .." in log
    with sqlite3.connect(home / "airflow.db") as db:
        states = dict(db.execute("SELECT task_id, state FROM task_instance WHERE dag_id = 'rapport_refine'").fetchall())
    assert states["check"] == "failed" and states["refine_clickstream"] == "upstream_failed"
    assert not Lake(cfg).exists("silver.clickstream_events")  # nothing was built from the failed window

    assert set(run_chain(home, date + timedelta(days=1), day2).values()) == {"success"}  # a clean day passes
    again = run_chain(home, date + timedelta(days=1), (day1[0], day2[1]), dags=("rapport_refine",), strict=False)
    assert again["rapport_refine"] == "failed"  # the later pass un-blocked nothing of day 1
    assert "bronze.clickstream: the bronze gate failed on landing hours 2026-11-01 00:00 .." in open(again["log"]).read()


@pytest.mark.integration
@pytest.mark.slow
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
        assert table_rows(spark, Lake(daily).path(f"{layer}.{table}")) == \
            table_rows(spark, Lake(once).path(f"{layer}.{table}")), table


@pytest.mark.slow
@pytest.mark.integration
def test_the_export_dag_publishes_through_the_airflow_connections(spark, landing, tmp_path, monkeypatch, s3_config,
                                                                  served_engine):
    """rapport_export on gold, its engine from the rapport_spark connection, S3 from aws_default (both by env)."""
    from jobs.export.snapshot import SnapshotStore, verify
    from jobs.storage import s3_client

    cfg = _env_config(monkeypatch, str(tmp_path / "lake"), landing)
    ingest_and_refine(spark, cfg)
    curate(spark, cfg, full=True)
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


@pytest.mark.slow
@pytest.mark.integration
def test_the_export_dag_skips_when_no_export_location_is_set(tmp_path, monkeypatch, landing):
    _env_config(monkeypatch, str(tmp_path / "lake"), landing)
    monkeypatch.delenv("RAPPORT_EXPORT_URI", raising=False)
    home = tmp_path / "airflow"
    assert run_chain(home, datetime(2026, 11, 5, tzinfo=timezone.utc), dags=("rapport_export",)) == {
        "rapport_export": "success"}
    with sqlite3.connect(home / "airflow.db") as db:
        assert db.execute("SELECT state FROM task_instance WHERE task_id = 'export'").fetchone() == ("skipped",)
