"""Windows and run ids: parsed once, from the CLI or Airflow, and written down the same way everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import pytest

from jobs.runs.run_id import RunId
from jobs.runs.window import Window, WindowError

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
    assert Window.from_airflow({"data_interval_start": T1, "data_interval_end": T2, "dag_run": Run()}) == Window(T1, T2)


def test_a_micro_batch_takes_its_hour_and_the_one_before():
    """Every five minutes: the window is the interval's hour and the hour before it (whose last file the collector
    closed at the hour), whole hours as every window is."""
    from datetime import timedelta

    start = T2 + timedelta(minutes=5)
    got = Window.from_airflow({"data_interval_start": start, "data_interval_end": start + timedelta(minutes=5),
                               "dag_run": Run()})
    assert got == Window(T1, T2 + timedelta(hours=1))


def test_a_manual_run_catches_up_on_everything_up_to_its_date():
    assert Window.from_airflow({"data_interval_start": T2, "data_interval_end": T2, "dag_run": Run()}) == Window(None, T2)


def test_conf_names_the_window_to_reprocess():
    ctx = {"data_interval_start": T2, "data_interval_end": T2,
           "dag_run": Run({"window_start": "2026-11-01", "window_end": "2026-11-02T06:00"})}
    assert Window.from_airflow(ctx) == Window(datetime(2026, 11, 1, tzinfo=timezone.utc),
                                              datetime(2026, 11, 2, 6, tzinfo=timezone.utc))


def test_an_asset_triggered_run_takes_the_union_of_the_windows_its_events_carry():
    events = {"rapport.bronze": [Event({"window_start": T1.isoformat(), "window_end": T2.isoformat()}),
                                 Event({"window_start": "2026-11-03T09:00:00+00:00",
                                        "window_end": "2026-11-03T10:00:00+00:00"})]}
    got = Window.from_airflow({"triggering_asset_events": events, "dag_run": Run()})
    assert got == Window(datetime(2026, 11, 3, 9, tzinfo=timezone.utc), T2)


def test_an_open_ended_upstream_window_stays_open_ended():
    events = {"rapport.silver": [Event({"window_start": None, "window_end": T2.isoformat()})]}
    assert Window.from_airflow({"triggering_asset_events": events, "dag_run": Run()}) == Window(None, T2)


def test_extras_round_trip_and_bounds_cover_whole_hours():
    w = Window.parse("2026-11-03T10:20", "2026-11-03T12:05Z")
    assert (w.start, w.end) == (T1, datetime(2026, 11, 3, 13, tzinfo=timezone.utc))  # whole landing hours
    assert Window.from_extra(w.to_extra()) == w and Window.from_extra(Window().to_extra()) == Window()
    assert w.contains(T1) and not w.contains(datetime(2026, 11, 3, 9, tzinfo=timezone.utc))
    assert w.cli_args() == "--from 2026-11-03T10:00 --to 2026-11-03T13:00"


@pytest.mark.parametrize("start, end, word", [("2026-11-05", "2026-11-01", "reversed"),
                                               ("2026-11-05T10:00", "2026-11-05T10:00", "empty")])
def test_an_empty_or_reversed_window_is_refused(start, end, word):
    with pytest.raises(WindowError, match=word):
        Window.parse(start, end)


def test_an_unparseable_bound_says_what_it_wants():
    with pytest.raises(WindowError, match="YYYY-MM-DD"):
        Window.parse("yesterday")


def test_the_sql_predicate_selects_exactly_the_hours_of_the_window(spark):
    w = Window.parse("2026-11-03T22:00", "2026-11-04T02:00")
    hours = spark.createDataFrame([(f"2026-11-0{d}", h) for d in (3, 4) for h in range(24)], "d string, h int") \
        .selectExpr("CAST(d AS DATE) AS landing_dt", "h AS landing_hour")
    got = sorted((str(r.landing_dt), r.landing_hour) for r in hours.where(w.sql()).collect())
    assert got == [("2026-11-03", 22), ("2026-11-03", 23), ("2026-11-04", 0), ("2026-11-04", 1)]
    assert hours.where(Window().sql()).count() == 48


def test_run_ids_carry_kind_and_start_and_parse_back():
    rid = RunId.new("refine")
    child = rid.child("clickstream")
    assert RunId.parse(str(child)) == child and child.started == rid.started and child.kind == "refine-clickstream"
    assert RunId.parse("not-a-run") is None and RunId.parse("export-20260101T000000-0123abcd").started.year == 2026


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
