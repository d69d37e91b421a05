"""Web/app sessions from clickstream events → ``silver/sessions``.

Contract
- Per device (``anonymous_id``), events ordered by corrected ``event_time``. A session
  starts on a device's first event, after 30 minutes without events, or when an event
  carries a UTM campaign other than the device's last one; no session is longer than 24 hours.
- Bots are left out. Columns: landing page, source (referrer host, UTM), pages, events,
  duration, converted (an ``Order Completed`` in it), order ids.
- Incremental: a run recomputes the sessions of the devices its new events came from, on the dates those events
  touched (one day either side, for sessions that cross midnight), from those devices' events; the other devices'
  sessions of those dates stay as they were (a device's sessions depend on its events only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from jobs.runs.window import Window
from jobs.storage import remove_tree

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
    ev = (ev.withColumn("_seq", F.row_number().over(w))
          .withColumn("_prev", F.lag("event_time").over(w))
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
    # Each session's figures in one aggregation. Its first and last values are found by ``_seq``, the device's event
    # order as a number, with ``min_by``/``max_by`` (a null order is skipped, a null value kept): a min over structs
    # kept every session in memory (docs/sail-gaps.md, gap 9), and a running window per figure, read at the
    # session's last event, cost 0.3-0.5 s per million events each (twelve of them: 12 s at 1.1M events, now 3 s)
    page = F.col("type").isin("page", "screen")
    s = ev.groupBy("anonymous_id", "_gap_session", "_part").agg(
        F.min("event_time").alias("session_start"),
        F.max("event_time").alias("session_end"),
        F.count(F.lit(1)).alias("events"),
        F.sum(page.cast("int")).cast("long").alias("pages"),
        F.sum((F.col("event") == "Product Viewed").cast("int")).cast("long").alias("products_viewed"),
        F.min_by("page_path", F.when(page, F.col("_seq"))).alias("landing_page"),  # its path may be null
        F.max_by("user_id", F.when(F.col("user_id").isNotNull(), F.col("_seq"))).alias("user_id"),  # the latest signed-in
        F.min_by("referrer_host", "_seq").alias("referrer_host"),  # the landing event's referrer, even if none
        F.min_by(F.struct("utm_source", "utm_medium", "utm_campaign", "utm_content"),
                 F.when(F.col("utm_campaign").isNotNull(), F.col("_seq"))).alias("_utm"),
        F.min_by("device_class", "_seq").alias("device_class"),
        F.max((F.col("event") == "Order Completed").cast("int")).alias("_converted"),
        # [] when no event has one (a group-by's collect_set gives it; a window's gave NULL, gap 10)
        F.coalesce(F.sort_array(F.collect_set("order_id")), F.array().cast("array<string>")).alias("order_ids"),
    )
    return s.select(
        F.sha2(F.concat_ws("|", "anonymous_id", F.col("session_start").cast("string")), 256).substr(1, 24).alias("session_id"),
        "anonymous_id", "user_id", "session_start", "session_end",
        ((F.unix_millis("session_end") - F.unix_millis("session_start")) / 1000).alias("duration_seconds"),
        "events", "pages", "products_viewed", "landing_page",
        "referrer_host",
        F.col("_utm.utm_source").alias("utm_source"), F.col("_utm.utm_medium").alias("utm_medium"),
        F.col("_utm.utm_campaign").alias("utm_campaign"), F.col("_utm.utm_content").alias("utm_content"),
        "device_class", F.coalesce(F.col("_converted") == 1, F.lit(False)).alias("converted"), "order_ids",
        F.to_date("session_start").alias("session_date"),
    )


@dataclass
class SessionsReport(Report):
    dates: list[date] = field(default_factory=list)
    sessions: int = 0


def run(spark: "SparkSession", cfg: Config, window: Window, *, run_id: str | None = None) -> SessionsReport:
    """Recompute the sessions of the devices the window's events came from, on the dates those events touched (one
    day either side, for sessions that cross midnight), and replace those dates. Per device: a day's events bring a
    few late ones for earlier dates, and recomputing every device's sessions of every date a late event touched
    read five days of events to change one (1.1 s of a young lake's daily run; 0.5 s so)."""
    lake = Lake(cfg, spark)
    report = SessionsReport("refine.sessions", run_id or str(RunId.new("refine-sessions")), window)
    if not lake.exists("silver.clickstream_events"):
        return report
    try:
        _sessions(lake, window, report)
    finally:
        remove_tree(cfg, lake.staging(report.run_id))
    return report


def _sessions(lake: Lake, window: Window, report: SessionsReport) -> None:
    from pyspark.sql import functions as F

    events = lake.read("silver.clickstream_events")
    # the window's devices and dates, read once (the window's rows are found by their landing hour, in every
    # event-date partition): few rows
    seen = lake.checkpoint(events.where(window.sql()).where("event_date IS NOT NULL").select(
        "anonymous_id", "event_date", F.expr("anonymous_id IS NOT NULL AND NOT coalesce(is_bot, true)").alias("_human"))
        .distinct(), report.run_id, "seen")
    report.dates = sorted(r.event_date for r in seen.select("event_date").distinct().collect())  # a listing of dates
    # each device's touched dates: its first date less a day, its last date
    devices = seen.where("_human").groupBy("anonymous_id").agg(F.date_sub(F.min("event_date"), 1).alias("_lo"),
                                                               F.max("event_date").alias("_hi"))
    span = devices.agg(F.min("_lo").alias("lo"), F.max("_hi").alias("hi")).first()  # one row
    if span.lo is None:
        return
    lo, hi = span.lo, span.hi
    where = f"session_date BETWEEN DATE'{lo}' AND DATE'{hi}'"
    around = (events.where(f"event_date BETWEEN DATE'{lo - timedelta(days=1)}' AND DATE'{hi + timedelta(days=1)}'")
              .join(devices, "anonymous_id")
              .where("event_date BETWEEN date_sub(_lo, 1) AND date_add(_hi, 1)").drop("_lo", "_hi"))
    fresh = (sessionize(around).join(devices, "anonymous_id")
             .where("session_date BETWEEN _lo AND _hi").drop("_lo", "_hi"))
    if lake.exists("silver.sessions"):  # the other devices' sessions of those dates, and theirs on other dates
        stored = lake.read("silver.sessions").where(where)
        kept = (stored.join(devices, "anonymous_id", "left")
                .where("_lo IS NULL OR NOT (session_date BETWEEN _lo AND _hi)").select(*stored.columns))
        fresh = kept.unionByName(fresh.select(*stored.columns))
    lake.replace_partitions("silver.sessions", fresh, where)
    report.sessions = lake.read("silver.sessions").where(where).count()
