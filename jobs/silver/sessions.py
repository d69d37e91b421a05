"""Web/app sessions from clickstream events → ``silver/sessions``.

Contract
- Per device (``anonymous_id``), events ordered by corrected ``event_time``. A session
  starts on a device's first event, after 30 minutes without events, or when an event
  carries a UTM campaign other than the device's last one; no session is longer than 24 hours.
- Bots are left out. Columns: landing page, source (referrer host, UTM), pages, events,
  duration, converted (an ``Order Completed`` in it), order ids.
- Incremental: a run recomputes the sessions of the dates its new events touched (one
  day either side, for sessions that cross midnight) and replaces those dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.pipeline.report import Report
from jobs.pipeline.run_id import RunId
from jobs.pipeline.window import Window

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

GAP_MINUTES = 30
MAX_HOURS = 24


def sessionize(events: "DataFrame") -> "DataFrame":
    """Sessions of the given (valid) clickstream events. Pure."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ev = events.where("NOT is_bot AND anonymous_id IS NOT NULL")
    w = Window.partitionBy("anonymous_id").orderBy("event_time", "message_id")
    before = w.rowsBetween(Window.unboundedPreceding, -1)
    ev = (ev.withColumn("_prev", F.lag("event_time").over(w))
          .withColumn("_prev_campaign", F.last("utm_campaign", ignorenulls=True).over(before))
          .withColumn("_new", F.expr(
              f"_prev IS NULL OR event_time > _prev + INTERVAL {GAP_MINUTES} MINUTES OR "
              "(utm_campaign IS NOT NULL AND utm_campaign <> coalesce(_prev_campaign, ''))").cast("int"))
          .withColumn("_gap_session", F.sum("_new").over(w.rowsBetween(Window.unboundedPreceding, 0))))
    # the gap session's first time, carried forward in the same running window: a min over the whole
    # (anonymous_id, _gap_session) partition made the engine hold every event of the window in memory, outside its
    # pool (9.2 GiB at 5M events with a 3 GiB pool; 4.0 GiB so)
    ev = ev.withColumn("_gap_start", F.last(F.when(F.col("_new") == 1, F.unix_millis("event_time")), ignorenulls=True)
                       .over(w.rowsBetween(Window.unboundedPreceding, 0)))
    ev = ev.withColumn("_part", F.floor((F.unix_millis("event_time") - F.col("_gap_start")) / (MAX_HOURS * 3600 * 1000)))
    order_key = F.struct("event_time", "message_id")
    pages = F.when(F.col("type").isin("page", "screen"), F.struct("event_time", "message_id", "page_path"))
    s = ev.groupBy("anonymous_id", "_gap_session", "_part").agg(
        F.min("event_time").alias("session_start"),
        F.max("event_time").alias("session_end"),
        F.count("*").alias("events"),
        F.sum(F.when(F.col("type").isin("page", "screen"), 1).otherwise(0)).alias("pages"),
        F.sum(F.when(F.col("event") == "Product Viewed", 1).otherwise(0)).alias("products_viewed"),
        F.min(pages).alias("_landing"),
        # the latest signed-in event's user; not max_by, whose accumulator asked a bounded engine for 1 GB at once
        F.max(F.when(F.col("user_id").isNotNull(), F.struct(order_key, "user_id"))).alias("_user"),
        F.min(F.struct(order_key, "referrer_host")).alias("_ref"),  # the landing event's referrer, even if none
        F.min(F.when(F.col("utm_campaign").isNotNull(),
                     F.struct(order_key, "utm_source", "utm_medium", "utm_campaign", "utm_content"))).alias("_utm"),
        F.min(F.struct(order_key, "device_class")).alias("_device"),
        F.max(F.col("event") == "Order Completed").alias("converted"),
        F.sort_array(F.collect_set("order_id")).alias("order_ids"),
    )
    return s.select(
        F.sha2(F.concat_ws("|", "anonymous_id", F.col("session_start").cast("string")), 256).substr(1, 24).alias("session_id"),
        "anonymous_id", F.col("_user.user_id").alias("user_id"), "session_start", "session_end",
        ((F.unix_millis("session_end") - F.unix_millis("session_start")) / 1000).alias("duration_seconds"),
        "events", "pages", "products_viewed",
        F.col("_landing.page_path").alias("landing_page"),
        F.col("_ref.referrer_host").alias("referrer_host"),
        F.col("_utm.utm_source").alias("utm_source"), F.col("_utm.utm_medium").alias("utm_medium"),
        F.col("_utm.utm_campaign").alias("utm_campaign"), F.col("_utm.utm_content").alias("utm_content"),
        F.col("_device.device_class").alias("device_class"),
        F.coalesce("converted", F.lit(False)).alias("converted"), "order_ids",
        F.to_date("session_start").alias("session_date"),
    )


@dataclass
class SessionsReport(Report):
    dates: list[date] = field(default_factory=list)
    sessions: int = 0


def run(spark: "SparkSession", cfg: Config, window: Window, *, run_id: str | None = None) -> SessionsReport:
    """Recompute the sessions of the dates the window's events touched (one day either side, for sessions
    that cross midnight) and replace those dates."""
    lake = Lake(cfg, spark)
    report = SessionsReport("refine.sessions", run_id or str(RunId.new("refine-sessions")), window)
    if not lake.exists("silver.clickstream_events"):
        return report
    events = lake.read("silver.clickstream_events")
    touched = sorted(r.event_date for r in events.where(window.sql()).select("event_date").distinct().collect()
                     if r.event_date is not None)  # a listing of dates
    if not touched:
        return report
    lo, hi = min(touched) - timedelta(days=1), max(touched)
    around = events.where(f"event_date BETWEEN DATE'{lo - timedelta(days=1)}' AND DATE'{hi + timedelta(days=1)}'")
    where = f"session_date BETWEEN DATE'{lo}' AND DATE'{hi}'"
    lake.replace_partitions("silver.sessions", sessionize(around).where(where), where)
    report.dates, report.sessions = touched, lake.read("silver.sessions").where(where).count()
    return report
