"""What Rapport's Airflow DAGs share, so that the DAG files only declare: schedule, assets, steps.

- ``stage_tasks(stage, steps)``: the tasks of a stage, from the registry: a ``check`` task (the stage's
  upstream gates and reconciliation for the run's window), one task per named step, wired by what
  each step reads and writes, and the stage's gate task, which alone announces the stage's asset
  (with the window) once it passed. A step name the registry does not know fails the DAG file at parse time.
- ``config()``: the usual configuration, pointed at Spark Connect from the Airflow connection
  ``rapport_spark`` (the Spark provider's Spark Connect type) when it exists, and for S3 at the
  credentials, region and endpoint of the ``aws_default`` connection when it exists.
- ``run_task``: opens the engine, runs one step for the run's window (``Window.from_airflow``), stops
  the engine (a task that left an embedded server running kept ``dag.test()`` from exiting).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import Any, Iterable

from jobs.config import Config
from jobs.pipeline.steps import stage, step, upstream

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


def run_task(name: str, context: dict, **options) -> dict[str, Any]:
    """Run one registered step (or ``check:<stage>``) for the run's window; return what XComs and assets need."""
    from jobs.engine import spark_session
    from jobs.pipeline import runner
    from jobs.runs.window import Window

    cfg = config()
    if name == "export" and not cfg.export_uri:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("RAPPORT_EXPORT_URI is not set, so there is nowhere to publish exports: set it to "
                                   "s3://bucket/prefix (and the aws_default connection or AWS settings) to enable them")
    from airflow.sdk.exceptions import AirflowFailException

    from jobs.runs.guards import PromotionRefused
    from jobs.runs.report import ReconciliationError
    from jobs.quality.gate import QualityGateError

    window = Window.from_airflow(context)
    engine = cfg.spark_remote if cfg.engine == "remote" else cfg.engine
    try:
        with spark_session(cfg) as spark:
            if name.startswith("check:"):
                runner.check(spark, cfg, name.split(":", 1)[1], window)
                return {**window.to_extra(), "engine": engine, "checked": name.split(":", 1)[1]}
            parent, root = _lineage_parents(context)
            report = runner.run_step(spark, cfg, name, window, parent=parent, root=root, **options)
    except (PromotionRefused, QualityGateError, ReconciliationError) as exc:
        # the data decides these, not chance: a retry would say the same, so fail now
        raise AirflowFailException(str(exc)) from exc
    return {**report.summary(), "engine": engine}


def _lineage_parents(context: dict):
    """The task instance and its DAG run as the Airflow OpenLineage provider names them, so the step's events join
    the provider's task events; (None, None) without the provider or a task instance."""
    from jobs.pipeline.lineage import Parent

    ti = context.get("ti") or context.get("task_instance")
    try:
        from airflow.providers.openlineage.plugins import macros
    except ImportError:
        return None, None
    if ti is None:
        return None, None
    return (Parent(macros.lineage_job_namespace(), macros.lineage_job_name(ti), macros.lineage_run_id(ti)),
            Parent(macros.lineage_root_job_namespace(ti), macros.lineage_root_job_name(ti), macros.lineage_root_run_id(ti)))


def _task(name: str, task_id: str, outlet=None, trigger_rule: str = "all_success"):
    from airflow.sdk import task

    @task(task_id=task_id, outlets=[outlet] if outlet is not None else [], trigger_rule=trigger_rule)
    def run(**context):
        result = run_task(name, context)
        if outlet is not None:  # announce the window, so the consumer processes the same one
            context["outlet_events"][outlet].extra = {k: v for k, v in result.items() if k.startswith("window_")}
        return result

    return run()


def stage_tasks(stage_name: str, steps: Iterable[str]) -> dict[str, Any]:
    """Declare a stage's tasks in the current DAG: check → steps (wired by the registry) → gate (→ asset)."""
    from jobs.assets import asset

    st = stage(stage_name)
    names = tuple(steps)
    for name in names:
        step(name)  # an unknown name fails here, when the DAG file is parsed
        if name not in st.steps:
            raise ValueError(f"step {name!r} is not part of stage {stage_name!r} ({', '.join(st.steps)})")
    tasks: dict[str, Any] = {}
    check = _task(f"check:{stage_name}", "check") if st.requires else None
    last_outlet = asset(st.asset) if st.gate is None else None
    for name in names:
        tasks[name] = _task(name, step(name).task_id, outlet=last_outlet)
        before = [tasks[u] for u in upstream(name, names)]
        for b in before:
            b >> tasks[name]
        if not before and check is not None:
            check >> tasks[name]
    if st.gate is not None:
        gate = _task(st.gate, step(st.gate).task_id, outlet=asset(st.asset))
        for name in names:
            tasks[name] >> gate
        tasks[st.gate] = gate
    return tasks


def step_task(name: str, trigger_rule: str = "all_success"):
    """A single registered step as a task (maintenance); ``trigger_rule="all_done"`` runs it whatever came before."""
    return _task(name, step(name).task_id, trigger_rule=trigger_rule)
