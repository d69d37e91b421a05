"""The pipeline's steps and stages, declared once. The CLI, the DAGs, the benchmark, the demo and the tests
run them from here; the docs (``docs/architecture.md``) are generated from here.

A step has one signature, ``run(spark, cfg, window, **options) -> Report``, reads and writes declared
tables, and is guarded by the quality gate of the layer it writes. A stage is a layer's steps in order,
the checks that must pass before it builds from a window, and the gate that runs after it. The gate step
is the one that announces the layer's Airflow asset, so nothing downstream starts before it passed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from schemas.sources import EVENT_SOURCES, REFERENCE_SOURCES, SOURCES
from schemas.tables import table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.config import Config
    from jobs.runs.report import Report
    from jobs.runs.window import Window


class UnknownStepError(KeyError):
    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class Step:
    name: str
    target: str  # "module:function", imported when the step runs (DAG files never import job code)
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    doc: str
    params: tuple[tuple[str, Any], ...] = ()

    def __call__(self, spark: "SparkSession", cfg: "Config", window: "Window", **options) -> "Report":
        module, _, function = self.target.partition(":")
        run = getattr(importlib.import_module(module), function)
        return run(spark, cfg, window, **dict(self.params), **options)

    @property
    def task_id(self) -> str:
        return self.name.replace(".", "_")


@dataclass(frozen=True)
class Stage:
    name: str
    steps: tuple[str, ...]
    gate: str | None  # the gate step run after the stage's steps
    requires: tuple[str, ...]  # checks before building from a window: "gate:<layer>", "reconciled"
    asset: str  # the Airflow asset the stage announces once its gate passed
    doc: str


_QUARANTINE = ("ops.quarantine",)


def _ingest(source: str) -> Step:
    return Step(f"ingest.{source}", "jobs.bronze.ingest:run",
                reads=(), writes=(f"bronze.{source}", *_QUARANTINE, "ops.ingest_log", "ops.landing_unrecognised"),
                doc=f"new landing files of {source} into bronze (idempotent per file)",
                params=(("source", source),))


def _refine(source: str, reads: tuple[str, ...], writes: tuple[str, ...]) -> Step:
    return Step(f"refine.{source}", "jobs.silver.refine:run", reads=(f"bronze.{source}", *reads),
                writes=(*writes, *_QUARANTINE, "ops.duplicates", "ops.audit", "ops.suppressed_lines",
                        f"bronze.{source}"),  # a suppressed person's raw lines are deleted
                doc=f"bronze {source} into silver: typed, validated, deduplicated, PII hashed; reconciled in ops.audit",
                params=(("source", source),))


def _gate(layer: str, reads: tuple[str, ...]) -> Step:
    return Step(f"gate.{layer}", "jobs.quality.gate:run", reads=reads,
                writes=("ops.quality_results", "ops.quality_gates"),
                doc=f"the {layer} quality gate: Great Expectations suites of quality/suites/{layer}_*.yaml",
                params=(("layer", layer),))


_SILVER_EVENTS = ("silver.clickstream_events", "silver.social_interactions", "silver.order_status_history")
_GOLD = ("gold.interactions", "gold.customer_facts", "gold.customer_relationship", "gold.daily_product_trends",
         "gold.daily_platform_engagement", "gold.campaign_performance")

_GATED = {"bronze": tuple(f"bronze.{s}" for s in EVENT_SOURCES),
          "silver": ("silver.clickstream_events", "silver.social_interactions", "silver.order_status_history",
                     "silver.orders", "silver.order_lines", "silver.sessions", "silver.identity_map"),
          "gold": ("gold.interactions", "gold.customer_relationship", "gold.daily_product_trends",
                   "gold.daily_platform_engagement", "gold.campaign_performance")}

STEPS: dict[str, Step] = {s.name: s for s in (
    *(_ingest(s.name) for s in SOURCES),
    Step("ingest.survey", "jobs.bronze.ingest:survey", reads=(), writes=("ops.landing_unrecognised",),
         doc="files under the landing root in no source's folder, listed so none goes unseen"),
    _gate("bronze", _GATED["bronze"]),
    Step("refine.reference", "jobs.silver.reference:run", reads=tuple(f"bronze.{s}" for s in REFERENCE_SOURCES),
         writes=("silver.crm_customers", "silver.products", "silver.campaigns", "silver.campaign_posts", *_QUARANTINE),
         doc="the newest landed extract of each reference data set, PII hashed"),
    _refine("clickstream", (), ("silver.clickstream_events",)),
    _refine("social", (), ("silver.social_interactions",)),
    _refine("orders", (), ("silver.order_status_history", "silver.orders", "silver.order_lines")),
    Step("refine.identity", "jobs.silver.identity:run",
         reads=(*_SILVER_EVENTS, "silver.crm_customers", "bronze.customers"),
         writes=("silver.identity_edges", "silver.identity_nodes", "silver.identity_map", "silver.identity_versions",
                 "silver.identity_events", "silver.identity_shared", "silver.identity_blocks"),
         doc="identity stitching: every identifier to one stable customer key"),
    Step("refine.sessions", "jobs.silver.sessions:run", reads=("silver.clickstream_events",), writes=("silver.sessions",),
         doc="web and app sessions of the dates the window's events touched"),
    _gate("silver", _GATED["silver"]),
    Step("gate.full", "jobs.quality.gate:run_full",
         reads=tuple(t for layer in ("bronze", "silver", "gold") for t in _GATED[layer]),
         writes=("ops.quality_results", "ops.quality_gates"),
         doc="every layer's suites on whole tables (weekly; the daily gates read only what a run touched)"),
    Step("quality.docs", "jobs.quality.docs:render_step", reads=(), writes=(),
         doc="the Data Docs pages of passed gates' stored results (a gate stores them without rendering)"),
    Step("curate", "jobs.gold.curate:run",
         reads=(*_SILVER_EVENTS, "silver.sessions", "silver.identity_map", "silver.orders", "silver.order_lines",
                "silver.products", "silver.campaigns", "silver.campaign_posts"),
         writes=(*_GOLD, "gold.campaign_orders", "gold.product_signals"),
         doc="silver into gold for the days whose silver rows changed and the customers they touch"),
    _gate("gold", _GATED["gold"]),
    Step("export", "jobs.export.run:run", reads=("gold.product_signals", "gold.interactions", "silver.identity_map",
                                                  "gold.customer_relationship", "silver.order_lines"), writes=(),
         doc="gold to verifiable S3 snapshots for recommendation services (RAPPORT_EXPORT_URI)"),
    Step("report", "jobs.report.build:run",
         reads=(*_GOLD, "ops.quality_gates", "ops.quarantine", "ops.ingest_log"), writes=(),
         doc="the marketing report from gold: <lake>/_reports/<date>/index.html (and the export bucket)"),
    Step("privacy", "jobs.privacy.requests:process", reads=("ops.privacy_requests",),
         writes=("ops.privacy_requests", "ops.suppressions", "ops.erased_lines"),
         doc="pending privacy requests, in order: erase everywhere with proof, suppress, unsuppress"),
    Step("retention", "jobs.privacy.retention:run",
         reads=("ops.ingest_log", "ops.audit", "ops.retention"),
         writes=(*(f"bronze.{s.name}" for s in SOURCES), "ops.quarantine", "ops.retention"),
         doc="raw values of landing dates refined and reconciled RAPPORT_RAW_RETENTION_DAYS ago dropped; lineage and counts stay"),
    Step("maintenance", "jobs.maintenance:run", reads=(), writes=(),
         doc="compaction, a log checkpoint of what was compacted, and vacuum of every registered table; staging of killed runs removed"),
)}

STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("ingest", (*(f"ingest.{s.name}" for s in SOURCES), "ingest.survey"), "gate.bronze", (), "rapport.bronze",
          "landing files into bronze, then the bronze gate"),
    Stage("refine", ("refine.reference", *(f"refine.{s}" for s in EVENT_SOURCES), "refine.identity", "refine.sessions"),
          "gate.silver", ("gate:bronze",), "rapport.silver",
          "bronze into silver, identities and sessions, then the silver gate; needs the bronze gate passed"),
    Stage("curate", ("curate",), "gate.gold", ("gate:silver", "reconciled"), "rapport.gold",
          "silver into gold, then the gold gate; needs the silver gate passed and every source reconciled"),
    Stage("export", ("export",), None, ("gate:gold",), "rapport.exports",
          "gold to S3 snapshots; needs the gold gate passed"),
)}


def step(name: str) -> Step:
    try:
        return STEPS[name]
    except KeyError:
        raise UnknownStepError(f"no step {name!r}; steps are {', '.join(STEPS)} (jobs/pipeline/steps.py)") from None


def stage(name: str) -> Stage:
    try:
        return STAGES[name]
    except KeyError:
        raise UnknownStepError(f"no stage {name!r}; stages are {', '.join(STAGES)}") from None


def upstream(name: str, within: tuple[str, ...]) -> list[str]:
    """Steps among ``within`` that write a table step ``name`` reads: its direct dependencies."""
    reads = set(step(name).reads)
    return [other for other in within if other != name and reads & set(step(other).writes)
            and within.index(other) < within.index(name)]


def check() -> None:
    """The declarations agree with each other: every table named is declared; stages run steps in an order
    in which every step comes after those that write what it reads."""
    for s in STEPS.values():
        for name in (*s.reads, *s.writes):
            table(name)
    for st in STAGES.values():
        for i, name in enumerate(st.steps):
            for later in st.steps[i + 1:]:
                if set(step(name).reads) & set(step(later).writes) - set(step(name).writes):
                    raise ValueError(f"stage {st.name}: {name} reads what {later} writes, but runs before it")
        if st.gate is not None:
            step(st.gate)


def options_for(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options a step's function accepts, out of those given to a stage."""
    import inspect

    target = step(name).target
    module, _, function = target.partition(":")
    params = inspect.signature(getattr(importlib.import_module(module), function)).parameters
    return {k: v for k, v in options.items() if k in params}
