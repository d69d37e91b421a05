"""OpenLineage run events for every step: which run read which tables and wrote which, with their schemas and the
gates' results. Marquez, DataHub and OpenMetadata read them.

Configured the standard way (``OPENLINEAGE_URL`` and ``OPENLINEAGE_API_KEY``, ``OPENLINEAGE_CONFIG`` or an
``openlineage.yml``, ``OPENLINEAGE__TRANSPORT__…``); with none of them, nothing is sent (the client's console
fallback is not used), and ``OPENLINEAGE_DISABLED=true`` turns it off. Each step (``jobs.pipeline.runner.run_step``,
so the CLI and the Airflow tasks alike) emits START, then COMPLETE or FAIL:

- job: namespace ``OPENLINEAGE_NAMESPACE`` (default ``rapport``), name ``rapport.<step>``; run id: a UUID derived
  from Rapport's run id (the same run always gets the same UUID), with its stage run as the parent, or, in an Airflow
  task, that task instance as the OpenLineage provider names it (and its DAG run as the root), so the provider's task
  events and Rapport's datasets join up;
- datasets named as in the registry (``silver.orders``) in the namespace of the lake's root (``file:///…`` or
  ``s3://bucket/prefix``), each with a schema facet from ``schemas/<layer>.yaml``;
- a gate's inputs carry a data-quality assertions facet: one assertion per expectation, with its success;
- FAIL carries an error message facet.

An event that cannot be sent is logged and never fails the step: lineage observes the run, it does not gate it.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from jobs.config import Config

log = logging.getLogger(__name__)
PRODUCER = "https://github.com/rapport-lakehouse/rapport"
RUN_NAMESPACE = uuid.UUID("6f0b7c53-5a39-4b0e-9d43-6c9a3f1e2d11")  # run ids -> UUIDs, stable


@dataclass(frozen=True)
class Parent:
    """A run outside Rapport that a step belongs to: an Airflow task instance, as the OpenLineage provider names
    it (``macros.lineage_job_namespace``, ``lineage_job_name``, ``lineage_run_id``), so the two join up."""

    namespace: str
    name: str
    run_id: str


def configured() -> bool:
    """Whether OpenLineage is configured in this process's environment (else nothing is sent)."""
    if os.getenv("OPENLINEAGE_DISABLED", "").strip().lower() == "true":
        return False
    if os.getenv("OPENLINEAGE_URL") or any(k.startswith("OPENLINEAGE__TRANSPORT") for k in os.environ):
        return True
    paths = (os.getenv("OPENLINEAGE_CONFIG"), Path.cwd() / "openlineage.yml", Path.home() / ".openlineage" / "openlineage.yml")
    return any(p and Path(p).is_file() for p in paths)


@lru_cache(maxsize=1)
def _client(environment: tuple) -> Any:
    from openlineage.client import OpenLineageClient

    return OpenLineageClient()


def client() -> Any | None:
    if not configured():
        return None
    return _client(tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("OPENLINEAGE"))))


def run_uuid(run_id: str) -> str:
    return str(uuid.uuid5(RUN_NAMESPACE, run_id))


def _kind(run_id: str) -> str:
    """The stage a run id names (``refine`` of ``refine-20261205T…-ab12``)."""
    from jobs.runs.run_id import RunId

    parsed = RunId.parse(run_id)
    return parsed.kind if parsed is not None else "stage"


def namespace() -> str:
    return os.getenv("OPENLINEAGE_NAMESPACE", "rapport")


def _dataset_namespace(cfg: "Config") -> str:
    root = cfg.lake_root
    return root.rstrip("/") if root.startswith("s3://") else Path(root).resolve().as_uri()


def _schema(name: str) -> dict:
    from openlineage.client.facet_v2 import schema_dataset

    from schemas.tables import UnknownTableError, table

    try:
        t = table(name)
    except UnknownTableError:
        return {}
    fields = [schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.type, description=c.doc) for c in t.columns]
    return {"schema": schema_dataset.SchemaDatasetFacet(fields=fields, producer=PRODUCER)}


def _quality(assertions: list[tuple[str, str | None, bool, str]]) -> dict:
    from openlineage.client.facet_v2 import data_quality_assertions_dataset as dq

    return {"dataQualityAssertions": dq.DataQualityAssertionsDatasetFacet(
        assertions=[dq.Assertion(assertion=kind, success=ok, column=column, severity=severity)
                    for kind, column, ok, severity in assertions], producer=PRODUCER)}


def emit(cfg: "Config", state: str, step: str, run_id: str, *, reads: Iterable[str], writes: Iterable[str],
         parent: "str | Parent | None" = None, root: Parent | None = None, error: str | None = None,
         quality: dict[str, list[tuple[str, str | None, bool, str]]] | None = None,
         published: dict[str, str] | None = None) -> None:
    """One run event (START, COMPLETE or FAIL) for a step; nothing when OpenLineage is not configured.
    ``parent``: Rapport's stage run id, or a run outside Rapport (an Airflow task); ``root``: that run's root (its
    DAG run). ``published``: files outside the lake the step wrote (an export's snapshots: dataset -> s3://bucket/key)."""
    c = client()
    if c is None:
        return
    try:
        from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
        from openlineage.client.facet_v2 import error_message_run, job_type_job, parent_run

        space, quality = _dataset_namespace(cfg), quality or {}
        run_facets: dict[str, Any] = {}
        if parent:
            if not isinstance(parent, Parent):  # Rapport's own stage run
                parent = Parent(namespace(), f"rapport.{_kind(parent)}", run_uuid(parent))
            top = None if root is None else parent_run.Root(run=parent_run.RootRun(runId=root.run_id),
                                                             job=parent_run.RootJob(namespace=root.namespace,
                                                                                    name=root.name))
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent.run_id), job=parent_run.Job(namespace=parent.namespace, name=parent.name),
                root=top, producer=PRODUCER)
        if error:
            run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=error[:4000], programmingLanguage="python", producer=PRODUCER)
        inputs = [InputDataset(namespace=space, name=n, facets={**_schema(n), **_quality(quality[n])} if n in quality
                               else _schema(n)) for n in dict.fromkeys(reads)]
        outputs = [OutputDataset(namespace=space, name=n, facets=_schema(n)) for n in dict.fromkeys(writes)]
        for uri in (published or {}).values():  # OpenLineage's naming for object stores: s3://bucket, key
            bucket, _, key = uri.removeprefix("s3://").partition("/")
            outputs.append(OutputDataset(namespace=f"s3://{bucket}", name=key))
        job = Job(namespace=namespace(), name=f"rapport.{step}", facets={"jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="RAPPORT", jobType="STEP", producer=PRODUCER)})
        c.emit(RunEvent(eventType=getattr(RunState, state), eventTime=datetime.now(timezone.utc).isoformat(),
                        run=Run(runId=run_uuid(run_id), facets=run_facets), job=job, inputs=inputs, outputs=outputs,
                        producer=PRODUCER))
    except Exception:  # lineage observes the run; it never fails it
        log.warning("could not send the OpenLineage %s event of %s", state, step, exc_info=True)
