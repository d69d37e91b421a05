"""Refine: bronze → silver for one source and one landing window, then reconcile.

Contract
- Input: bronze rows whose landing hour is in ``[start, end)`` (late events are
  refined when they arrive and land in the partition of their own ``event_date``).
- Output: valid, typed, deduplicated rows in the source's silver table (MERGE-style
  inserts keyed on lineage), invalid rows and id conflicts in ``ops/quarantine``,
  dropped duplicates in ``ops/duplicates``, and for orders the current state in
  ``silver/orders`` and ``silver/order_lines``.
- Idempotent: re-running a window changes no table. Running day by day gives the
  same silver as one run over all days: within a run and across runs, the earliest
  arrival of an event wins.
- Reconciled per window in ``ops/audit``: lines landed (bronze rows + bronze
  quarantine) = silver rows + quarantined + duplicates, or the run fails loudly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import ModuleType
from typing import TYPE_CHECKING

from jobs.bronze.ingest import REFERENCE, ReconciliationError, new_run_id
from jobs.config import Config
from jobs.lake import Lake
from jobs.silver import clickstream, identity, orders, reference, sessions, social
from jobs.silver.common import (
    bronze_window, classify_duplicates, merge_by_lineage, quarantine, record_duplicates, window_sql,
)
from jobs.storage import remove_tree

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
MODULES: dict[str, ModuleType] = {"clickstream": clickstream, "social": social, "orders": orders}
META = ("value", "reason", "detail", "arrival_ts", "dedupe_status", "duplicate_of")  # fingerprint stays: later runs dedupe on it


@dataclass
class RefineReport:
    source: str
    run_id: str
    window: tuple[str, str]
    landed: int = 0
    bronze_rows: int = 0
    silver_rows: int = 0
    new_rows: int = 0
    duplicates: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    touched_dates: list = field(default_factory=list)  # event dates that received new rows

    @property
    def balanced(self) -> bool:
        return self.landed == self.silver_rows + sum(self.quarantined.values()) + self.duplicates


def _existing(spark: "SparkSession", lake: Lake, table: str, valid: "DataFrame", keys) -> "DataFrame | None":
    """Silver rows that could share a key with the batch: same event dates (a copy keeps its event time)."""
    from pyspark.sql import functions as F

    path = lake.path("silver", table)
    if not lake.exists(path):
        return None
    bounds = valid.select(F.min("event_date").alias("lo"), F.max("event_date").alias("hi")).first()
    if bounds.lo is None:
        return None
    return (lake.read(spark, path).where(f"event_date BETWEEN DATE'{bounds.lo}' AND DATE'{bounds.hi}'")
            .select(*keys, "fingerprint", "source_file", "line_number"))


def _refine_orders(spark: "SparkSession", lake: Lake, new: "DataFrame") -> None:
    """Fold new deliveries into the current state per order and rebuild the touched orders' lines."""
    latest = orders.latest_states(new)
    path = lake.path("silver", "orders")
    if not lake.exists(path):
        lake.append(latest, path, ["created_date"])
    else:
        latest.createOrReplaceTempView("_latest_orders")
        spark.sql(f"""MERGE INTO delta.`{path}` t USING _latest_orders s ON t.order_id = s.order_id
                      WHEN MATCHED AND s.updated_at > t.updated_at THEN UPDATE SET *
                      WHEN NOT MATCHED THEN INSERT *""")
    dates = sorted({r.created_date for r in latest.select("created_date").distinct().collect() if r.created_date})
    if not dates:
        return
    in_dates = ", ".join(f"DATE'{d}'" for d in dates)
    current = lake.read(spark, path).where(f"created_date IN ({in_dates})")
    lines = orders.lines_of(current)
    lines_path = lake.path("silver", "order_lines")
    writer = lines.write.format("delta").mode("overwrite").partitionBy("created_date")
    if lake.exists(lines_path):
        writer = writer.option("replaceWhere", f"created_date IN ({in_dates})")
    writer.save(lines_path)


def audit(spark: "SparkSession", lake: Lake, report: RefineReport, start, end) -> None:
    """Count the window from the tables themselves, record it in ops/audit, fail if it does not balance."""
    source, where = report.source, window_sql(start, end)
    module = MODULES[source]

    def count(layer: str, table: str, extra: str = "TRUE") -> int:
        path = lake.path(layer, table)
        if not lake.exists(path):
            return 0
        return spark.sql(f"SELECT count(*) AS n FROM delta.`{path}` WHERE {where} AND {extra}").first().n

    q_path = lake.path("ops", "quarantine")
    report.bronze_rows = count("bronze", source)
    report.landed = report.bronze_rows + count("ops", "quarantine", f"source = '{source}' AND layer = 'bronze'")
    report.silver_rows = count("silver", module.TABLE)
    report.duplicates = count("ops", "duplicates", f"source = '{source}'")
    report.quarantined = {}
    if lake.exists(q_path):
        for r in spark.sql(f"SELECT reason, count(*) AS n FROM delta.`{q_path}` WHERE {where} AND source = '{source}' "
                           "GROUP BY reason").collect():
            report.quarantined[r.reason] = r.n
    row = [(source, report.window[0], report.window[1], report.run_id, report.landed, report.bronze_rows,
            report.silver_rows, sum(report.quarantined.values()), report.quarantined, report.duplicates,
            report.balanced, datetime.now(timezone.utc))]
    schema = ("source string, window_start string, window_end string, run_id string, landed long, bronze_rows long, "
              "silver_rows long, quarantined long, quarantined_by_reason map<string,long>, duplicates long, "
              "balanced boolean, audited_at timestamp")
    df = spark.createDataFrame(row, schema)
    a_path = lake.path("ops", "audit")
    if not lake.exists(a_path):
        lake.append(df, a_path)
    else:
        df.createOrReplaceTempView("_audit_row")
        spark.sql(f"""MERGE INTO delta.`{a_path}` t USING _audit_row s
                      ON t.source = s.source AND t.window_start = s.window_start AND t.window_end = s.window_end
                      WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *""")
    if not report.balanced:
        q = sum(report.quarantined.values())
        raise ReconciliationError(
            f"{source} {report.window[0]}..{report.window[1]}: {report.landed} lines landed but silver {report.silver_rows}"
            f" + quarantined {q} + duplicates {report.duplicates} = {report.silver_rows + q + report.duplicates}. "
            f"Rows were lost or double-counted; see ops/audit (run {report.run_id}) and do not publish this window."
        )


