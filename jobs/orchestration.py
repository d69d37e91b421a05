"""What Rapport's Airflow tasks share, so that the DAG files only declare.

- ``window(context)``: the landing window a run processes. A scheduled run takes its data
  interval; a run triggered by assets takes the union of the windows its triggering
  events carry; a manual run (``data_interval_start == data_interval_end``) takes
  everything that landed up to its date; ``conf`` ``{"window_start", "window_end"}``
  overrides all of these (reprocessing a window on purpose).
- ``config()``: the usual configuration, pointed at Spark Connect from the Airflow
  connection ``rapport_spark`` (the Spark provider's Spark Connect type) when it exists,
  and for S3 (exports, an S3 lake) at the credentials, region and endpoint of the
  ``aws_default`` connection when it exists (extras ``region_name``, ``endpoint_url``).
- ``run_step(step, context)``: opens the engine, runs one job for the window, stops the
  engine (a task that left an embedded server running kept ``dag.test()`` from exiting).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from jobs.config import Config

log = logging.getLogger(__name__)
SPARK_CONN_ID = "rapport_spark"
AWS_CONN_ID = "aws_default"
DEFAULT_ARGS = {
    "owner": "rapport",
    "retries": 2,
    "retry_delay": timedelta(minutes=2),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=2),
}


def _parse(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc)
    from jobs.storage import parse_moment

    return parse_moment(str(value))


def window(context: dict) -> tuple[datetime | None, datetime | None]:
    conf = (context.get("dag_run") and context["dag_run"].conf) or {}
    if "window_start" in conf or "window_end" in conf:
        return _parse(conf.get("window_start")), _parse(conf.get("window_end"))
    events = context.get("triggering_asset_events") or {}
    windows = [(e.extra.get("window_start"), e.extra.get("window_end"))
               for evs in events.values() for e in evs if getattr(e, "extra", None)]
    if windows:
        starts = [_parse(s) for s, _ in windows]
        ends = [_parse(e) for _, e in windows]
        return (None if None in starts else min(starts)), (None if None in ends else max(ends))
    start, end = _parse(context.get("data_interval_start")), _parse(context.get("data_interval_end"))
    if start is not None and start == end:  # a manual run: catch up on everything up to its date
        return None, end
    return start, end


def _connection(conn_id: str):
    try:
        from airflow.sdk import Connection

        return Connection.get(conn_id)
    except Exception:  # no such connection: the environment (or the defaults) decide
        return None


def config() -> Config:
    cfg = Config.load()
    spark = _connection(SPARK_CONN_ID)
    if spark is not None:
        host = (spark.host or "").removeprefix("sc://")
        url = f"sc://{host}:{spark.port or 15002}"
        log.info("Spark Connect from Airflow connection %s: %s", SPARK_CONN_ID, url)
        cfg = dataclasses.replace(cfg, engine="remote", spark_remote=url)
    aws = _connection(AWS_CONN_ID)
    if aws is not None:
        extra = aws.extra_dejson or {}
        changes = {"aws_access_key_id": aws.login, "aws_secret_access_key": aws.password,
                   "s3_region": extra.get("region_name"),
                   "s3_endpoint_url": extra.get("endpoint_url") or (extra.get("service_config") or {}).get(
                       "s3", {}).get("endpoint_url")}
        changes = {k: v for k, v in changes.items() if v}
        log.info("S3 settings from Airflow connection %s: %s", AWS_CONN_ID, ", ".join(sorted(changes)) or "none")
        cfg = dataclasses.replace(cfg, **changes, sources={**cfg.sources, **{k: f"connection {AWS_CONN_ID}" for k in changes}})
    cfg.validate()
    return cfg


def run_step(step: str, context: dict) -> dict:
    """Run one pipeline step for the run's window; return what downstream tasks and asset events need."""
    from jobs.engine import spark_session

    cfg = config()
    if step == "export" and not cfg.export_uri:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("RAPPORT_EXPORT_URI is not set, so there is nowhere to publish exports: set it to "
                                   "s3://bucket/prefix (and the aws_default connection or AWS settings) to enable them")
    start, end = window(context)
    log.info("%s for landing window %s .. %s", step, start or "the beginning", end or "now")
    with spark_session(cfg) as spark:
        result = _STEPS[step](spark, cfg, start, end)
    result.update(window_start=start.isoformat() if start else None, window_end=end.isoformat() if end else None,
                  engine=cfg.spark_remote if cfg.engine == "remote" else cfg.engine)
    return result


def _ingest(source):
    def go(spark, cfg, start, end):
        from jobs.bronze import ingest

        r = ingest.run(spark, cfg, source, start, end, progress=False)
        return {"files": r.files_taken, "bronze_rows": r.bronze_rows, "quarantined": sum(r.quarantined.values())}
    return go


def _gate(layer):
    def go(spark, cfg, start, end):
        from jobs.quality import gate

        if layer != "bronze":
            gate.require_passed(spark, cfg, {"silver": "bronze", "gold": "silver"}[layer])
        results = gate.gate(spark, cfg, layer, start, end)
        return {"expectations": sum(len(r.outcomes) for r in results)}
    return go


def _refine(spark, cfg, start, end):
    from jobs.silver import refine

    reports = refine.run_all(spark, cfg, start, end)
    return {s: reports[s].silver_rows for s in ("clickstream", "social", "orders")} | {
        "customers": reports["identity"]["customers"]}


def _curate(spark, cfg, start, end):
    from jobs.gold import curate
    from jobs.quality import gate

    gate.require_passed(spark, cfg, "silver")
    r = curate.run(spark, cfg, start, end)
    return {"timeline_rows": r.timeline_rows, "customers": r.customers}


def _export(spark, cfg, start, end):
    from jobs.export import run as export

    report = export.run(spark, cfg, progress=log.info)
    return {"snapshot": report.snapshot, "published": report.published, "unchanged": sorted(report.unchanged),
            "rows": report.rows, "pruned": report.pruned}


def _maintain(spark, cfg, start, end):
    from jobs import maintenance

    return maintenance.run(cfg)


_STEPS = {
    **{f"ingest_{s}": _ingest(s) for s in ("clickstream", "social", "orders", "customers", "products", "campaigns",
                                           "campaign_posts")},
    "gate_bronze": _gate("bronze"), "gate_silver": _gate("silver"), "gate_gold": _gate("gold"),
    "refine": _refine, "curate": _curate, "export": _export, "maintenance": _maintain,
}
