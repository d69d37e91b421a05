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
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake, partition_condition
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from schemas.sources import SOURCES
from jobs.runs.window import Window
from jobs.quality import rates, report
from jobs.quality.suites import Expectation, Suite, load_suites
from jobs.storage import is_s3, remove_tree

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
RAPPORT_TYPES = ("volume_vs_previous", "freshness", "no_future_events", "referential", rates.TYPE)
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
    docs_key: object = None  # the stored Great Expectations result, rendered once per gate with the others

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


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


KEEP_RESULTS = 20  # Great Expectations' stored results and pages per suite (ops.quality_results keeps every result)


def prune(ctx, docs: Path, suite_name: str, keep: int | None = None) -> int:
    """Keep the newest ``keep`` stored validation results of a suite, and their Data Docs pages; delete the rest.

    Great Expectations lists every stored key each time it renders one page, so an unbounded store made each
    gate slower than the last. ``ops.quality_results`` is the record of every result; these are its rendering."""
    import shutil

    keep = KEEP_RESULTS if keep is None else keep
    root = Path(ctx.root_directory)
    stores = [root / "uncommitted" / "validations" / suite_name, docs / "validations" / suite_name]
    removed = 0
    for folder in stores:
        runs = sorted(folder.glob("*/*"), key=lambda p: p.name)  # <run name>/<run time, sortable>
        for old in runs[:-keep] if len(runs) > keep else []:
            shutil.rmtree(old, ignore_errors=True)
            removed += 1
    return removed


def _volume_floor(lake: Lake, table: str, max_drop: object) -> int:
    """The fewest rows ``volume_vs_previous`` accepts: the previous gate's count less ``max_drop`` of it."""
    prev = _previous_rows(lake, table)
    return 0 if prev is None else math.ceil(prev * (1 - float(max_drop)))


def _previous_rows(lake: Lake, table: str) -> int | None:
    from pyspark.sql import functions as F

    if not lake.exists("ops.quality_results"):
        return None
    row = (lake.read("ops.quality_results")
           .where(f"table_name = '{table}' AND expectation_type = 'volume_vs_previous'")
           .orderBy(F.desc("evaluated_at")).select("observed").first())
    return int(row.observed) if row and row.observed and row.observed.isdigit() else None


COLUMN_SETS = {"expect_table_columns_to_match_set": "column_set", "expect_table_columns_to_match_ordered_list": "column_list"}
UNIQUENESS = {"expect_column_values_to_be_unique": "column", "expect_compound_columns_to_be_unique": "column_list"}


def _unique_columns(e: Expectation) -> list[str]:
    value = e.kwargs[UNIQUENESS[e.type]]
    return [value] if isinstance(value, str) else list(value)


def _partitions(name: str) -> tuple[str, ...]:
    from schemas.tables import UnknownTableError, table

    try:
        return table(name).partitioned_by
    except UnknownTableError:
        return ()


