"""Great Expectations' side of a gate: the results it stores, the Data Docs pages rendered from them (masked,
pruned) and Rapport's offline overview page.

A gate stores each suite's result where Great Expectations' file store keeps it (``<lake>/_quality/gx/uncommitted/
validations``), in the JSON Great Expectations writes, without importing it: importing Great Expectations costs
3.5 s a process on these machines, more than a small day's gates. Pages are rendered from the stored results:
at once when a gate fails (the engineer needs them now) or ``RAPPORT_QUALITY_DOCS=gate``; otherwise by the
``quality.docs`` step (the curate DAG runs it beside the report, once gold is visible), by the CLI commands
that ran a gate, and by ``rapport quality docs``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.quality import report
from jobs.quality.suites import Suite
from jobs.runs.report import Report
from jobs.storage import is_s3

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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


def quality_root(cfg: Config) -> Path:
    """Great Expectations' project folder: under the lake, or beside the docs for a lake on S3."""
    return Path(Lake(cfg).root) / "_quality" if not is_s3(cfg.lake_root) else docs_index(cfg).parent / "_quality"


RUN_TIME = "%Y%m%dT%H%M%S.%fZ"  # a run time in a stored result's key and path, as Great Expectations writes it


def _store(cfg: Config) -> Path:
    return quality_root(cfg) / "gx" / "uncommitted" / "validations"


def _result_path(cfg: Config, key: tuple[str, ...]) -> Path:
    """Where the stored result of ``key`` (suite, run name, run time, batch) is."""
    return _store(cfg).joinpath(*key[:3], f"{key[3]}.json")


def context(cfg: Config):
    """The file-backed Great Expectations context (Data Docs in the docs folder)."""
    import great_expectations as gx

    ctx = gx.get_context(mode="file", project_root_dir=str(quality_root(cfg)))
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)  # Rapport reports results itself
    docs = docs_index(cfg).parent
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


def _json(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def store(cfg: Config, suite: Suite, results: list[dict], batch: str) -> tuple[str, str, str, str]:
    """Store a suite's results as Great Expectations stores a validation (same file, same JSON); returns its key
    (suite, run name, run time, batch), from which the page's path follows (``report.page_of``)."""
    name = suite.table.replace(".", "_")
    now = datetime.now(timezone.utc)
    key = (name, name, now.strftime(RUN_TIME), f"rapport-{name}")
    passed = sum(1 for r in results if r["success"])
    doc = {"id": None, "success": passed == len(results), "suite_name": name, "suite_parameters": {},
           "results": results, "statistics": {
               "evaluated_expectations": len(results), "successful_expectations": passed,
               "unsuccessful_expectations": len(results) - passed,
               "success_percent": 100.0 * passed / len(results) if results else None},
           "meta": {"great_expectations_version": _ge_version(), "run_id": {"run_name": name, "run_time": now.isoformat()},
                    "validation_time": now.isoformat(), "batch_spec": {"table": suite.table, "batch": batch}}}
    path = _result_path(cfg, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, default=_json, indent=2))
    return key


@functools.lru_cache(maxsize=1)
def _ge_version() -> str:
    from importlib.metadata import version

    return version("great_expectations")


def mask_results(suite: Suite, results) -> None:
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
        e = suite.expectations[r["expectation_config"]["meta"]["rapport_index"]]
        cls = classes.get(e.kwargs.get("column") or (e.kwargs.get("column_list") or [""])[0], "none")
        res = r.get("result") or {}
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


def render(cfg: Config, keys: list[tuple[str, ...]]) -> int:
    """The Data Docs pages of stored results, in one build (Great Expectations loads and compiles its templates
    on every build: once per suite, that was a third of a small suite's time), then each suite's store pruned.
    Its index is not built here: it re-reads every stored result, so building it on every gate made each gate
    slower than the last (``rapport quality docs`` builds it on demand). Returns the pages rendered."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (ExpectationSuiteIdentifier,
                                                                            ValidationResultIdentifier)
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    if not keys:
        return 0
    ctx = context(cfg)
    identifiers, suites = [], {}
    for key in keys:
        stored = json.loads(_result_path(cfg, key).read_text())
        suites[key[0]] = [r["expectation_config"] for r in stored["results"]]  # the page reads its suite
        run_time = datetime.strptime(key[2], RUN_TIME).replace(tzinfo=timezone.utc)
        identifiers.append(ValidationResultIdentifier(ExpectationSuiteIdentifier(name=key[0]),
                                                      RunIdentifier(run_name=key[1], run_time=run_time), key[3]))
    for name, configs in suites.items():
        expectations = [ExpectationConfiguration(type=c["type"], kwargs=c["kwargs"], meta=c["meta"]).to_domain_obj()
                        for c in configs]
        ctx.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=expectations))
    ctx.build_data_docs(site_names=["rapport"], resource_identifiers=identifiers, build_index=False)
    for name in suites:
        prune(ctx, docs_index(cfg).parent, name)
    return len(identifiers)


def pending(cfg: Config) -> list[tuple[str, ...]]:
    """Stored results whose page is not rendered yet (the store keeps ``KEEP_RESULTS`` per suite)."""
    store, docs = _store(cfg), docs_index(cfg).parent
    keys = [p.relative_to(store).with_suffix("").parts for p in store.glob("*/*/*/*.json")] if store.exists() else []
    return sorted((k for k in keys if not (docs / report.page_of(k)).exists()), key=lambda k: k[2])


def render_pending(cfg: Config) -> int:
    """Render every stored result that has no page yet; returns how many."""
    return render(cfg, pending(cfg))


@dataclass
class DocsReport(Report):
    pages: int = 0


def render_step(spark: "SparkSession", cfg: Config, window, *, run_id: str | None = None) -> DocsReport:
    """The ``quality.docs`` step: the Data Docs pages of the gates' stored results not rendered yet."""
    from jobs.runs.run_id import RunId

    report_ = DocsReport("quality.docs", run_id or str(RunId.new("quality-docs")), window)
    report_.pages = render_pending(cfg)
    return report_


def build_index(spark: "SparkSession", cfg: Config) -> Path | None:
    """Great Expectations' own Data Docs index, built once from every stored result (gates skip it: it grows with
    history). Returns its path, or None when no gate has stored a result."""
    render_pending(cfg)
    ctx = context(cfg)
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
