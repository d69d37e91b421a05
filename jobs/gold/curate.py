"""Curate: silver → gold for one landing window (incremental) or everything (``full``).

Contract
- Incremental (default): the customers touched by the window's new silver rows — and
  every customer whose identity changed since their timeline was built (merges,
  splits, newly shared devices), and every customer on either side of a session that
  refine cut anew or that changed hands — get their whole timeline rebuilt and MERGEd; their
  facts likewise. Trends are rebuilt for the dates the window touched and the 7 days
  after. Relationship scores and campaign performance are rebuilt whole (small).
- Full: every table rebuilt from silver. Incremental and full give identical tables.
- ``as_of`` (for recency and lifecycle) defaults to the day after the newest interaction.
- Every gold table is registered by name (``gold.customer_timeline`` …).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from jobs import catalog
from jobs.bronze.ingest import new_run_id
from jobs.config import Config
from jobs.gold import relationship, timeline, trends
from jobs.lake import Lake
from jobs.silver.common import window_sql
from jobs.storage import remove_tree

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


@dataclass
class CurateReport:
    full: bool
    customers_rebuilt: int = 0
    timeline_rows: int = 0
    customers: int = 0
    dates: list[date] = field(default_factory=list)
    as_of: date | None = None


def _touched_keys(spark: "SparkSession", lake: Lake, identity: "DataFrame", start, end) -> "DataFrame":
    """Customer keys with new silver rows in the window, plus keys whose identifiers moved."""
    from pyspark.sql import functions as F

    where = window_sql(start, end)
    new_ids = []
    clicks = lake.path("silver", "clickstream_events")
    if lake.exists(clicks):  # every event, not only timeline events: any of them can change a session
        ev = lake.read(spark, clicks).where(f"{where} AND NOT is_bot")
        new_ids.append(ev.selectExpr("concat('anon:', anonymous_id) AS identifier").unionByName(
            ev.where("user_id IS NOT NULL").selectExpr("concat('user:', user_id) AS identifier")))
    for table, to_rows in (("social_interactions", timeline.social_rows), ("order_status_history", timeline.order_rows)):
        path = lake.path("silver", table)
        if lake.exists(path):
            new_ids.append(to_rows(lake.read(spark, path).where(where)).select("identifier"))
    ids = new_ids[0]
    for n in new_ids[1:]:
        ids = ids.unionByName(n)
    keys = ids.distinct().join(identity.where("NOT is_shared"), "identifier").select("customer_key")
    path = lake.path("gold", "customer_timeline")
    if lake.exists(path):
        built = lake.read(spark, path).select("identifier", F.col("customer_key").alias("built_key")).distinct()
        now = identity.select("identifier", "customer_key", "is_shared")
        moved = built.join(now, "identifier", "left").where(
            "customer_key IS NULL OR customer_key <> built_key OR is_shared")
        keys = (keys.unionByName(moved.select(F.col("built_key").alias("customer_key")))
                .unionByName(moved.where("customer_key IS NOT NULL AND NOT is_shared").select("customer_key")))
        recut = _recut_sessions(spark, lake, identity, where)
        if recut is not None:
            keys = keys.unionByName(recut)
    return keys.distinct()


def _recut_sessions(spark: "SparkSession", lake: Lake, identity: "DataFrame", where: str) -> "DataFrame | None":
    """Keys of the customers on either side of a session that changed hands or was cut anew.

    Refine recomputes every device's sessions on the dates the window's events touched, so a session
    can change its user (someone else logged in later in it), split or merge while its old customer
    had no event in the window. Compares the timeline's session rows with silver's on those dates.
    """
    from pyspark.sql import functions as F

    clicks, sessions = lake.path("silver", "clickstream_events"), lake.path("silver", "sessions")
    if not (lake.exists(clicks) and lake.exists(sessions)):
        return None
    span = lake.read(spark, clicks).where(where).selectExpr("min(event_date) AS lo", "max(event_date) AS hi").first()
    if span.lo is None:
        return None
    dates = f"BETWEEN DATE'{span.lo - timedelta(days=2)}' AND DATE'{span.hi + timedelta(days=1)}'"
    now = (timeline.session_rows(lake.read(spark, sessions).where(f"session_date {dates}"))
           .select("source_key", F.col("identifier").alias("now_id")))
    built = (lake.read(spark, lake.path("gold", "customer_timeline"))
             .where(f"source_table = 'sessions' AND occurred_date {dates}")
             .select("source_key", F.col("identifier").alias("built_id"), F.col("customer_key").alias("built_key")))
    changed = built.join(now, "source_key", "full_outer").where(
        "built_id IS NULL OR now_id IS NULL OR built_id <> now_id")
    new_keys = (changed.where("now_id IS NOT NULL").select(F.col("now_id").alias("identifier"))
                .join(identity.where("NOT is_shared"), "identifier").select("customer_key"))
    return changed.where("built_key IS NOT NULL").select(F.col("built_key").alias("customer_key")).unionByName(new_keys)


def _touched_dates(spark: "SparkSession", lake: Lake, start, end) -> list[date]:
    where = window_sql(start, end)
    dates: set[date] = set()
    for table, col in (("clickstream_events", "event_date"), ("social_interactions", "event_date"),
                       ("order_status_history", "to_date(created_at)")):
        path = lake.path("silver", table)
        if lake.exists(path):
            dates |= {r.d for r in spark.sql(f"SELECT DISTINCT {col} AS d FROM delta.`{path}` WHERE {where}").collect()
                      if r.d is not None}
    return sorted(dates)


def _write_by_date(df: "DataFrame", lake: Lake, name: str, lo: date | None, hi: date | None) -> None:
    path = lake.path("gold", name)
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true").partitionBy("date")
    if lo is not None and lake.exists(path):
        writer = writer.option("replaceWhere", f"date BETWEEN DATE'{lo}' AND DATE'{hi}'")
    writer.save(path)


def run(spark: "SparkSession", cfg: Config, start: datetime | None = None, end: datetime | None = None,
        full: bool = False, as_of: date | None = None, run_id: str | None = None) -> CurateReport:
    lake = Lake(cfg)
    run_id = run_id or new_run_id("curate")
    try:
        return _run(spark, cfg, lake, start, end, full, as_of, run_id)
    finally:
        remove_tree(cfg, lake.path("_staging", run_id))


def _run(spark: "SparkSession", cfg: Config, lake: Lake, start, end, full: bool, as_of: date | None,
         run_id: str) -> CurateReport:
    report = CurateReport(full=full)
    identity = lake.require(spark, "silver", "identity_map")
    rows = timeline.attribute(timeline.interactions(spark, lake), identity)
    keys = None if full or not lake.exists(lake.path("gold", "customer_timeline")) else _touched_keys(
        spark, lake, identity, start, end)
    if keys is not None:
        # fixed now: evaluated after the timeline is rewritten, it would no longer see the keys that moved
        keys = lake.checkpoint(keys, run_id, "touched-keys")
        rows = rows.join(keys, "customer_key")
    built = lake.checkpoint(timeline.sequence(rows), run_id, "timeline")
    timeline.write(spark, lake, built, keys)
    report.customers_rebuilt = built.select("customer_key").distinct().count()

    orders = lake.require(spark, "silver", "orders")
    tl = lake.require(spark, "gold", "customer_timeline")
    mine = tl.join(keys, "customer_key") if keys is not None else tl
    lake.replace_for_keys(spark, relationship.facts(mine, orders), lake.path("gold", "customer_facts"), keys,
                          "customer_key", ("customer_key",))
    if as_of is None:
        newest = tl.selectExpr("max(occurred_at) AS m").first().m
        as_of = (newest.date() + timedelta(days=1)) if newest else date.today()
    report.as_of = as_of
    scored = relationship.score(lake.require(spark, "gold", "customer_facts"), as_of)
    scored.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
        lake.path("gold", "customer_relationship"))

    if full or keys is None:
        lo = hi = None
    else:
        report.dates = _touched_dates(spark, lake, start, end)
        lo, hi = (report.dates[0], report.dates[-1] + timedelta(days=7)) if report.dates else (None, None)
    if full or keys is None or report.dates:
        _write_by_date(trends.product_trends(spark, lake, lo, hi), lake, "daily_product_trends", lo, hi)
        _write_by_date(trends.platform_trends(spark, lake, lo, hi), lake, "daily_platform_engagement", lo, hi)
    trends.campaign_performance(spark, lake, tl).write.format("delta").mode("overwrite").option(
        "overwriteSchema", "true").save(lake.path("gold", "campaign_performance"))

    report.timeline_rows = tl.count()
    report.customers = lake.require(spark, "gold", "customer_relationship").count()
    catalog.register(spark, cfg)
    log.info("curated: %s", report)
    return report