def expand(lake: Lake, suite: Suite, df: "DataFrame", end: datetime | None, *, rest: "DataFrame | None" = None,
           table_rows: int | None = None, empty: bool = False):
    """GE expectation objects for a suite, and the batch with the helper columns they read.

    ``rest`` (the table's rows outside the batch) makes uniqueness mean "unique in the batch and against the
    existing rows with the same keys": only the key columns of ``rest`` are read. ``table_rows`` (the whole
    table's count, from the Delta log) is what ``volume_vs_previous`` compares when the batch is not the table.
    ``empty``: the batch is known to hold no row, so no other table is read for it."""
    import great_expectations.expectations as gxe
    from pyspark.sql import functions as F

    out, column_sets = [], []
    columns = set(df.columns)
    for i, e in enumerate(suite.expectations):
        meta = {"severity": e.severity, "rapport_index": i}
        kw = dict(e.kwargs)
        if e.type in UNIQUENESS and rest is not None:
            keys, helper = _unique_columns(e), f"_duplicate__{i}"
            batch_keys = df.select(*keys).where(" AND ".join(f"{k} IS NOT NULL" for k in keys))
            twice = batch_keys.groupBy(*keys).count().where("count > 1").select(*keys)
            if set(_partitions(suite.table)) <= set(keys):  # equal keys share a partition: none is outside the batch
                flagged = twice
            else:
                flagged = twice.unionByName(rest.select(*keys).join(batch_keys.distinct(), keys, "left_semi")).distinct()
            flagged = flagged.withColumn(helper, F.concat_ws(
                "|", *[F.col(k).cast("string") for k in keys]))
            df = df.join(flagged, keys, "left")
            out.append(gxe.ExpectColumnValuesToBeNull(column=helper, meta=meta))
        elif e.type == "volume_vs_previous":
            if table_rows is None:  # else the batch is part of the table: ``validate`` compares the log's count
                out.append(gxe.ExpectTableRowCountToBeBetween(min_value=_volume_floor(lake, suite.table, kw["max_drop"]),
                                                              meta=meta))
        elif e.type == rates.TYPE:  # judged from ops.quarantine and ops.ingest_log in ``validate``, not on the batch
            continue
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
            ref = lake.read_or_empty(f"{layer}.{table}").select(F.col(column).alias("_ref_key")).distinct()
            if empty:  # no row to look up: the referenced table is not read
                ref = ref.limit(0)
            df = (df.join(ref, df[kw["column"]] == ref["_ref_key"], "left")
                  .withColumn(helper, F.when(F.col("_ref_key").isNull(), F.col(kw["column"]).cast("string")))
                  .drop("_ref_key"))
            out.append(gxe.ExpectColumnValuesToBeNull(column=helper, meta=meta))
        else:
            cls = getattr(gxe, _camel(e.type), None)
            if cls is None:
                raise ValueError(f"{suite.table}: unknown expectation {e.type!r}")
            if e.type in COLUMN_SETS:  # built below, once every helper column is known
                column_sets.append((cls, kw, meta, COLUMN_SETS[e.type]))
            else:
                out.append(cls(**kw, meta=meta))
    # the helper columns added above are Rapport's, not the table's: a column-set expectation allows them
    helpers = [c for c in df.columns if c not in columns]
    for cls, kw, meta, arg in column_sets:
        out.append(cls(**{**kw, arg: [*kw[arg], *helpers]}, meta=meta))
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
    sites = ctx.get_config().data_docs_sites
    if "rapport" in sites and sites["rapport"]["store_backend"].get("base_directory") != str(docs):
        ctx.delete_data_docs_site("rapport")  # the lake moved (a copy, a new mount): render where it is now
    if "rapport" not in ctx.get_config().data_docs_sites:
        ctx.add_data_docs_site(site_name="rapport", site_config=site)
    if "local_site" in ctx.get_config().data_docs_sites:  # only the site whose pages Rapport masks
        ctx.delete_data_docs_site("local_site")
    return ctx


def _mask(suite: Suite, results) -> None:
    """Mask the values a validation result shows: hidden for raw, hashed and free-text columns, scrubbed of
    emails, phones, IPs, card numbers and handles for the others (``jobs.pii.scrub.mask``)."""
    from schemas.tables import UnknownTableError, table
    from jobs.pii.scrub import mask

    try:
        t = table(suite.table)
        classes = {c.name: c.pii for c in t.columns}
    except UnknownTableError:
        classes = {}
    for r in results:
        e = suite.expectations[r.expectation_config.meta["rapport_index"]]
        cls = classes.get(e.kwargs.get("column") or (e.kwargs.get("column_list") or [""])[0], "none")
        res = r.result or {}
        for name in ("partial_unexpected_list", "unexpected_list"):
            if isinstance(res.get(name), list):
                res[name] = [mask(v, cls) for v in res[name]]
        if isinstance(res.get("partial_unexpected_counts"), list):
            res["partial_unexpected_counts"] = [{**c, "value": mask(c.get("value"), cls)} if isinstance(c, dict) else c
                                                for c in res["partial_unexpected_counts"]]
        if cls != "none" and "observed_value" in res and isinstance(res["observed_value"], str):
            res["observed_value"] = mask(res["observed_value"], cls)
        if "details" in res and isinstance(res["details"], dict) and "partial_unexpected_counts" in res["details"]:
            res["details"] = {k: v for k, v in res["details"].items() if k != "partial_unexpected_counts"}


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
    from pyspark.sql import functions as F

    if not lake.exists("ops.quality_gates") or "table_version" not in lake.read("ops.quality_gates").columns:
        return None
    row = (lake.read("ops.quality_gates").where(f"table_name = '{table_name}' AND status = '{PASSED}'")
           .orderBy(F.desc("checked_at")).select("table_version").first())  # one row: the latest verdict
    return None if row is None or row.table_version is None else int(row.table_version)


