"""Which landing window an Airflow run processes: scheduled, manual, asset-triggered, or told by conf."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from jobs.orchestration import window

pytestmark = pytest.mark.unit
T1 = datetime(2026, 11, 3, 10, tzinfo=timezone.utc)
T2 = datetime(2026, 11, 3, 11, tzinfo=timezone.utc)


@dataclass
class Run:
    conf: dict = field(default_factory=dict)


@dataclass
class Event:
    extra: dict


def test_a_scheduled_run_takes_its_data_interval():
    assert window({"data_interval_start": T1, "data_interval_end": T2, "dag_run": Run()}) == (T1, T2)


def test_a_manual_run_catches_up_on_everything_up_to_its_date():
    assert window({"data_interval_start": T2, "data_interval_end": T2, "dag_run": Run()}) == (None, T2)


def test_conf_names_the_window_to_reprocess():
    ctx = {"data_interval_start": T2, "data_interval_end": T2,
           "dag_run": Run({"window_start": "2026-11-01", "window_end": "2026-11-02T06:00"})}
    assert window(ctx) == (datetime(2026, 11, 1, tzinfo=timezone.utc), datetime(2026, 11, 2, 6, tzinfo=timezone.utc))


def test_an_asset_triggered_run_takes_the_union_of_the_windows_its_events_carry():
    events = {"rapport.bronze.social": [Event({"window_start": T1.isoformat(), "window_end": T2.isoformat()})],
              "rapport.bronze.orders": [Event({"window_start": "2026-11-03T09:00:00+00:00",
                                               "window_end": "2026-11-03T10:00:00+00:00"})]}
    got = window({"triggering_asset_events": events, "dag_run": Run()})
    assert got == (datetime(2026, 11, 3, 9, tzinfo=timezone.utc), T2)


def test_an_open_ended_upstream_window_stays_open_ended():
    events = {"rapport.silver": [Event({"window_start": None, "window_end": T2.isoformat()})]}
    assert window({"triggering_asset_events": events, "dag_run": Run()}) == (None, T2)


def test_airflow_connections_choose_the_engine_and_the_s3_settings(monkeypatch):
    import json

    from jobs.orchestration import config

    for var in ("SPARK_REMOTE", "RAPPORT_ENGINE", "RAPPORT_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAPPORT_CONFIG", "/dev/null")
    monkeypatch.delenv("AIRFLOW_CONN_RAPPORT_SPARK", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    plain = config()
    assert plain.engine == "embedded" and plain.aws_access_key_id is None

    monkeypatch.setenv("AIRFLOW_CONN_RAPPORT_SPARK", json.dumps({"conn_type": "spark_connect", "host": "sc://spark.internal",
                                                                 "port": 15010}))
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "AKIDEXAMPLE", "password": "secret-example",
        "extra": {"region_name": "eu-west-1", "endpoint_url": "http://minio.internal:9000"}}))
    cfg = config()
    assert (cfg.engine, cfg.spark_remote) == ("remote", "sc://spark.internal:15010")
    assert (cfg.aws_access_key_id, cfg.aws_secret_access_key, cfg.s3_region, cfg.s3_endpoint_url) == (
        "AKIDEXAMPLE", "secret-example", "eu-west-1", "http://minio.internal:9000")
    assert cfg.sources["s3_endpoint_url"] == "connection aws_default"
