"""Bronze ingest: a source's landing files → ``bronze.<source>`` (raw, append-only, replayable).

Contract
- Input: the files of one source that fall in the window (``jobs.bronze.landing``: the source's folder and
  layout). The engine reads them (``binaryFile``) and decodes them (``mapInArrow`` over
  ``jobs.bronze.decode``): this process lists, counts and commands, and no landing byte passes through it.
- Output: one bronze row per record that is a JSON object (raw ``value``, lineage ``source_file`` and
  ``line_number``, landing date and hour, ``run_id``, ``ingested_at``), partitioned by ``landing_dt``.
  Everything else goes to ``ops.quarantine`` with a reason and its raw text or bytes: never dropped,
  never rewritten. One ``ops.ingest_log`` row per file version taken; files that are not read are listed
  in ``ops.landing_unrecognised`` with why.
- Idempotent per file version: a file whose (path, size, version) is in the ingest log is skipped. A file
  that changed after it was taken is taken again as a new version with its own lineage
  (``<path>@v2``), and refine dedupes across versions by event id (the earliest arrival wins; other content
  is an ``id_conflict``). Rows left by a run that died before logging are deleted before the same file
  versions are taken again, so nothing is ever duplicated.
- Reconciled per file: records decoded = bronze rows + quarantined, or the run fails and logs nothing.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import TYPE_CHECKING

from jobs.bronze.decode import LINEAGE_SCHEMA, decode_batches, engine_key
from jobs.bronze.landing import Landing, LandingFile, Unrecognised, content_hour
from jobs.config import Config
from jobs.lake import Lake, in_list, partitions_sql
from jobs.runs.report import ReconciliationError
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from jobs.runs.window import Window
from jobs.storage import remove_tree

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
# What the engine says of a record that looked like an object: it does not parse, or is not an object. Written
# with functions Sail's workers run (json_object_keys is not one of them: docs/sail-gaps.md).
NOT_AN_OBJECT = "NOT coalesce(regexp_like(value, '^\\\\s*[{]') AND get_json_object(value, '$') IS NOT NULL, false)"
# Files per engine read: the engine's binaryFile source holds them all in memory at once, and Sail 0.7.2 keeps
# memory outside its pool after a read, more per file the more files one read takes (the 5M-event window's
# 5,688 files: staging peaked at 5.3 GiB by 1,000 files, 3.6 GiB by 250, in the same time)
FILES_PER_READ = 250
MAX_PATHS_LISTED = 5_000  # a window with more files than this reads the source's whole ingest log instead


@dataclass
class IngestReport(Report):
    source: str = ""
    files_found: int = 0
    files_skipped: int = 0
    files_taken: int = 0
    files_changed: int = 0  # taken again because they changed after an earlier version was taken
    files_waiting: int = 0  # content-dated files of a later hour, or files that changed while being read
    files_unrecognised: int = 0
    lines: int = 0  # records decoded
    blank_lines: int = 0
    corrupt_members: int = 0
    bronze_rows: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    recovered_rows: int = 0  # rows of an earlier, unfinished run that were removed first

    @property
    def landed(self) -> int:
        return self.lines


@dataclass(frozen=True)
class Take:
    """A file version to take: the file, its version number and the name it carries in lineage."""

    file: LandingFile
    file_version: int
    lineage: str


def split(staged: "DataFrame") -> tuple["DataFrame", "DataFrame"]:
    """Staged records (with ``not_object``, see ``_decode``) → (bronze rows, quarantine rows without the run
    columns). Pure."""
    from pyspark.sql import functions as F

    records = staged.where("kind = 'record'")
    bad = F.col("reason").isNotNull() | F.col("not_object")
    bronze = records.where(~bad).select("value", "source_file", "line_number", "landing_dt", "landing_hour")
    quarantine = records.where(bad).select(
        F.coalesce("reason", F.lit("malformed_json")).alias("reason"),
        F.coalesce("detail", F.lit("not a JSON object (the engine's JSON parser could not read it)")).alias("detail"),
        F.col("value").alias("raw"), "raw_bytes", "source_file", "line_number", "landing_dt", "landing_hour")
    return bronze, quarantine


def _versions(lake: Lake, source: str, paths: list[str] | None = None) -> dict[str, list[tuple[int, str, int]]]:
    """Per path, the (size, version, file version) already taken: a listing of the ingest log, for ``paths`` only
    when given (a window's files: what comes back follows the window, not the log's history)."""
    if not lake.exists("ops.ingest_log"):
        return {}
    if paths is not None and not paths:
        return {}
    where = f"source = '{source}'"
    if paths is not None and len(paths) <= MAX_PATHS_LISTED:
        where += f" AND path IN ({in_list(paths)})"
    out: dict[str, list] = {}
    for r in lake.read("ops.ingest_log").where(where).select("path", "size", "version", "file_version").collect():
        out.setdefault(r.path, []).append((r.size, r.version, r.file_version))
    return out


def plan(files: list[LandingFile], taken: dict[str, list[tuple[int, str, int]]]) -> tuple[list[Take], int, int]:
    """Which file versions to take, (takes, already taken, changed since taken). Pure."""
    takes, skipped, changed = [], 0, 0
    for f in files:
        seen = taken.get(f.rel, [])
        if any(size == f.size and version == f.version for size, version, _ in seen):
            skipped += 1
            continue
        n = max((v for _, _, v in seen), default=0) + 1
        changed += n > 1
        takes.append(Take(f, n, f.rel if n == 1 else f"{f.rel}@v{n}"))
    return takes, skipped, changed


def _remove_unlogged_rows(lake: Lake, source: str, takes: list[Take]) -> int:
    """Delete rows that a run which died before logging left for these file versions; returns how many."""
    removed = 0
    for i in range(0, len(takes), 500):
        part = takes[i : i + 500]
        where = f"source_file IN ({in_list(t.lineage for t in part)})"
        if all(t.file.hour is not None for t in part):  # dated by their folders: their rows are in those partitions
            where += f" AND ({partitions_sql(('landing_dt',), {(t.file.hour.date(),) for t in part})})"
        if lake.exists(f"bronze.{source}"):
            found = lake.read(f"bronze.{source}").where(where).count()
            if found:
                lake.delete(f"bronze.{source}", where)
                removed += found
        q_where = f"source = '{source}' AND layer = 'bronze' AND {where}"
        if lake.exists("ops.quarantine") and lake.read("ops.quarantine").where(q_where).limit(1).count():
            lake.delete("ops.quarantine", q_where)
    return removed


def record_unrecognised(lake: Lake, found: list[Unrecognised], run_id: str) -> None:
    """List files that are not read in ops.landing_unrecognised (once per path and version)."""
    if not found:
        return
    now = datetime.now(timezone.utc).replace(microsecond=0)
    rows = [(u.source, u.rel, u.size, u.version, u.reason, run_id, now) for u in found]
    lake.append_new("ops.landing_unrecognised", lake.frame("ops.landing_unrecognised", rows))


def _decode(spark: "SparkSession", lake: Lake, takes: list[Take], run_id: str) -> "DataFrame":
    """The engine reads and decodes the files; the records, with their lineage, staged as Parquet, a part of
    ``FILES_PER_READ`` files at a time (the engine's file source holds a part's files in memory at once)."""
    from pyspark.sql import functions as F

    parts = []
    for i in range(0, len(takes), FILES_PER_READ):
        part = takes[i : i + FILES_PER_READ]
        lineage = {engine_key(t.file.uri): t.lineage for t in part}
        # Sail 0.7 splits a file into byte ranges for parallelism and binaryFile then reads the whole file once per
        # range (docs/sail-gaps.md): keep one row per path
        raw = spark.read.format("binaryFile").load([t.file.uri for t in part]).dropDuplicates(["path"])
        parts.append(raw.mapInArrow(functools.partial(decode_batches, lineage=lineage), LINEAGE_SCHEMA)
                     # judged once here: bronze and quarantine are two writes, and the check parses each line
                     .withColumn("not_object", F.expr(f"kind = 'record' AND reason IS NULL AND {NOT_AN_OBJECT}")))
    return lake.checkpoint_parts(parts, run_id, "decoded")


def run(spark: "SparkSession", cfg: Config, window: Window, *, source: str, run_id: str | None = None,
        progress: bool | None = None) -> IngestReport:
    from pyspark.sql import functions as F

    lake, landing = Lake(cfg, spark), Landing(cfg)
    report = IngestReport(f"ingest.{source}", run_id or str(RunId.new(f"ingest-{source}")), window, source)
    files, unrecognised = landing.scan(source, window)
    report.files_unrecognised = len(unrecognised)
    record_unrecognised(lake, unrecognised, report.run_id)
    found = [f for f in files if f.may_fall_in(window)]
    takes, report.files_skipped, report.files_changed = plan(found, _versions(lake, source, [f.rel for f in found]))
    report.files_found = len(found)
    if not takes:
        log.info("%s: nothing new in %d landing files", source, len(found))
        return report
    report.recovered_rows = _remove_unlogged_rows(lake, source, takes)
    ingested_at = datetime.now(timezone.utc).replace(microsecond=0)
    try:
        staged = _decode(spark, lake, takes, report.run_id)
        # the newest receivedAt dates a file whose path has no hour: a JSON lookup on every line, so only then
        newest = (F.max(F.expr("CASE WHEN kind = 'record' AND reason IS NULL THEN "
                               "try_cast(get_json_object(value, '$.receivedAt') AS TIMESTAMP) END"))
                  if any(t.file.hour is None for t in takes) else F.max(F.lit(None).cast("timestamp")))
        stats = {r.source_file: r for r in staged.groupBy("source_file").agg(  # one row per file: counts
            F.max(F.when(F.col("kind") == "file", F.col("bytes_read"))).alias("bytes_read"),
            F.max(F.when(F.col("kind") == "file", F.col("blank_lines"))).alias("blank_lines"),
            F.max(F.when(F.col("kind") == "file", F.col("encoding"))).alias("encoding"),
            F.sum(F.when(F.col("kind") == "record", 1).otherwise(0)).alias("records"),
            F.sum(F.when(F.col("reason") == "corrupt_gzip_member", 1).otherwise(0)).alias("corrupt"),
            newest.alias("newest"),
        ).collect()}
        hours, kept = {}, []
        empty = {"bytes_read": 0, "blank_lines": 0, "encoding": "empty", "records": 0, "corrupt": 0, "newest": None}
        for t in takes:
            s = stats.get(t.lineage)
            if s is None and t.file.size == 0:  # the engine yields no row for an empty file: nothing to lose
                s = stats[t.lineage] = SimpleNamespace(**empty)
            if s is None or s.bytes_read != t.file.size:  # changed (or vanished) since it was listed
                report.files_waiting += 1
                log.warning("%s changed while it was being read; it is taken on a later run", t.file.rel)
                continue
            if t.file.hour is not None:
                hour = t.file.hour
            else:
                hour, waits = content_hour(s.newest, t.file, window)
                if waits:
                    report.files_waiting += 1
                    continue
            hours[t.lineage] = hour
            kept.append(t)
        report.files_taken = len(kept)
        if not kept:
            return report
        placed = spark.createDataFrame([(n, h.date(), h.hour) for n, h in hours.items()],
                                       "source_file string, landing_dt date, landing_hour int")
        bronze, bad = split(staged.join(placed, "source_file"))
        run_cols = (F.lit(report.run_id).alias("run_id"), F.lit(ingested_at).cast("timestamp"))
        lake.append("ops.quarantine", bad.select(
            F.lit(source).alias("source"), F.lit("bronze").alias("layer"), "reason", "detail", "raw", "raw_bytes",
            "source_file", "line_number", "landing_dt", "landing_hour", run_cols[0], run_cols[1].alias("quarantined_at")))
        lake.append(f"bronze.{source}", bronze.select("*", run_cols[0], run_cols[1].alias("ingested_at")))
        written: dict[tuple[str, str], int] = {}
        # the run's rows, read back from the partitions it wrote to: not the history of the source
        dates = partitions_sql(("landing_dt",), {(h.date(),) for h in hours.values()})
        for name, kind, where in ((f"bronze.{source}", "'bronze'", dates),
                                  ("ops.quarantine", "reason", f"source = '{source}' AND ({dates})")):
            for r in (lake.read(name).where(f"{where} AND run_id = '{report.run_id}'")
                      .groupBy("source_file", F.expr(kind).alias("kind")).count().collect()):
                written[(r.source_file, r.kind)] = r["count"]
        log_rows = []
        for t in kept:
            s, hour = stats[t.lineage], hours[t.lineage]
            b = written.get((t.lineage, "bronze"), 0)
            q = sum(n for (name, kind), n in written.items() if name == t.lineage and kind != "bronze")
            if s.records != b + q:
                raise ReconciliationError(
                    f"{source} run {report.run_id}: {t.file.rel} decoded into {s.records} records but {b} bronze rows "
                    f"+ {q} quarantined were written. Nothing was logged, so the next run retakes the file; report "
                    "this with the run id.")
            log_rows.append((source, t.file.rel, t.lineage, t.file_version, t.file.size, t.file.version, hour.date(),
                             hour.hour, s.encoding, s.records, s.blank_lines or 0, s.corrupt, b, q, report.run_id,
                             ingested_at))
            report.lines += s.records
            report.blank_lines += s.blank_lines or 0
            report.corrupt_members += s.corrupt
            report.bronze_rows += b
        for (_, kind), n in written.items():
            if kind != "bronze":
                report.quarantined[kind] = report.quarantined.get(kind, 0) + n
        lake.append("ops.ingest_log", lake.frame("ops.ingest_log", log_rows))
        if report.files_changed:
            log.warning("%s: %d file(s) changed after they were taken; the new versions were taken as new files "
                        "(ops.ingest_log.file_version > 1) and refine dedupes them by event id", source,
                        report.files_changed)
    finally:
        remove_tree(cfg, lake.staging(report.run_id))
    log.info("%s: %d files, %d records -> %d bronze rows, quarantined %s", source, report.files_taken, report.lines,
             report.bronze_rows, report.quarantined)
    return report


@dataclass
class SurveyReport(Report):
    unrecognised: int = 0


def survey(spark: "SparkSession", cfg: Config, window: Window, *, run_id: str | None = None) -> SurveyReport:
    """The ``ingest.survey`` step: files under the landing root in no source's folder, listed in
    ``ops.landing_unrecognised`` so none goes unseen."""
    lake = Lake(cfg, spark)
    report = SurveyReport("ingest.survey", run_id or str(RunId.new("ingest-survey")), window)
    found = Landing(cfg).survey()
    report.unrecognised = len(found)
    record_unrecognised(lake, found, report.run_id)
    lake.ensure("ops.landing_unrecognised")
    return report
