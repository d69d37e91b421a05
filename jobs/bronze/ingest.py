"""Bronze ingest: landing files → ``bronze/<source>`` (raw, append-only, replayable).

Contract
- Input: landing files of one source whose landing hour is in ``[start, end)``.
- Output: one bronze row per readable line that is a JSON object (raw ``value``,
  ``source_file``, ``line_number``, landing date/hour, ``run_id``, ``ingested_at``),
  partitioned by ``landing_dt``; malformed lines and unreadable gzip members go to
  ``ops/quarantine`` with a reason; one ``ops/ingest_log`` row per file taken.
- Idempotent per file: a file whose (path, size, version) is in the ingest log is
  skipped. Rows left by a run that died before logging are deleted before the same
  files are taken again, so nothing is ever duplicated.
- Reconciled: lines read + damaged members = bronze rows + quarantined, or the run fails.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from jobs.bronze.decode import decode
from jobs.config import Config
from jobs.lake import Lake, in_list
from jobs.pipeline.guards import ReconciliationError
from jobs.pipeline.report import Report
from jobs.pipeline.run_id import RunId
from jobs.pipeline.sources import source as source_of
from jobs.pipeline.window import Window
from jobs.storage import Landing, LandingFile, arrow_filesystem, remove_tree

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
STAGE_ROWS = 200_000  # rows per staged Parquet file
MALFORMED = "json_object_keys(value) IS NULL"  # invalid JSON, or JSON that is not an object
STAGED_SCHEMA = ("value string, source_file string, line_number bigint, landing_dt date, landing_hour int, "
                 "reason string, detail string")


@dataclass
class IngestReport(Report):
    source: str = ""
    files_found: int = 0
    files_skipped: int = 0
    files_taken: int = 0
    lines: int = 0
    blank_lines: int = 0
    corrupt_members: int = 0
    bronze_rows: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    recovered_rows: int = 0  # rows of an earlier, unfinished run that were removed first

    @property
    def landed(self) -> int:
        return self.lines + self.corrupt_members


def split(staged: "DataFrame") -> tuple["DataFrame", "DataFrame"]:
    """Staged rows → (bronze rows, quarantine rows without run columns). Pure."""
    from pyspark.sql import functions as F

    readable = staged.where(F.col("reason").isNull())
    bronze = readable.where(f"NOT ({MALFORMED})").select("value", "source_file", "line_number", "landing_dt",
                                                          "landing_hour")
    bad = staged.where(F.col("reason").isNotNull() | F.expr(MALFORMED)).select(
        F.coalesce("reason", F.lit("malformed_json")).alias("reason"),
        F.coalesce("detail", F.lit("line is not a JSON object")).alias("detail"),
        F.col("value").alias("raw"), "source_file", "line_number", "landing_dt", "landing_hour",
    )
    return bronze, bad
def _stage(cfg: Config, landing: Landing, files: list[LandingFile], stage_uri: str, progress) -> dict[str, dict]:
    """Decode files on the client and write them as Parquet for the engine. Returns per-file counts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs, base = arrow_filesystem(cfg, stage_uri)
    schema = pa.schema([
        ("value", pa.string()), ("source_file", pa.string()), ("line_number", pa.int64()),
        ("landing_dt", pa.date32()), ("landing_hour", pa.int32()), ("reason", pa.string()), ("detail", pa.string()),
    ])
    columns: dict[str, list] = {name: [] for name in schema.names}
    counts: dict[str, dict] = {}
    part = 0

    def flush() -> None:
        nonlocal part
        if columns["value"] or columns["reason"]:
            table = pa.table(columns, schema=schema)
            pq.write_table(table, f"{base}/part-{part:05d}.parquet", filesystem=fs)
            part += 1
            for values in columns.values():
                values.clear()

    for f in files:
        d = decode(landing.read(f), gzipped=f.rel.endswith(".gz"))
        n = len(d.lines)
        columns["value"].extend(d.lines)
        columns["line_number"].extend(d.numbers)
        columns["reason"].extend([None] * n)
        columns["detail"].extend([None] * n)
        for c in d.corrupt:
            columns["value"].append(c.partial)
            columns["line_number"].append(c.line_number)
            columns["reason"].append("corrupt_gzip_member")
            columns["detail"].append(c.detail)
        total = n + len(d.corrupt)
        columns["source_file"].extend([f.rel] * total)
        columns["landing_dt"].extend([f.dt] * total)
        columns["landing_hour"].extend([f.hour.hour] * total)
        counts[f.rel] = {"lines": n, "blank_lines": d.blank_lines, "corrupt_members": len(d.corrupt)}
        if len(columns["value"]) >= STAGE_ROWS:
            flush()
        progress.update(1)
    flush()
    return counts


