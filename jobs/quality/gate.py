"""Quality gates: the suites in ``quality/suites`` run with Great Expectations on the lake's tables.

Contract
- A suite is YAML: the table, a scope (``window``: rows that landed in the run's window;
  ``table``: all rows) and expectations, each with a ``severity``. Any Great Expectations
  expectation can be named by its snake_case type; Rapport adds four that it expands at
  run time: ``volume_vs_previous`` (row count not down more than ``max_drop`` against the
  previous gate), ``freshness`` (newest arrival within ``max_lag_hours`` of the window's
  end), ``no_future_events`` and ``referential`` (every value exists in another table).
- ``gate(layer)`` validates every suite of a layer. A **critical** failure raises
  ``QualityGateError`` saying which expectation, how many rows and sample values, and
  the gate is recorded as failed so the next layer refuses to build from it; a
  **warning** is recorded and the run goes on. A gate never passes by omission: if
  fewer expectations were evaluated than configured, it fails.
- Every result is appended to ``ops/quality_results``; every gate to ``ops/quality_gates``.
  Data Docs (HTML) are built under ``<lake>/_docs``, with Rapport's own offline overview
  ``rapport-quality.html`` (Great Expectations' index needs scripts from public CDNs).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from jobs.config import REPO_ROOT, Config
from jobs.lake import Lake
from jobs.quality import report
from jobs.silver.common import window_sql
from jobs.storage import is_s3

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
SUITES_DIR = REPO_ROOT / "quality" / "suites"
SEVERITIES = ("critical", "warning")
RAPPORT_TYPES = ("volume_vs_previous", "freshness", "no_future_events", "referential")
SAMPLE_SIZE = 5


class QualityGateError(RuntimeError):
    """A critical expectation failed (or was not evaluated); the message says which, on how many rows, with samples."""


@dataclass(frozen=True)
class Expectation:
    type: str
    kwargs: dict[str, Any]
    severity: str

    @property
    def label(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.type}({args})"


@dataclass(frozen=True)
class Suite:
    table: str  # layer.name
    scope: str
    expectations: tuple[Expectation, ...]

    @property
    def layer(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.table.split(".", 1)[1]


@dataclass
class Outcome:
    expectation: Expectation
    success: bool
    observed: str | None = None
    unexpected_count: int | None = None
    sample: list = field(default_factory=list)
    error: str | None = None


@dataclass
class SuiteResult:
    suite: Suite
    rows: int
    outcomes: list[Outcome]

    @property
    def critical_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.expectation.severity == "critical"]


def load_suites(layer: str | None = None, directory: Path = SUITES_DIR) -> list[Suite]:
    suites = []
    for path in sorted(directory.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        items = []
        for e in raw["expectations"]:
            e = dict(e)
            severity = e.pop("severity", None)
            if severity not in SEVERITIES:
                raise ValueError(f"{path.name}: {e.get('type')} has severity {severity!r}; use critical or warning")
            items.append(Expectation(e.pop("type"), e, severity))
        suite = Suite(raw["table"], raw.get("scope", "table"), tuple(items))
        if layer is None or suite.layer == layer:
            suites.append(suite)
    return suites


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _previous_rows(spark: "SparkSession", lake: Lake, table: str) -> int | None:
    path = lake.path("ops", "quality_results")
    if not lake.exists(path):
        return None
    row = spark.sql(f"""SELECT observed FROM delta.`{path}` WHERE table_name = '{table}'
                        AND expectation_type = 'volume_vs_previous' ORDER BY evaluated_at DESC LIMIT 1""").first()
    return int(row.observed) if row and row.observed and row.observed.isdigit() else None


def expand(spark: "SparkSession", lake: Lake, suite: Suite, df: "DataFrame", end: datetime | None):
    """GE expectation objects for a suite, and the batch with the helper columns they read."""
    import great_expectations.expectations as gxe
    from pyspark.sql import functions as F

    out = []
    for i, e in enumerate(suite.expectations):
        meta = {"severity": e.severity, "rapport_index": i}
        kw = dict(e.kwargs)
        if e.type == "volume_vs_previous":
            prev = _previous_rows(spark, lake, suite.table)
            low = 0 if prev is None else math.ceil(prev * (1 - float(kw["max_drop"])))
            out.append(gxe.ExpectTableRowCountToBeBetween(min_value=low, meta=meta))
        elif e.type == "freshness":
            # against the window's end; a run without one (manual, all history) measures against its newest row
            reference = end or df.select(F.max(kw["column"])).first()[0] or datetime.now(timezone.utc)
            floor = (reference - timedelta(hours=float(kw["max_lag_hours"]))).replace(tzinfo=None)
            out.append(gxe.ExpectColumnMaxToBeBetween(column=kw["column"], min_value=floor, meta=meta))
        elif e.type == "no_future_events":
            helper = f"_future__{i}"
            late = F.col(kw["column"]) > F.col(kw["arrival"]) + F.expr(f"INTERVAL {int(kw['tolerance_minutes'])} MINUTES")
            df = df.withColumn(helper, F.when(late, F.col(kw["column"]).cast("string")))
            out.append(gxe.ExpectColumnValuesToBeNull(column=helper, meta=meta))
        elif e.type == "referential":
            layer, table, column = kw["references"].split(".")
            helper = f"_missing__{i}"
            ref = lake.read(spark, lake.path(layer, table)).select(F.col(column).alias("_ref_key")).distinct()
            df = (df.join(ref, df[kw["column"]] == ref["_ref_key"], "left")
                  .withColumn(helper, F.when(F.col("_ref_key").isNull(), F.col(kw["column"]).cast("string")))
                  .drop("_ref_key"))
            out.append(gxe.ExpectColumnValuesToBeNull(column=helper, meta=meta))
        else:
            cls = getattr(gxe, _camel(e.type), None)
            if cls is None:
                raise ValueError(f"{suite.table}: unknown expectation {e.type!r}")
            out.append(cls(**kw, meta=meta))
    return df, out


def context(lake: Lake):
    """A file-backed GE context under the lake (Data Docs in <lake>/_docs), or a temporary one for S3 lakes."""
    import tempfile

    import great_expectations as gx

    root = Path(tempfile.mkdtemp(prefix="rapport-gx-")) if is_s3(lake.root) else Path(lake.root) / "_quality"
    ctx = gx.get_context(mode="file", project_root_dir=str(root))
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # Rapport reports results itself
    docs = docs_index(lake.cfg).parent
    site = {"class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs)}}
    if "rapport" not in ctx.get_config().data_docs_sites:
        ctx.add_data_docs_site(site_name="rapport", site_config=site)
    return ctx


def validate(spark: "SparkSession", cfg: Config, suite: Suite, start=None, end=None, ctx=None) -> SuiteResult:
    import great_expectations as gx

    lake = Lake(cfg)
    path = lake.path(suite.layer, suite.name)
    if not lake.exists(path):
        missing = [Outcome(e, False, error=f"table {suite.table} does not exist") for e in suite.expectations]
        return SuiteResult(suite, 0, missing)
    df = lake.read(spark, path)
    if suite.scope == "window":
        df = df.where(window_sql(start, end))
    df, expectations = expand(spark, lake, suite, df, end)
    ctx = ctx or context(lake)
    name = suite.table.replace(".", "_")
    source = ctx.data_sources.add_or_update_spark("rapport")
    asset = next((a for a in source.assets if a.name == name), None) or source.add_dataframe_asset(name)
    batch_def = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
        asset.add_batch_definition_whole_dataframe("whole")
    gx_suite = ctx.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=expectations))
    vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=batch_def, suite=gx_suite))
    checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
        name=name, validation_definitions=[vd], actions=[gx.checkpoint.UpdateDataDocsAction(name="docs")],
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}))
    run = checkpoint.run(batch_parameters={"dataframe": df})
    results = next(iter(run.run_results.values())).results
    rows = df.count()
    outcomes: dict[int, Outcome] = {}
    for r in results:
        i = r.expectation_config.meta["rapport_index"]
        e = suite.expectations[i]
        observed = r.result.get("observed_value")
        if e.type == "volume_vs_previous":
            observed = rows
        raised = (r.exception_info or {}).get("raised_exception")
        outcomes[i] = Outcome(e, bool(r.success), None if observed is None else str(observed),
                              r.result.get("unexpected_count"), list(r.result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE],
                              (r.exception_info or {}).get("exception_message") if raised else None)
    # never pass by omission: every configured expectation must have been evaluated
    for i, e in enumerate(suite.expectations):
        outcomes.setdefault(i, Outcome(e, False, error="not evaluated"))
    return SuiteResult(suite, rows, [outcomes[i] for i in range(len(suite.expectations))])


def record(spark: "SparkSession", lake: Lake, results: list[SuiteResult], layer: str, run_id: str, window: tuple,
           passed: bool) -> None:
    now = datetime.now(timezone.utc)
    rows = [(run_id, r.suite.table, o.expectation.type, json.dumps(o.expectation.kwargs, default=str, sort_keys=True),
             o.expectation.severity, o.success, o.observed, o.unexpected_count,
             json.dumps(o.sample, default=str) if o.sample else None, o.error, r.rows, now)
            for r in results for o in r.outcomes]
    schema = ("run_id string, table_name string, expectation_type string, kwargs string, severity string, "
              "success boolean, observed string, unexpected_count long, sample string, error string, rows long, "
              "evaluated_at timestamp")
    if rows:
        lake.append(spark.createDataFrame(rows, schema), lake.path("ops", "quality_results"))
    gate_row = [(layer, run_id, window[0] or "", window[1] or "", passed,
                 sum(len(r.outcomes) for r in results), sum(len(r.critical_failures) for r in results), now)]
    lake.append(spark.createDataFrame(gate_row, "layer string, run_id string, window_start string, window_end string, "
                                                "passed boolean, evaluated long, critical_failures long, checked_at timestamp"),
                lake.path("ops", "quality_gates"))


def describe_failures(results: list[SuiteResult]) -> str:
    lines = []
    for r in results:
        for o in r.critical_failures:
            what = o.error or (f"{o.unexpected_count} of {r.rows} rows failed" if o.unexpected_count is not None
                               else f"observed {o.observed}")
            sample = f"; sample values {o.sample}" if o.sample else ""
            lines.append(f"  {r.suite.table}: {o.expectation.label}: {what}{sample}")
    return "\n".join(lines)


def gate(spark: "SparkSession", cfg: Config, layer: str, start: datetime | None = None, end: datetime | None = None,
         run_id: str | None = None, suites_dir: Path = SUITES_DIR, tables: list[str] | None = None) -> list[SuiteResult]:
    """Validate every suite of ``layer`` (or only those of ``tables``, the ones a run built); raise
    ``QualityGateError`` if a critical expectation failed."""
    from jobs.bronze.ingest import new_run_id

    lake = Lake(cfg)
    run_id = run_id or new_run_id(f"quality-{layer}")
    suites = [s for s in load_suites(layer, suites_dir) if tables is None or s.table in tables]
    ctx = context(lake)
    results = [validate(spark, cfg, s, start, end, ctx) for s in suites]
    configured = sum(len(s.expectations) for s in suites)
    evaluated = sum(1 for r in results for o in r.outcomes if o.error != "not evaluated")
    passed = not any(r.critical_failures for r in results) and evaluated == configured
    window = (start.isoformat() if start else None, end.isoformat() if end else None)
    record(spark, lake, results, layer, run_id, window, passed)
    report.write(docs_index(cfg).parent, results, layer, run_id, passed)
    warnings = [(r.suite.table, o.expectation.label) for r in results for o in r.outcomes
                if not o.success and o.expectation.severity == "warning"]
    for table, label in warnings:
        log.warning("quality warning on %s: %s", table, label)
    if not passed:
        detail = describe_failures(results) or f"  only {evaluated} of {configured} expectations were evaluated"
        raise QualityGateError(
            f"the {layer} quality gate failed (run {run_id}); the next layer will not be built from this data:\n{detail}\n"
            f"See ops.quality_results and the Data Docs (`rapport quality docs`)."
        )
    return results


def require_passed(spark: "SparkSession", cfg: Config, layer: str) -> None:
    """Refuse to promote from ``layer`` when its latest gate failed (no gate run yet is not a failure)."""
    lake = Lake(cfg)
    path = lake.path("ops", "quality_gates")
    if not lake.exists(path):
        return
    last = spark.sql(f"SELECT passed, run_id FROM delta.`{path}` WHERE layer = '{layer}' "
                     "ORDER BY checked_at DESC LIMIT 1").first()
    if last is not None and not last.passed:
        raise QualityGateError(
            f"the latest {layer} quality gate (run {last.run_id}) failed, so nothing is promoted from {layer}. "
            f"Fix the data, then run `rapport quality validate --layer {layer}` (see ops.quality_results)."
        )


def docs_index(cfg: Config) -> Path:
    """Rapport's offline overview page (it links Great Expectations' per-validation pages)."""
    lake = Lake(cfg)
    docs = Path(lake.root) / "_docs" if not is_s3(lake.root) else Path.cwd() / ".rapport-docs"
    return docs / report.PAGE