def run(spark: "SparkSession", cfg: Config, source: str, start: datetime | None = None, end: datetime | None = None,
        run_id: str | None = None) -> RefineReport:
    from pyspark.sql import functions as F

    if source not in MODULES:
        raise ValueError(f"unknown source {source!r}; sources are {', '.join(MODULES)}")
    pii_key = cfg.require_pii_key()
    lake, module = Lake(cfg), MODULES[source]
    run_id = run_id or new_run_id(f"refine-{source}")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    report = RefineReport(source, run_id, (start.isoformat() if start else "", end.isoformat() if end else ""))
    try:
        for name in REFERENCE:  # cheap snapshots; social needs campaign posts
            reference.run(spark, lake, name, pii_key, run_id, now)
        bronze = bronze_window(spark, lake, source, start, end)
        if bronze is not None:
            if source == "social":
                posts_path = lake.path("silver", "campaign_posts")
                posts = lake.read(spark, posts_path) if lake.exists(posts_path) else None
                parsed = module.parse(bronze, pii_key, cfg.late_days, posts)
            else:
                parsed = module.parse(bronze, pii_key, cfg.late_days)
            parsed = lake.checkpoint(parsed, run_id, "parsed")
            quarantine(spark, lake, source, parsed.where("reason IS NOT NULL"), run_id, now)
            valid = parsed.where("reason IS NULL")
            classified = lake.checkpoint(classify_duplicates(valid, _existing(spark, lake, module.TABLE, valid, module.KEYS),
                                                             module.KEYS), run_id, "classified")
            conflicts = classified.where("dedupe_status = 'id_conflict'").withColumn("reason", F.lit("id_conflict")).withColumn(
                "detail", F.coalesce(F.concat(F.lit(f"{'/'.join(module.KEYS)} first seen at "), "duplicate_of",
                                              F.lit(" with other content")), F.lit("id_conflict")))
            quarantine(spark, lake, source, conflicts, run_id, now)
            record_duplicates(spark, lake, source, classified.where("dedupe_status = 'duplicate'"),
                              "concat_ws('/', " + ", ".join(module.KEYS) + ")", run_id)
            new = classified.where("dedupe_status = 'new'").drop(*META).withColumn("run_id", F.lit(run_id))
            merge_by_lineage(spark, lake, new, lake.path("silver", module.TABLE), ["event_date"])
            touched = classified.where("dedupe_status = 'new'").groupBy("event_date").count().collect()
            report.new_rows = sum(r["count"] for r in touched)
            report.touched_dates = sorted(r.event_date for r in touched if r.event_date is not None)
            if source == "orders":
                _refine_orders(spark, lake, classified.where("dedupe_status = 'new'"))
        audit(spark, lake, report, start, end)
    finally:
        remove_tree(cfg, lake.path("_staging", run_id))
    log.info("refined %s %s: %d new silver rows, %d duplicates, quarantined %s", source, report.window,
             report.new_rows, report.duplicates, report.quarantined)
    return report


def run_identity(spark: "SparkSession", cfg: Config, start: datetime | None = None, end: datetime | None = None,
                 run_id: str | None = None) -> dict:
    """Fold the window's silver rows into the identity graph and rebuild ``silver/identity_map``."""
    lake = Lake(cfg)
    run_id = run_id or new_run_id("refine-identity")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    try:
        return identity.run(spark, lake, start, end, run_id, now,
                            lambda df, name: lake.checkpoint(df, run_id, name), cfg.identity_max_links)
    finally:
        remove_tree(cfg, lake.path("_staging", run_id))


def run_all(spark: "SparkSession", cfg: Config, start: datetime | None = None, end: datetime | None = None,
            run_id: str | None = None) -> dict:
    """Every source, then identity and sessions, for one window: what ``rapport refine`` and the DAG run."""
    reports: dict = {s: run(spark, cfg, s, start, end, run_id and f"{run_id}-{s}") for s in MODULES}
    reports["identity"] = run_identity(spark, cfg, start, end, run_id and f"{run_id}-identity")
    reports["sessions"] = sessions.run(spark, Lake(cfg), reports["clickstream"].touched_dates)
    return reports
