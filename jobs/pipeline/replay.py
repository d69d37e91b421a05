"""Quarantined lines brought back: ``rapport quarantine replay``.

A line is quarantined with its reason and raw text, never dropped or rewritten. Once the cause is fixed (the
source sends the field right again and a backfill is wanted, or a rule in ``schemas/rules.py`` was too strict),
``replay`` lands the quarantined lines again, as they were or with edits (``--fix``), and runs ingest, refine and
curate over the hours they first arrived in, so they are judged as if they had arrived right then (lateness
included) and the window's audit reconciles:

- each copy is a new landing line in a file ``replay-<run>…`` in the original arrival hour's folder, in the
  source's layout, so it has its own lineage and is counted once more as landed, and once as silver, quarantined
  again or a duplicate (a line replayed twice is a duplicate of its first copy);
- ``ops.replays`` records which quarantine row each copy came from. The quarantine row stays (it is what
  happened); the quarantine-rate gate counts only rows not replayed (``jobs.quality.rates``).

Lines whose raw text retention removed, or that were not text (a damaged gzip member, invalid UTF-8), cannot be
replayed; the command counts them. Edits run on the engine (a Python UDF over each line's JSON): ``path=JSON`` sets
a field (``context.device.type="mobile"``), ``path=@other.path`` copies another field, ``-path`` removes one; a
path's parts are separated by dots, and a number is a list index. A line that is not a JSON object is kept as it was.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from jobs.bronze.landing import Landing
from jobs.config import Config
from jobs.lake import Lake
from jobs.runs.run_id import RunId
from jobs.runs.window import HOUR, Window
from jobs.quality.rates import REPLAY_KEY as KEY  # a quarantine row, as ops.replays names it
from jobs.storage import arrow_filesystem, list_objects, remove_tree

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


class ReplayError(ValueError):
    """A replay request that cannot be carried out; the message says why and what to do."""


# ---- edits
@dataclass(frozen=True)
class Fix:
    path: tuple[str, ...]
    op: str  # set, copy or remove
    value: Any = None  # the JSON value (set) or the path to copy from (copy)

    @property
    def text(self) -> str:
        p = ".".join(self.path)
        if self.op == "copy":
            return f"{p}=@{'.'.join(self.value)}"
        return f"{p}={json.dumps(self.value)}" if self.op == "set" else f"-{p}"


def parse_fix(text: str) -> Fix:
    """``path=JSON``, ``path=@other.path`` or ``-path``."""
    def path_of(p: str) -> tuple[str, ...]:
        parts = tuple(p.strip().split("."))
        if not p.strip() or any(not x for x in parts):
            raise ReplayError(f"--fix {text!r}: {p!r} is not a field path (parts separated by dots)")
        return parts

    if text.startswith("-") and "=" not in text:
        return Fix(path_of(text[1:]), "remove")
    target, sep, raw = text.partition("=")
    if not sep:
        raise ReplayError(f"--fix {text!r}: write path=JSON, path=@other.path or -path")
    if raw.startswith("@"):
        return Fix(path_of(target), "copy", path_of(raw[1:]))
    try:
        value = json.loads(raw)
    except ValueError:
        raise ReplayError(f"--fix {text!r}: {raw!r} is not a JSON value (quote a text: path='\"text\"')") from None
    return Fix(path_of(target), "set", value)


_MISSING = object()


def _step(node: Any, key: str) -> Any:
    if isinstance(node, dict):
        return node.get(key, _MISSING)
    if isinstance(node, list) and key.lstrip("-").isdigit() and -len(node) <= int(key) < len(node):
        return node[int(key)]
    return _MISSING


def _get(record: Any, path: tuple[str, ...]) -> Any:
    node = record
    for key in path:
        node = _step(node, key)
        if node is _MISSING:
            return _MISSING
    return node


def fixed(record: Any, fixes: list[Fix]) -> Any:
    """The record with the edits applied, in order; an edit whose path does not exist changes nothing. Pure."""
    import copy

    out = copy.deepcopy(record)
    for f in fixes:
        parent = _get(out, f.path[:-1])
        last = f.path[-1]
        if f.op == "remove":
            if isinstance(parent, dict):
                parent.pop(last, None)
            continue
        value = f.value if f.op == "set" else _get(out, f.value)
        if value is _MISSING:
            continue
        if isinstance(parent, dict):
            parent[last] = copy.deepcopy(value)
        elif isinstance(parent, list) and _step(parent, last) is not _MISSING:
            parent[int(last)] = copy.deepcopy(value)
    return out


def fix_line(line: str | None, fixes_json: str) -> str | None:
    """One raw line with the edits applied; a line that is not a JSON object comes back as it was."""
    if line is None:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict):
        return line
    fixes = [Fix(tuple(f["path"]), f["op"], tuple(f["value"]) if f["op"] == "copy" else f.get("value"))
             for f in json.loads(fixes_json)]
    return json.dumps(fixed(record, fixes), ensure_ascii=False, allow_nan=True)


def _fix_lines(lines, fixes):  # (no type hints: pandas_udf cannot read postponed ones)
    import pandas as pd

    spec = fixes.iloc[0] if len(fixes) else "[]"
    return pd.Series([fix_line(x, spec) for x in lines], dtype=object)


def _fix_udf():
    from pyspark.sql.functions import pandas_udf

    return pandas_udf(_fix_lines, "string")  # a module function: pickled by reference, no closure


# ---- where copies land
def landing_name(layout: str, hour: datetime, run: str, n: int) -> str:
    """The path under a source's folder of the n-th replay file for an arrival hour, in the source's layout."""
    if layout == "rapport":
        return f"dt={hour:%Y-%m-%d}/hour={hour:%H}/replay-{run}-{n}.json.gz"
    if layout == "segment-s3":
        day = int(datetime(hour.year, hour.month, hour.day, tzinfo=timezone.utc).timestamp() * 1000)
        return f"{day}/{int(hour.timestamp() * 1000)}.replay-{run}-{n}.gz"
    if layout == "rudderstack-s3":
        return f"{hour:%Y-%m-%d}/{int(hour.timestamp())}.replay-{run}-{n}.json.gz"
    raise ReplayError(f"unknown landing layout {layout!r}")


def _move(cfg: Config, src: str, dst: str) -> None:
    """A file moved within one store (a rename locally, a server-side copy on S3): no byte passes through here."""
    fs, src_path = arrow_filesystem(cfg, src.rsplit("/", 1)[0])
    src_path = f"{src_path}/{src.rsplit('/', 1)[1]}"
    _, dst_dir = arrow_filesystem(cfg, dst.rsplit("/", 1)[0])
    fs.create_dir(dst_dir, recursive=True)
    fs.move(src_path, f"{dst_dir}/{dst.rsplit('/', 1)[1]}")


# ---- the replay
@dataclass
class ReplayReport:
    run_id: str
    source: str
    reasons: tuple[str, ...]
    fixes: tuple[str, ...]
    selected: int = 0  # quarantine rows that matched
    replayed: int = 0  # of them, landed again
    not_text: int = 0  # no raw text left (retention) or never text: cannot be replayed
    already: int = 0  # replayed before (skipped unless again)
    files: list[str] = field(default_factory=list)
    window: Window | None = None
    silver: int = 0  # copies that reached silver
    quarantined: dict[str, int] = field(default_factory=dict)  # copies quarantined again, by reason
    duplicates: int = 0
    balanced: bool | None = None
    gates: list[str] = field(default_factory=list)  # what a gate of the run said, when one failed


def _selected(lake: Lake, source: str, reasons: tuple[str, ...], window: Window) -> "DataFrame":
    listed = ", ".join("'" + r.replace("'", "''") + "'" for r in reasons)
    return lake.read("ops.quarantine").where(f"source = '{source}' AND reason IN ({listed}) AND {window.sql()}")


def replay(spark: "SparkSession", cfg: Config, *, source: str, reasons: tuple[str, ...],
           window: Window | None = None, fixes: tuple[str, ...] = (), again: bool = False, run: bool = True,
           dry_run: bool = False) -> ReplayReport:
    """Land the source's quarantined lines with these reasons (that first arrived in ``window``) again, edited by
    ``fixes``, then (``run``) ingest, refine and curate the hours they arrived in. Idempotent: a line already
    replayed is skipped unless ``again``."""
    from pyspark.sql import functions as F

    from schemas.sources import EVENT_SOURCES, SOURCE_NAMES

    if source not in EVENT_SOURCES:
        extract = source in SOURCE_NAMES
        raise ReplayError(f"{source} is a reference extract: each extract replaces the last, so fix the extract and "
                          "land it again" if extract else
                          f"unknown source {source!r}; event sources are {', '.join(EVENT_SOURCES)}")
    if not reasons:
        raise ReplayError("name the reason(s) to replay (--reason); `rapport quarantine list` shows them")
    edits = [parse_fix(f) for f in fixes]
    window = window or Window()
    run_id = str(RunId.new("replay"))
    report = ReplayReport(run_id, source, tuple(reasons), tuple(e.text for e in edits))
    lake = Lake(cfg, spark)
    if not lake.exists("ops.quarantine"):
        return report
    rows = _selected(lake, source, report.reasons, window)
    if lake.exists("ops.replays") and not again:
        done = lake.read("ops.replays").select(*KEY).distinct()
        report.already = rows.join(done, list(KEY), "left_semi").count()
        rows = rows.join(done, list(KEY), "left_anti")
    counts = rows.agg(F.count(F.lit(1)).alias("n"),
                      F.sum(F.when(F.col("raw").isNull() | F.col("raw_bytes").isNotNull(), 1).otherwise(0))
                      .alias("not_text")).first()
    report.selected, report.not_text = counts.n + report.already, counts.not_text or 0
    rows = rows.where("raw IS NOT NULL AND raw_bytes IS NULL")
    report.replayed = counts.n - report.not_text
    if report.replayed == 0 or dry_run:
        return report

    # the copies, edited on the engine, one file per arrival hour, in a hidden folder of the source's landing
    landing = Landing(cfg)
    folder, layout = landing.folder(source), landing.layout(source)
    staging = f"{folder}/_replay/{run_id}"
    spec = json.dumps([{"path": list(e.path), "op": e.op, "value": list(e.value) if e.op == "copy" else e.value}
                       for e in edits])
    line = _fix_udf()(F.col("raw"), F.lit(spec)) if edits else F.col("raw")
    (rows.select(line.alias("value"), "landing_dt", "landing_hour")
     .repartition("landing_dt", "landing_hour")
     .write.mode("overwrite").partitionBy("landing_dt", "landing_hour").option("compression", "gzip")
     .text(staging))
    moved: dict[tuple[str, int], str] = {}
    per_hour: dict[tuple[str, int], int] = {}
    for obj in sorted(list_objects(cfg, staging), key=lambda o: o.key):
        parts = obj.key.split("/")
        if len(parts) != 3 or not parts[-1].endswith(".gz"):
            continue
        day, hour = parts[0].split("=", 1)[1], int(parts[1].split("=", 1)[1])
        n = per_hour[(day, hour)] = per_hour.get((day, hour), 0) + 1
        at = datetime.fromisoformat(day).replace(hour=hour, tzinfo=timezone.utc)
        name = landing_name(layout, at, run_id, n)
        _move(cfg, f"{staging}/{obj.key}", f"{folder}/{name}")
        moved.setdefault((day, hour), f"{source}/{name}")
        report.files.append(f"{source}/{name}")
    remove_tree(cfg, staging)
    if any(n > 1 for n in per_hour.values()):  # one file per hour is what lets each row name its copy's file
        log.warning("the engine wrote more than one file for an hour; ops.replays names the first")

    files = spark.createDataFrame([(d, h, f) for (d, h), f in moved.items()], "d string, h int, replay_file string")
    now = datetime.now(timezone.utc)
    record = (rows.join(files, (F.col("landing_dt").cast("string") == F.col("d")) & (F.col("landing_hour") == F.col("h")))
              .select(*KEY, "reason", "landing_dt", "landing_hour", "replay_file",
                      F.lit(", ".join(report.fixes)).alias("fixes"), F.lit(run_id).alias("run_id"),
                      F.lit(now).cast("timestamp").alias("replayed_at")))
    lake.append("ops.replays", record)
    hours = sorted(datetime.fromisoformat(d).replace(hour=h, tzinfo=timezone.utc) for d, h in moved)
    report.window = Window(hours[0], hours[-1] + HOUR)
    if run:
        _run(spark, cfg, report)
    return report


def _run(spark: "SparkSession", cfg: Config, report: ReplayReport) -> None:
    """Ingest, refine and curate the hours the copies landed in; count what became of them."""
    from pyspark.sql import functions as F

    from jobs.pipeline.runner import run_stage
    from schemas.sources import source as source_of
    from jobs.quality.gate import QualityGateError

    for stage in ("ingest", "refine", "curate"):
        try:
            run_stage(spark, cfg, stage, report.window)
        except QualityGateError as exc:  # counted below all the same: the copies are in the lake
            report.gates.append(f"{stage}: {exc}")
            break
    lake = Lake(cfg, spark)
    mine = F.col("source_file").isin(report.files)
    table = source_of(report.source).silver[0]
    report.silver = lake.read(table).where(mine).count() if lake.exists(table) else 0
    report.quarantined = {r.reason: r["count"] for r in lake.read("ops.quarantine")
                          .where(mine & (F.col("source") == report.source)).groupBy("reason").count().collect()}
    if lake.exists("ops.duplicates"):
        report.duplicates = lake.read("ops.duplicates").where(mine & (F.col("source") == report.source)).count()
    audits = (lake.read("ops.audit").where(f"source = '{report.source}' AND window_start = '{report.window.start_text}'"
                                           f" AND window_end = '{report.window.end_text}'")
              .select("balanced").collect())  # one audit row for the window: its verdict, no data
    report.balanced = bool(audits) and all(a.balanced for a in audits)


def summary(lake: Lake, source: str | None = None, window: Window | None = None) -> list[tuple]:
    """(source, reason, rows, replayed, raw text gone) of the quarantine, for ``rapport quarantine list``."""
    from pyspark.sql import functions as F

    if not lake.exists("ops.quarantine"):
        return []
    q = lake.read("ops.quarantine").where((window or Window()).sql())
    if source:
        q = q.where(F.col("source") == source)
    if lake.exists("ops.replays"):
        done = lake.read("ops.replays").select(*KEY).distinct().withColumn("_replayed", F.lit(1))
        q = q.join(done, list(KEY), "left")
    else:
        q = q.withColumn("_replayed", F.lit(None).cast("int"))
    out = (q.groupBy("source", "reason")
           .agg(F.count(F.lit(1)).alias("rows"), F.count("_replayed").alias("replayed"),
                F.sum(F.when(F.col("raw").isNull() & F.col("raw_bytes").isNull(), 1).otherwise(0)).alias("gone"))
           .orderBy("source", F.desc("rows")).collect())
    return [(r.source, r.reason, r.rows, r.replayed, r.gone or 0) for r in out]