def _remove_unlogged_rows(lake: Lake, source: str, files: list[LandingFile]) -> int:
    """Delete rows that a run which died before logging left for these files; returns how many."""
    removed = 0
    dts = in_list(sorted({f.dt.isoformat() for f in files}))
    for i in range(0, len(files), 500):
        paths = in_list(f.rel for f in files[i : i + 500])
        where = f"landing_dt IN ({dts}) AND source_file IN ({paths})"
        if lake.exists(f"bronze.{source}"):
            found = lake.read(f"bronze.{source}").where(where).count()
            if found:
                lake.delete(f"bronze.{source}", where)
                removed += found
        q_where = f"source = '{source}' AND layer = 'bronze' AND {where}"
        if lake.exists("ops.quarantine") and lake.read("ops.quarantine").where(q_where).limit(1).count():
            lake.delete("ops.quarantine", q_where)
    return removed


def taken_files(lake: Lake, source: str) -> set[tuple[str, int, str]]:
    """(path, size, version) of every file of the source already in the ingest log: a listing."""
    if not lake.exists("ops.ingest_log"):
        return set()
    rows = lake.read("ops.ingest_log").where(f"source = '{source}'").select("path", "size", "version").collect()
    return {(r.path, r.size, r.version) for r in rows}


def run(spark: "SparkSession", cfg: Config, window: Window, *, source: str, run_id: str | None = None,
        progress: bool | None = None) -> IngestReport:
    from pyspark.sql import functions as F
    from tqdm import tqdm

    prefix = source_of(source).landing
    lake, landing = Lake(cfg, spark), Landing(cfg)
    report = IngestReport(f"ingest.{source}", run_id or str(RunId.new(f"ingest-{source}")), window, source)
    found = landing.list(prefix, window)
    done = taken_files(lake, source)
    todo = [f for f in found if (f.rel, f.size, f.version) not in done]
    report.files_found, report.files_skipped, report.files_taken = len(found), len(found) - len(todo), len(todo)
    if not todo:
        log.info("%s: nothing new in %d landing files", source, len(found))
        return report

    report.recovered_rows = _remove_unlogged_rows(lake, source, todo)
    stage_uri = lake.staging(report.run_id)
    ingested_at = datetime.now(timezone.utc).replace(microsecond=0)
    try:
        with tqdm(total=len(todo), unit=" files", desc=f"ingest {source}", disable=None if progress is None
                  else not progress) as bar:
            counts = _stage(cfg, landing, todo, stage_uri, bar)
        staged = spark.read.schema(STAGED_SCHEMA).parquet(stage_uri)
        bronze, bad = split(staged)
        run_cols = [F.lit(report.run_id).alias("run_id"), F.lit(ingested_at).cast("timestamp")]
        lake.append("ops.quarantine", bad.select(
            F.lit(source).alias("source"), F.lit("bronze").alias("layer"), "reason", "detail", "raw", "source_file",
            "line_number", "landing_dt", "landing_hour", run_cols[0], run_cols[1].alias("quarantined_at")))
        lake.append(f"bronze.{source}", bronze.select("*", run_cols[0], run_cols[1].alias("ingested_at")))
        written = {
            (r.source_file, r.kind): r.n
            for r in spark.sql(f"""
                SELECT source_file, 'bronze' AS kind, count(*) AS n FROM delta.`{lake.path(f'bronze.{source}')}`
                WHERE run_id = '{report.run_id}' GROUP BY source_file
                UNION ALL
                SELECT source_file, reason AS kind, count(*) AS n FROM delta.`{lake.path('ops.quarantine')}`
                WHERE run_id = '{report.run_id}' GROUP BY source_file, reason""").collect()
        }
        log_rows = []
        for f in todo:
            c = counts[f.rel]
            b = written.get((f.rel, "bronze"), 0)
            q = sum(n for (path, kind), n in written.items() if path == f.rel and kind != "bronze")
            log_rows.append((source, f.rel, f.size, f.version, f.dt, f.hour.hour, c["lines"], c["blank_lines"],
                             c["corrupt_members"], b, q, report.run_id, ingested_at))
            report.lines += c["lines"]
            report.blank_lines += c["blank_lines"]
            report.corrupt_members += c["corrupt_members"]
            report.bronze_rows += b
        for (_, kind), n in written.items():
            if kind != "bronze":
                report.quarantined[kind] = report.quarantined.get(kind, 0) + n
        quarantined = sum(report.quarantined.values())
        if report.landed != report.bronze_rows + quarantined:
            raise ReconciliationError(
                f"{source} run {report.run_id}: read {report.lines} lines + {report.corrupt_members} damaged members "
                f"= {report.landed}, but wrote {report.bronze_rows} bronze rows + {quarantined} quarantined. Nothing "
                "was logged, so the next run retakes these files; report this with the run id."
            )
        lake.append("ops.ingest_log", lake.frame("ops.ingest_log", log_rows))
    finally:
        remove_tree(cfg, stage_uri)
    log.info("%s: %d files, %d lines -> %d bronze rows, quarantined %s", source, report.files_taken, report.lines,
             report.bronze_rows, report.quarantined)
    return report