def validate(spark: "SparkSession", cfg: Config, suite: Suite, window: Window | None = None, ctx=None, *,
             full: bool = False, staging: str | None = None) -> SuiteResult:
    """One suite on its scope's rows (``full``: every suite on its whole table).

    ``staging`` (a run id): a batch that is part of its table is materialised once, with the helper columns its
    joins compute, under that run's staging folder before Great Expectations reads it; each of its metrics would
    evaluate the joins again (on a 38-day lake the timeline's suite took 3.9 s without, 1.8 s with). A whole
    table is read where it is rather than copied whole."""
    import great_expectations as gx

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
        b = batch.touched(lake, suite.table, last_passed_version(lake, suite.table), version)
        where, described = b.where, b.describe()
        table_rows = None if where is None else b.rows  # counted from the log touched() already read
    df = whole if where is None else whole.where(where)
    empty = where == "FALSE"  # nothing changed since the last passed verdict: nothing else is read either
    rest = None if where is None or empty else whole.where(f"NOT ({where})")
    if scope == "window" and rest is not None and _partitions(suite.table):
        # rows that landed in other windows can share a key only within the partitions of this window's rows: the
        # domain refine deduplicates in (a copy keeps its event time; a landing file keeps its landing date)
        rest = rest.where(partition_condition(df, _partitions(suite.table)))
    df, expectations = expand(lake, suite, df, window.end, rest=rest, table_rows=table_rows, empty=empty)
    if staging is not None and not empty and where not in (None, "TRUE"):  # a part of the table: copying it pays
        df = lake.checkpoint(df, staging, suite.table.replace(".", "_"))
    ctx = ctx or context(lake)
    name = suite.table.replace(".", "_")
    source = ctx.data_sources.add_or_update_spark("rapport")
    asset = next((a for a in source.assets if a.name == name), None) or source.add_dataframe_asset(name)
    batch_def = next((b for b in asset.batch_definitions if b.name == "whole"), None) or \
        asset.add_batch_definition_whole_dataframe("whole")
    gx_suite = ctx.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=expectations))
    vd = ctx.validation_definitions.add_or_update(gx.ValidationDefinition(name=name, data=batch_def, suite=gx_suite))
    checkpoint = ctx.checkpoints.add_or_update(gx.Checkpoint(
        name=name, validation_definitions=[vd], actions=[],
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}))
    run = checkpoint.run(batch_parameters={"dataframe": df})
    key, validation = next(iter(run.run_results.items()))
    results = validation.results
    _mask(suite, results)  # before anything is stored or rendered: no raw personal data in samples or Data Docs
    ctx.validation_results_store.set(key, validation)  # rendered by ``render`` with the gate's other results
    rows = df.count()
    outcomes: dict[int, Outcome] = {}
    measured = None  # the window's quarantine, read once for the suite's rate expectations
    for i, e in enumerate(suite.expectations):
        if e.type == "volume_vs_previous" and table_rows is not None:  # the table's count from the log, not the batch's
            floor = _volume_floor(lake, suite.table, e.kwargs["max_drop"])
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
        i = r.expectation_config.meta["rapport_index"]
        e = suite.expectations[i]
        observed = r.result.get("observed_value")
        if e.type == "volume_vs_previous":
            observed = rows  # the batch is the whole table here
        raised = (r.exception_info or {}).get("raised_exception")
        outcomes[i] = Outcome(e, bool(r.success), None if observed is None else str(observed),
                              r.result.get("unexpected_count"), list(r.result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE],
                              (r.exception_info or {}).get("exception_message") if raised else None)
    # never pass by omission: every configured expectation must have been evaluated
    for i, e in enumerate(suite.expectations):
        outcomes.setdefault(i, Outcome(e, False, error="not evaluated"))
    return SuiteResult(suite, rows, [outcomes[i] for i in range(len(suite.expectations))], version=version,
                       batch=described, docs_key=key)


