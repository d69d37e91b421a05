"""Export: gold → versioned snapshots on S3 for recommendation services and CRM tools.

Contract
- Refuses when the latest gold quality gate failed.
- Reads every source table at one pinned Delta version, records those versions in the
  manifest, and builds each dataset from exactly them (``jobs.export.datasets``).
- The engine writes the files to ``_staging/<run_id>/export/<dataset>`` in the lake; this
  process hashes and counts them and publishes them (``jobs.export.snapshot``). Staging
  is removed at the end, whatever happened.
- Idempotent: a dataset whose newest complete snapshot was made from the same table
  versions with the same settings is not published again (``force`` does it anyway).
- After publishing, retention keeps the newest ``export_keep`` snapshots per dataset.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Callable, Iterable

from jobs.config import Config
from jobs.export import datasets as ds
from jobs.export.snapshot import MANIFEST_VERSION, ExportError, FileToPublish, SnapshotStore, count_rows, sha256_of, \
    snapshot_id
from jobs.lake import Lake, MissingTableError
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from jobs.runs.window import Window
from jobs.storage import arrow_filesystem, remove_tree, s3_client
from schemas import views
from schemas.affinity import TABLE as SIGNALS, described, scored_as

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
ROWS_PER_FILE = {"interactions": 2_000_000, "customer_features": 1_000_000, "timelines": 100_000}
SUFFIX = {"parquet": ".parquet", "jsonl": ".jsonl.gz"}
OPTIONAL = {SIGNALS}  # what a dataset is computed otherwise without


@dataclass
class ExportReport(Report):
    snapshot: str = ""
    published: dict[str, str] = field(default_factory=dict)  # dataset -> snapshot URI
    unchanged: dict[str, str] = field(default_factory=dict)  # dataset -> URI of the current snapshot
    rows: dict[str, int] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    pruned: dict[str, list[str]] = field(default_factory=dict)


def run(spark: "SparkSession", cfg: Config, window: Window, *, datasets: Iterable[str] = ds.DEFAULT_DATASETS,
        force: bool = False, now: datetime | None = None, progress: Callable[[str], None] = log.info,
        run_id: str | None = None) -> ExportReport:
    """Publish the datasets. Runs as the export stage, after its check that the gold gate passed."""
    base = cfg.require_export_uri()
    unknown = sorted(set(datasets) - set(ds.DATASETS))
    if unknown:
        raise ExportError(f"unknown dataset(s) {', '.join(unknown)}; datasets are {', '.join(ds.DATASETS)}")
    lake = Lake(cfg, spark)
    tables = _pinned(spark, lake, {s for name in datasets for s in ds.DATASETS[name].sources})
    as_of = tables["gold.customer_relationship"][1].agg({"as_of": "max"}).first()[0] \
        if "gold.customer_relationship" in tables else None
    store = SnapshotStore(s3_client(cfg), base, cfg.export_multipart_mb)
    run_id = run_id or str(RunId.new("export"))
    report = ExportReport("export", run_id, window, snapshot_id(now or datetime.now(timezone.utc)))
    try:
        for name in datasets:
            spec = ds.DATASETS[name]
            fmt = "jsonl" if spec.always_jsonl else cfg.export_format
            sources = {s: tables[s][0] for s in spec.sources}
            settings = _settings(cfg, name, fmt)
            current = store.latest(name)
            if current is not None and not force:
                previous = store.manifest(current)
                if previous.get("sources") == sources and previous.get("settings") == settings:
                    report.unchanged[name] = store.uri(current.prefix)
                    progress(f"  {name}: unchanged since snapshot {current.id} (same table versions and settings)")
                    continue
            df = _build(name, cfg, tables, as_of)
            files, schema = _stage(spark, lake, df, f"{run_id}/export/{name}", name, fmt)
            rows = sum(f.rows for f in files)
            manifest = {
                "manifest_version": MANIFEST_VERSION, "dataset": name, "snapshot": report.snapshot,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "format": fmt,
                "rows": rows, "bytes": sum(f.size for f in files),
                "files": [{"path": f.name, "rows": f.rows, "bytes": f.size, "sha256": f.sha256} for f in files],
                "schema": schema, "sources": sources, "settings": settings,
                "as_of": as_of.isoformat() if as_of else None,
            }
            progress(f"  {name}: {rows:,} rows in {len(files)} file(s), publishing")
            report.published[name] = store.publish(name, report.snapshot, files, manifest, progress)
            report.rows[name], report.bytes[name] = rows, manifest["bytes"]
            report.pruned[name] = store.prune(name, cfg.export_keep)
    finally:
        remove_tree(cfg, lake.staging(run_id))
    return report


def _pinned(spark: "SparkSession", lake: Lake, names: set[str]) -> dict[str, tuple[int, "DataFrame | None"]]:
    """Each table at its current version, read at exactly that version."""
    out = {}
    for qualified in sorted(names):
        version = lake.version(qualified)
        if version is None and qualified in OPTIONAL:  # an earlier release's lake, until its next curate
            out[qualified] = (-1, None)
            continue
        if version is None:
            if qualified.startswith("silver."):  # a source that never landed (no orders yet): no rows
                out[qualified] = (-1, lake.read_or_empty(qualified))
                continue
            raise MissingTableError(f"{qualified} does not exist yet under {lake.root}; run `rapport curate` first "
                                    "(exports are made from gold).")
        out[qualified] = (version, lake.read(qualified, version=version))
    return out


def _scored_from(cfg: Config, signals: "DataFrame | None", as_of) -> "date | None":
    """The day ``gold.product_signals`` counts its scores from, when it can give the interactions as of ``as_of``:
    it exists, was scored with today's weights and half-life, and holds no signal after ``as_of`` (whose age the
    export counts as 0, which a score summed without ages cannot). Else None. One small aggregate query."""
    if signals is None or as_of is None:
        return None
    found = described(signals)
    scored_from = scored_as(found, cfg.export_scoring())
    return None if scored_from is None or found.last.date() > as_of else scored_from


def _settings(cfg: Config, name: str, fmt: str) -> dict:
    settings: dict = {"format": fmt}
    if name == "interactions":
        settings.update(weights=cfg.interaction_weights(), half_life_days=cfg.export_half_life_days)
    return settings


def _build(name: str, cfg: Config, tables: dict, as_of) -> "DataFrame":
    if name == "customer_features":
        return ds.customer_features(tables["gold.customer_relationship"][1])
    # the timeline as the versions read make it: the interactions with the identity in force then
    timeline = views.timeline_frame(tables["gold.interactions"][1], tables["silver.identity_map"][1])
    if name == "interactions":
        scored_from = _scored_from(cfg, tables[SIGNALS][1], as_of)
        if scored_from is not None:
            return ds.interactions_from_signals(tables[SIGNALS][1], tables["silver.identity_map"][1],
                                                tables["silver.order_lines"][1], cfg.export_half_life_days,
                                                scored_from, as_of)
        log.info("export: gold.product_signals cannot give the interactions as of %s: computed from every interaction",
                 as_of)
        return ds.interactions(timeline, tables["silver.order_lines"][1], cfg.interaction_weights(),
                               cfg.export_half_life_days, as_of)
    return ds.timelines(timeline)


def _stage(spark: "SparkSession", lake: Lake, df: "DataFrame", rel: str, name: str,
           fmt: str) -> tuple[list[FileToPublish], list[dict]]:
    """Have the engine write the dataset; return its files (hashed and counted) and its schema."""
    import tempfile
    from pyarrow.fs import FileSelector, FileType

    path = lake.staging(rel)
    # the dataset is computed once, into staging; its row count (from the files' metadata) sizes the files
    # published, which are written from that copy, and checks them
    declared = df.schema
    df = lake.checkpoint(df, f"{rel}-rows", "")
    expected = df.count()
    writer = df.repartition(max(1, math.ceil(expected / ROWS_PER_FILE[name]))).write.mode("overwrite")
    if fmt == "parquet":
        writer.option("compression", "snappy").parquet(path)
    else:
        writer.option("compression", "gzip").json(path)
    fs, base = arrow_filesystem(lake.cfg, path)
    written = sorted(i.path for i in fs.get_file_info(FileSelector(base)) if i.type == FileType.File
                     and i.base_name.endswith((".parquet", ".json.gz")))
    files = []
    for staged in written:
        with tempfile.NamedTemporaryFile(suffix=SUFFIX[fmt]) as tmp:  # rows need a seekable local copy
            with fs.open_input_stream(staged, compression=None) as src:
                digest, size = sha256_of(_Tee(src, tmp))
            tmp.flush()
            rows = count_rows(tmp.name, tmp.name)
        if rows or not files and staged == written[-1]:  # skip empty partitions, but keep a file for the schema
            files.append(FileToPublish(f"part-{len(files):05d}{SUFFIX[fmt]}", lambda p=staged: fs.open_input_stream(p, compression=None),
                                       size, rows, digest))
    if sum(f.rows for f in files) != expected:
        raise ExportError(f"the engine wrote {sum(f.rows for f in files)} rows of {name} to {path} but the dataset "
                          f"has {expected}; nothing was published. Run the export again; if it repeats, report it.")
    schema = [{"name": f.name, "type": f.dataType.simpleString(), "nullable": f.nullable} for f in declared.fields]
    return files, schema


class _Tee:
    """A stream that copies what is read from it into ``sink``."""

    def __init__(self, source, sink):
        self.source, self.sink = source, sink

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        self.sink.write(data)
        return data
