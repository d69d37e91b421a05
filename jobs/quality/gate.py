"""Quality gates: the suites in ``quality/suites`` run with Great Expectations on the lake's tables.

Contract
- A suite is YAML: the table, a scope (``window``: rows that landed in the run's window;
  ``table``: all rows) and expectations, each with a ``severity``. Any Great Expectations
  expectation can be named by its snake_case type; Rapport adds four that it expands at
  run time: ``volume_vs_previous`` (row count not down more than ``max_drop`` against the
  previous gate), ``freshness`` (newest arrival within ``max_lag_hours`` of the window's
  end), ``no_future_events`` and ``referential`` (every value exists in another table).
- ``run(…, layer=…)`` (the ``gate.<layer>`` step) validates every suite of a layer. A **critical**
  failure raises ``QualityGateError`` saying which expectation, how many rows and sample values,
  and the gate is recorded as failed for its window, so the next stage refuses to build from
  that window (``jobs.runs.guards``); a **warning** is recorded and the run goes on.
- A suite whose table does not exist because its source has never landed is *not applicable*:
  recorded as such, neither passed nor failed. A table that existed before and is gone, or one
  of a source the configuration requires (``RAPPORT_SOURCES``), fails. A gate never passes by
  omission: evaluated + not applicable must equal configured.
- Every result is appended to ``ops.quality_results``; every table's verdict to ``ops.quality_gates``.
  Data Docs (HTML) are built under ``<lake>/_docs``, with Rapport's own offline overview
  ``rapport-quality.html`` (Great Expectations' index needs scripts from public CDNs).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake, partition_condition
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from schemas.sources import SOURCES
from jobs.runs.window import Window
from jobs.quality import docs, expectations, rates, report
from jobs.quality.suites import Expectation, Suite, load_suites

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
SAMPLE_SIZE = 5
PASSED, FAILED, NOT_APPLICABLE = "passed", "failed", "not_applicable"


class QualityGateError(RuntimeError):
    """A critical expectation failed (or was not evaluated); the message says which, on how many rows, with samples."""


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
    not_applicable: str | None = None  # why the suite does not apply (its source never landed)
    version: int | None = None  # the table version validated
    batch: str = ""  # what was read: the window, the partitions touched since the last passed gate, or all
    docs_key: tuple[str, ...] | None = None  # the stored Great Expectations result (``docs.store``)

    @property
    def critical_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.success and o.expectation.severity == "critical"]

    @property
    def status(self) -> str:
        if self.not_applicable:
            return NOT_APPLICABLE
        return FAILED if self.critical_failures else PASSED


@dataclass
class GateReport(Report):
    layer: str = ""
    passed: bool = False
    expectations: int = 0
    not_applicable: list[str] = field(default_factory=list)
    warnings: int = 0


def _source_of(table: str) -> str | None:
    layer, name = table.split(".", 1)
    if layer == "bronze":
        return name
    return next((s.name for s in SOURCES if table in s.silver), None)


def _not_applicable(lake: Lake, cfg: Config, suite: Suite) -> str | None:
    """Why a suite whose table does not exist does not apply, or None when the missing table is a failure."""
    source = _source_of(suite.table)
    if source is not None and source in cfg.required_sources():
        return None
    if lake.exists("ops.quality_gates") and lake.read("ops.quality_gates").where(
            f"table_name = '{suite.table}' AND status <> '{NOT_APPLICABLE}'").limit(1).count():
        return None  # it existed before: gone is a failure
    return f"{suite.table} does not exist: {'its source ' + source if source else 'its sources'} never landed"


def last_passed_version(lake: Lake, table_name: str) -> int | None:
    """The table version the latest passed verdict on ``table_name`` validated (None: none yet, or recorded before
    versions were)."""
    return last_passed_versions(lake).get(table_name)


def last_passed_versions(lake: Lake) -> dict[str, int | None]:
    """``last_passed_version`` of every table with a passed verdict, in one query."""
    from pyspark.sql import functions as F

    if not lake.exists("ops.quality_gates") or "table_version" not in lake.read("ops.quality_gates").columns:
        return {}
    rows = (lake.read("ops.quality_gates").where(f"status = '{PASSED}'").groupBy("table_name")
            .agg(F.max_by("table_version", "checked_at").alias("v")).collect())  # one row per table: its latest
    return {r.table_name: None if r.v is None else int(r.v) for r in rows}


@dataclass(frozen=True)
class Recorded:
    """What earlier gates recorded that a gate's suites compare with, read once for all of them: each table's
    latest passed version (``last_passed_versions``) and count (``expectations.previous_counts``)."""
    passed_versions: dict[str, int | None]
    counts: dict[str, int]

    @classmethod
    def read(cls, lake: Lake) -> "Recorded":
        return cls(last_passed_versions(lake), expectations.previous_counts(lake))


def validate(spark: "SparkSession", cfg: Config, suite: Suite, window: Window | None = None, *,
             full: bool = False, recorded: Recorded | None = None) -> SuiteResult:
    """One suite on its scope's rows (``full``: every suite on its whole table; ``recorded``: what earlier gates
    recorded, when the caller read it for several suites).

    Every expectation is measured in one query over the batch (``jobs.quality.onepass``): uniqueness is counted
    from the batch's keys (against the rest of the table's where a twin could be), references are a helper column
    joined into the same query, and nothing is copied. A whole table is read where it is.
    """
    from jobs.quality import batch

    window = window or Window()
    lake = Lake(cfg, spark)
    if not lake.exists(suite.table):
        why = _not_applicable(lake, cfg, suite)
        if why:
            return SuiteResult(suite, 0, [], not_applicable=why)
        missing = [Outcome(e, False, error=f"table {suite.table} does not exist (it existed before, or its source is "
                                           "required by RAPPORT_SOURCES)") for e in suite.expectations]
        return SuiteResult(suite, 0, missing)
    scope = "table" if full else suite.scope
    version = lake.version(suite.table)
    whole = lake.read(suite.table, version=version)
    where, described = None, f"whole table at version {version}"
    table_rows = None  # the whole table's count (from the log), wanted when the batch is only part of it
    if scope == "window":
        where, described = window.sql(), f"rows that landed in {window}"
        table_rows = lake.rows(suite.table, version)
    elif scope == "touched":
        passed = (recorded.passed_versions.get(suite.table) if recorded is not None
                  else last_passed_version(lake, suite.table))
        b = batch.touched(lake, suite.table, passed, version)
        where, described = b.where, b.describe()
        table_rows = None if where is None else b.rows  # counted from the log touched() already read
    df = whole if where is None else whole.where(where)
    empty = where == "FALSE"  # nothing changed since the last passed verdict: nothing else is read either
    rest = None if where is None or empty else whole.where(f"NOT ({where})")
    if scope == "touched" and rest is not None and (around := batch.near(suite.table, b.values, cfg.late_days)):
        # a key's twin can be only where a run could have written it (``jobs.quality.batch``); gate.full reads all
        rest = rest.where(around)
        described += f"; keys checked against {around}"
    if scope == "window" and rest is not None and expectations.partitions(suite.table):
        # rows that landed in other windows can share a key only within the partitions of this window's rows: the
        # domain refine deduplicates in (a copy keeps its event time; a landing file keeps its landing date)
        rest = rest.where(partition_condition(df, expectations.partitions(suite.table)))
    plain = df  # the batch before helper columns are joined to it
    counts = recorded.counts if recorded is not None else None
    df, expected, keyed = expectations.expand(lake, suite, df, window.end, rest=rest, table_rows=table_rows,
                                              empty=empty, counts=counts)
    rows, results = _measure(lake, suite, df, expected, plain, keyed)
    docs.mask_results(suite, results)  # before anything is stored or rendered: no raw personal data in samples or Data Docs
    key = docs.store(cfg, suite, results, described)  # rendered by ``docs.render``, at once or later
    outcomes: dict[int, Outcome] = {}
    measured = None  # the window's quarantine, read once for the suite's rate expectations
    for i, e in enumerate(suite.expectations):
        if e.type == "volume_vs_previous" and table_rows is not None:  # the table's count from the log, not the batch's
            floor = expectations.volume_floor(lake, suite.table, e.kwargs["max_drop"], counts)
            outcomes[i] = Outcome(e, table_rows >= floor, str(table_rows),
                                  error=None if table_rows >= floor else f"{table_rows} rows, fewer than {floor}")
        elif e.type == rates.TYPE:
            source = _source_of(suite.table)
            if source is None:
                raise ValueError(f"{suite.table}: {rates.TYPE} needs a table of one source")
            measured = measured or rates.measure(lake, source, window)
            ok, observed, why = rates.judge(rates.limits(e.kwargs, e.severity, cfg), measured, source, window)
            outcomes[i] = Outcome(e, ok, observed, error=why)
    for r in results:
        i = r["expectation_config"]["meta"]["rapport_index"]
        e = suite.expectations[i]
        result, exception = r.get("result") or {}, r.get("exception_info") or {}
        observed = result.get("observed_value")
        if e.type == "volume_vs_previous":
            observed = rows  # the batch is the whole table here
        outcomes[i] = Outcome(e, bool(r["success"]), None if observed is None else str(observed),
                              result.get("unexpected_count"), list(result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE],
                              exception.get("exception_message") if exception.get("raised_exception") else None)
    # never pass by omission: every configured expectation must have been evaluated
    for i, e in enumerate(suite.expectations):
        outcomes.setdefault(i, Outcome(e, False, error="not evaluated"))
    return SuiteResult(suite, rows, [outcomes[i] for i in range(len(suite.expectations))], version=version,
                       batch=described, docs_key=key)


def _measure(lake: Lake, suite: Suite, df: "DataFrame", checks: list, base: "DataFrame", keyed: dict):
    """The batch's row count and every check's result (Great Expectations' result JSON), all measured in one
    query (``jobs.quality.onepass``: the not-null checks over ``base``, the batch without helper columns, and the
    uniqueness checks from their ``keyed`` counts); a check it does not compile is validated by Great Expectations
    on the same batch (imported only then)."""
    from jobs.quality import onepass

    rows, by_position, rest = onepass.evaluate(df, checks, SAMPLE_SIZE, base, keyed)
    if rest:
        by_position.update(_by_great_expectations(lake, suite, df, {i: checks[i] for i in rest}))
    return rows, [by_position[i] for i in range(len(checks))]


def _by_great_expectations(lake: Lake, suite: Suite, df: "DataFrame", checks: dict) -> dict[int, dict]:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    ctx = docs.context(lake.cfg)
    name = suite.table.replace(".", "_")
    source = ctx.data_sources.add_or_update_spark("rapport")
    asset = next((a for a in source.assets if a.name == name), None) or source.add_dataframe_asset(name)
    batch_def = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
        asset.add_batch_definition_whole_dataframe("whole")
    batch_ = batch_def.get_batch(batch_parameters={"dataframe": df})
    out = {}
    for i, check in checks.items():
        try:
            expectation = ExpectationConfiguration(type=check.type, kwargs=check.kwargs, meta=check.meta).to_domain_obj()
        except Exception as exc:  # noqa: BLE001 - GE raises several kinds for a type it does not know
            raise ValueError(f"{suite.table}: unknown expectation {check.type!r} ({exc})") from exc
        result = batch_.validate(expectation, result_format={"result_format": "SUMMARY",
                                                             "partial_unexpected_count": SAMPLE_SIZE})
        out[i] = result.to_json_dict()
        out[i]["expectation_config"] = check.config()
    return out


def record(lake: Lake, results: list[SuiteResult], layer: str, run_id: str, window: Window) -> None:
    now = datetime.now(timezone.utc)
    rows = [(run_id, r.suite.table, o.expectation.type, json.dumps(o.expectation.kwargs, default=str, sort_keys=True),
             o.expectation.severity, o.success, o.observed, o.unexpected_count,
             json.dumps(o.sample, default=str) if o.sample else None, o.error, r.rows, now)
            for r in results for o in r.outcomes]
    if rows:
        lake.append("ops.quality_results", lake.frame("ops.quality_results", rows))
    verdicts = [(layer, r.suite.table, run_id, window.start_text, window.end_text, r.status,
                 sum(1 for o in r.outcomes if o.error != "not evaluated"), len(r.suite.expectations),
                 len(r.critical_failures), now, r.version, r.batch) for r in results]
    if verdicts:
        _add_columns(lake, "ops.quality_gates")
        lake.append("ops.quality_gates", lake.frame("ops.quality_gates", verdicts))


def _add_columns(lake: Lake, name: str) -> None:
    """Columns declared since the table was created (a lake from an earlier release) are added, empty, first."""
    from deltalake.schema import Field, PrimitiveType

    from schemas.tables import table

    if not lake.exists(name):
        return
    dt = lake.delta_table(name)
    have = {f.name for f in dt.schema().fields}
    kinds = {"bigint": "long", "string": "string", "timestamp": "timestamp", "boolean": "boolean", "int": "integer"}
    missing = [Field(c.name, PrimitiveType(kinds[c.type]), nullable=True) for c in table(name).columns if c.name not in have]
    if missing:
        dt.alter.add_columns(missing)


def describe_failures(results: list[SuiteResult]) -> str:
    lines = []
    for r in results:
        for o in r.critical_failures:
            what = o.error or (f"{o.unexpected_count} of {r.rows} rows failed" if o.unexpected_count is not None
                               else f"observed {o.observed}")
            sample = f"; sample values {o.sample}" if o.sample else ""
            lines.append(f"  {r.suite.table}: {o.expectation.label}: {what}{sample}")
    return "\n".join(lines)


def run(spark: "SparkSession", cfg: Config, window: Window, *, layer: str, tables: list[str] | None = None,
        run_id: str | None = None, suites_dir: Path | None = None, full: bool = False) -> GateReport:
    """The ``gate.<layer>`` step: validate every suite of ``layer`` (or only those of ``tables``, the ones a run
    built) on its scope's rows, record every table's verdict for the window, raise ``QualityGateError`` if a
    critical expectation failed. ``full``: every suite on its whole table (the weekly ``gate.full``)."""
    lake = Lake(cfg, spark)
    step = f"gate.{layer}" + (".full" if full else "")
    report_ = GateReport(step, run_id or str(RunId.new(step.replace(".", "-"))), window, layer)
    suites = [s for s in load_suites(layer, suites_dir or cfg.suites_dir()) if tables is None or s.table in tables]
    recorded = Recorded.read(lake)  # before this gate records anything: what the suites compare with
    results = [validate(spark, cfg, s, window, full=full, recorded=recorded) for s in suites]
    configured = sum(len(s.expectations) for s in suites)
    evaluated = sum(1 for r in results for o in r.outcomes if o.error != "not evaluated")
    not_applicable = [r.suite.table for r in results if r.not_applicable]
    skipped = sum(len(r.suite.expectations) for r in results if r.not_applicable)
    report_.passed = not any(r.critical_failures for r in results) and evaluated + skipped == configured
    report_.expectations, report_.not_applicable = evaluated, not_applicable
    record(lake, results, layer, report_.run_id, window)
    if not report_.passed or cfg.quality_docs == "gate":  # a failure's pages at once: the engineer needs them now
        docs.render(cfg, [r.docs_key for r in results if r.docs_key is not None])
    report.write(docs.docs_index(cfg).parent, results, layer, report_.run_id, report_.passed)
    warnings = [(r.suite.table, o.expectation.label) for r in results for o in r.outcomes
                if not o.success and o.expectation.severity == "warning"]
    report_.warnings = len(warnings)
    for table, label in warnings:
        log.warning("quality warning on %s: %s", table, label)
    # each table's results, for lineage: (expectation, column, success, severity)
    report_.assertions = {r.suite.table: [(o.expectation.type, o.expectation.kwargs.get("column"), o.success,
                                           o.expectation.severity) for o in r.outcomes]
                          for r in results if not r.not_applicable}
    if not report_.passed:
        detail = describe_failures(results) or f"  only {evaluated} of {configured} expectations were evaluated"
        error = QualityGateError(
            f"the {layer} quality gate failed for landing window {window} (run {report_.run_id}); the next layer will "
            f"not be built from this window:\n{detail}\nSee ops.quality_results and the Data Docs (`rapport quality docs`)."
        )
        error.assertions = report_.assertions
        raise error
    return report_


def run_full(spark: "SparkSession", cfg: Config, window: Window, *, run_id: str | None = None,
             suites_dir: Path | None = None) -> GateReport:
    """The weekly ``gate.full`` step: every layer's suites on whole tables (daily gates read what runs touched).
    Every layer is validated and recorded before a failure is raised, naming each failed layer."""
    report_ = GateReport("gate.full", run_id or str(RunId.new("gate-full")), window, "all", passed=True)
    failures = []
    for layer in ("bronze", "silver", "gold"):
        try:
            r = run(spark, cfg, window, layer=layer, run_id=f"{report_.run_id}-{layer}", suites_dir=suites_dir, full=True)
        except QualityGateError as exc:
            failures.append(str(exc))
            continue
        report_.expectations += r.expectations
        report_.warnings += r.warnings
        report_.not_applicable += r.not_applicable
    if failures:
        raise QualityGateError("the weekly whole-table gate failed:\n" + "\n".join(failures))
    return report_