def render(ctx, cfg: Config, results: list[SuiteResult]) -> None:
    """The Data Docs pages of a gate's results, in one build (Great Expectations loads and compiles its templates
    on every build: once per suite, that was a third of a small suite's time), then each suite's store pruned.
    Its index is not built here: it re-reads every stored result, so building it on every gate made each gate
    slower than the last (``rapport quality docs`` builds it on demand)."""
    keys = [r.docs_key for r in results if r.docs_key is not None]
    if not keys:
        return
    ctx.build_data_docs(site_names=["rapport"], resource_identifiers=keys, build_index=False)
    for r in results:
        if r.docs_key is not None:
            prune(ctx, docs_index(cfg).parent, r.suite.table.replace(".", "_"))


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
    ctx = context(lake)
    try:  # each suite's batch, when part of its table, is materialised under the run's staging folder
        results = [validate(spark, cfg, s, window, ctx, full=full, staging=report_.run_id) for s in suites]
    finally:
        remove_tree(cfg, lake.staging(report_.run_id))
    render(ctx, cfg, results)
    configured = sum(len(s.expectations) for s in suites)
    evaluated = sum(1 for r in results for o in r.outcomes if o.error != "not evaluated")
    not_applicable = [r.suite.table for r in results if r.not_applicable]
    skipped = sum(len(r.suite.expectations) for r in results if r.not_applicable)
    report_.passed = not any(r.critical_failures for r in results) and evaluated + skipped == configured
    report_.expectations, report_.not_applicable = evaluated, not_applicable
    record(lake, results, layer, report_.run_id, window)
    report.write(docs_index(cfg).parent, results, layer, report_.run_id, report_.passed)
    warnings = [(r.suite.table, o.expectation.label) for r in results for o in r.outcomes
                if not o.success and o.expectation.severity == "warning"]
    report_.warnings = len(warnings)
    for table, label in warnings:
        log.warning("quality warning on %s: %s", table, label)
    if not report_.passed:
        detail = describe_failures(results) or f"  only {evaluated} of {configured} expectations were evaluated"
        raise QualityGateError(
            f"the {layer} quality gate failed for landing window {window} (run {report_.run_id}); the next layer will "
            f"not be built from this window:\n{detail}\nSee ops.quality_results and the Data Docs (`rapport quality docs`)."
        )
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


def build_index(spark: "SparkSession", cfg: Config) -> Path | None:
    """Great Expectations' own Data Docs index, built once from every stored result (gates skip it: it grows with
    history). Returns its path, or None when no gate has stored a result."""
    ctx = context(Lake(cfg, spark))
    keys = sorted(ctx.validation_results_store.list_keys(), key=lambda k: k.run_id.run_time)
    if not keys:
        return None
    ctx.build_data_docs(site_names=["rapport"], resource_identifiers=keys[-1:], build_index=True)
    return docs_index(cfg).parent / "index.html"


def docs_index(cfg: Config) -> Path:
    """Rapport's offline overview page (it links Great Expectations' per-validation pages)."""
    lake = Lake(cfg)
    docs = Path(lake.root) / "_docs" if not is_s3(lake.root) else Path.cwd() / ".rapport-docs"
    return docs / report.PAGE
