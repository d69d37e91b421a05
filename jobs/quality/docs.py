"""Great Expectations' side of a gate: its file-backed context, the Data Docs it renders (masked, pruned) and
Rapport's offline overview page."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.quality import report
from jobs.quality.suites import Suite
from jobs.storage import is_s3

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.quality.gate import SuiteResult


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
