"""Running the declared pipeline: a stage's checks, its steps in order, its gate; every step recorded.

The CLI, the Airflow tasks, the benchmark, the demo and the test helpers all run steps through here,
so gates and reconciliation guard every path the same way. Each step run leaves a row in ``ops.runs``
(its window, status, what it did, or why it failed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from jobs.runs import guards
from jobs.runs import lease
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from schemas.sources import SOURCES as STEPS_OF_SOURCES
from jobs.pipeline import lineage
from jobs.pipeline.steps import options_for, stage, step
from jobs.runs.window import Window
from jobs.storage import check_root

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.config import Config

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    stage: str
    window: Window
    run_id: str
    reports: dict[str, Report] = field(default_factory=dict)
    gate: Report | None = None

    def summary(self) -> dict[str, Any]:
        out = {"stage": self.stage, "run_id": self.run_id, **self.window.to_extra(),
               "steps": {name: r.counts() for name, r in self.reports.items()}}
        if self.gate is not None:
            out["gate"] = self.gate.counts()
        return out


def record(spark: "SparkSession", cfg: "Config", name: str, run_id: str, window: Window, status: str,
           counts: str | None, error: str | None, started: datetime) -> None:
    from jobs.lake import Lake

    row = [(name, run_id, window.start_text, window.end_text, status, counts, error, started,
            datetime.now(timezone.utc))]
    lake = Lake(cfg, spark)
    lake.append("ops.runs", lake.frame("ops.runs", row))


def run_step(spark: "SparkSession", cfg: "Config", name: str, window: Window, run_id: str | None = None, *,
             parent: "str | lineage.Parent | None" = None, root: "lineage.Parent | None" = None, **options) -> Report:
    """Run one registered step for a window and record it in ops.runs (failures too, then re-raised); emit its
    OpenLineage events when OpenLineage is configured (``jobs.pipeline.lineage``). ``parent``: the stage's run, or
    the Airflow task running it, and ``root`` its DAG run."""
    from jobs.engine import configure_storage

    s = step(name)
    configure_storage(cfg)
    run_id = run_id or str(RunId.new(name.replace(".", "-")))
    started, clock = datetime.now(timezone.utc), time.perf_counter()
    log.info("%s for landing window %s (run %s)", name, window, run_id)
    reads = tuple(options.get("tables") or s.reads)  # a gate reads the tables it validates
    lineage.emit(cfg, "START", name, run_id, reads=reads, writes=s.writes, parent=parent, root=root)
    try:
        with lease.hold(cfg, f"{name} {run_id}"):
            report = s(spark, cfg, window, run_id=run_id, **options_for(name, options))
    except Exception as exc:
        try:
            record(spark, cfg, name, run_id, window, "failed", None, f"{type(exc).__name__}: {exc}"[:4000], started)
        except Exception:  # the step's own error is what matters
            log.exception("could not record the failed run of %s", name)
        lineage.emit(cfg, "FAIL", name, run_id, reads=reads, writes=s.writes, parent=parent, root=root,
                     error=f"{type(exc).__name__}: {exc}", quality=getattr(exc, "assertions", None))
        raise
    record(spark, cfg, name, run_id, window, "succeeded", report.counts_json(), None, started)
    lineage.emit(cfg, "COMPLETE", name, run_id, reads=reads, writes=s.writes, parent=parent, root=root,
                 quality=getattr(report, "assertions", None), published=getattr(report, "published", None))
    log.info("%s done in %.1fs: %s", name, time.perf_counter() - clock, report.counts())
    return report


def check(spark: "SparkSession", cfg: "Config", stage_name: str, window: Window) -> None:
    """The stage's checks: refuse a window whose upstream gate failed or did not run, or that did not reconcile."""
    from jobs.lake import Lake
    from jobs.quality.suites import suite_tables

    lake = Lake(cfg, spark)
    for requirement in stage(stage_name).requires:
        if requirement.startswith("gate:"):
            layer = requirement.split(":", 1)[1]
            guards.require_gate(spark, lake, layer, window, suite_tables(layer, cfg.suites_dir()), stage_name)
        elif requirement == "reconciled":
            guards.require_reconciled(spark, lake, window, stage_name)
        else:  # pragma: no cover - the declarations are checked by a test
            raise ValueError(f"stage {stage_name}: unknown requirement {requirement!r}")


def run_stage(spark: "SparkSession", cfg: "Config", stage_name: str, window: Window | None = None, *,
              only: Iterable[str] | None = None, gate: bool = True, checks: bool = True,
              run_id: str | None = None, **options) -> StageResult:
    """A stage for one window: its checks, its steps (all, or ``only`` these) in declared order, then its gate
    over the tables the steps wrote."""
    from jobs.quality.suites import suite_tables

    st = stage(stage_name)
    window = window or Window()
    check_root(cfg, "lake_root", write=True)
    if stage_name == "ingest" and len(cfg.landing_paths_map()) < len(STEPS_OF_SOURCES):
        check_root(cfg, "landing_root", write=False)  # some source lands under it
    base = RunId.parse(run_id) if run_id else RunId.new(stage_name)

    def child(part: str) -> str:
        return str(base.child(part)) if base is not None else f"{run_id}-{part}"

    result = StageResult(stage_name, window, str(base) if base is not None else run_id)
    with lease.hold(cfg, f"{stage_name} {result.run_id}"):  # checks, steps and gate see one state of the lake
        if checks:
            check(spark, cfg, stage_name, window)
        names = [s for s in st.steps if only is None or s in set(only)]
        for name in names:
            result.reports[name] = run_step(spark, cfg, name, window, child(name.split(".")[-1]), parent=result.run_id,
                                            **options)
        if gate and st.gate is not None:
            written = {t for name in names for t in step(name).writes}
            tables = [t for t in suite_tables(st.gate.split(".", 1)[1], cfg.suites_dir()) if t in written]
            if tables:
                result.gate = run_step(spark, cfg, st.gate, window, child("gate"), parent=result.run_id, tables=tables)
    return result


def run_pipeline(spark: "SparkSession", cfg: "Config", window: Window | None = None,
                 stages: Iterable[str] = ("ingest", "refine", "curate"), **options) -> dict[str, StageResult]:
    """Several stages for one window, in order (what `rapport demo` and the test helpers run)."""
    return {name: run_stage(spark, cfg, name, window, **options) for name in stages}
