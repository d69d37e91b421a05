"""The report's numbers: small aggregates of gold computed by the engine (a few hundred rows at most)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from jobs.gold import timeline
from jobs.gold.relationship import AT_RISK_DAYS, LAPSED_DAYS, RISK_WEEKS
from jobs.lake import Lake
from jobs.sql_text import in_list
from schemas.vocabulary import PLATFORMS, PURCHASE_EVENTS

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

LIFECYCLE = ("prospect", "engaged", "customer", "repeat", "advocate", "at_risk", "lapsed")
VERDICTS = ("missing", "stale", "silent", "consistent", "unscheduled")  # the order the report shows schemas.vocabulary.CONSISTENCY in
log = logging.getLogger(__name__)
TREND_DAYS = 28
FORTNIGHT = 14  # the newest dates whose median views make a typical day
WEEKS = RISK_WEEKS


@dataclass
class ReportData:
    as_of: date | None
    day: date | None  # the report's date: the latest day with trends, or the one asked for
    trending: "pd.DataFrame"
    categories: "pd.DataFrame"
    platforms_daily: "pd.DataFrame"
    platforms: "pd.DataFrame"
    campaigns: "pd.DataFrame"
    lifecycle: "pd.DataFrame"
    risk_weekly: "pd.DataFrame"
    cohorts: "pd.DataFrame"
    advocates: "pd.DataFrame"
    gates: "pd.DataFrame"
    quarantine: "pd.DataFrame"
    totals: dict = field(default_factory=dict)
    currency: str = "USD"


def _pd(df) -> "pd.DataFrame":
    return df.toPandas()


def gather(spark: "SparkSession", lake: Lake, day: date | None = None, currency: str = "USD",
           until: date | None = None) -> ReportData:
    """The numbers for ``day``, or for the latest day with product activity (up to ``until``, the last day the
    run's window reached)."""
    from pyspark.sql import functions as F

    trends = lake.read_or_empty("gold.daily_product_trends")
    if day is None:
        day = _latest_full_day(lake, trends, until)
    rel = lake.read_or_empty("gold.customer_relationship")
    as_of = rel.agg(F.max("as_of")).first()[0]
    since = (day - timedelta(days=TREND_DAYS - 1)) if day else None

    on_day = trends.where(F.col("date") == F.lit(day)) if day else None
    # the day's top products: trending ones first (by rank), then the most viewed, so a quiet day still shows some
    trending = _pd(on_day.orderBy(F.desc("trending"), F.asc_nulls_last("trend_rank"), F.desc("views_7d"), "product_id")
                   .select("trend_rank", "trending", "product_id", "title", "category", "views_7d", "views_prev_7d",
                           "growth_7d", "carts", "orders", "revenue", "social_mentions", "social_shares")
                   .limit(10)) if day else None
    if trending is not None:
        trending["row"] = range(1, len(trending) + 1)
    trending_count = on_day.where("trending").count() if day else 0
    categories = _pd(trends.where(F.col("date").between(F.lit(since), F.lit(day)))
                     .groupBy("date", F.coalesce("category", F.lit("(no catalogue)")).alias("category"))
                     .agg(F.sum("views").alias("views"), F.sum("orders").alias("orders"))
                     .orderBy("date", "category")) if day else None

    eng = lake.read_or_empty("gold.daily_platform_engagement")
    platforms_daily = _pd(eng.where(F.col("date").between(F.lit(since), F.lit(day)))
                          .select("date", "platform", "interactions", "visits", "converted_visits")
                          .orderBy("date", "platform")) if day else None
    platforms = _pd(eng.where(F.col("date").between(F.lit(since), F.lit(day))).groupBy("platform").agg(
        F.sum("interactions").alias("interactions"), F.sum("unique_actors").alias("actor_days"),
        F.sum("visits").alias("visits"), F.sum("converted_visits").alias("converted_visits"))) if day else None
    platforms = _influenced(spark, lake, platforms, since, day)

    campaigns = _pd(lake.read_or_empty("gold.campaign_performance").select(
        "campaign_id", "platform", "campaign_message", "post_message_id", "scheduled", "posted", "published_at",
        "interactions", "site_visits", "orders_within_7d", "consistency").orderBy("campaign_id", "platform"))
    if as_of is not None and len(campaigns):
        import pandas as pd

        published = pd.to_datetime(campaigns["published_at"])
        campaigns["days_live"] = [None if pd.isna(p) or c not in ("consistent", "silent") else
                                  max(0, (as_of - p.date()).days + 1) for p, c in zip(published, campaigns["consistency"])]

    lifecycle = _pd(rel.groupBy("lifecycle_stage").agg(F.count(F.lit(1)).alias("customers"),
                                                      F.sum("kept_orders").alias("orders"), F.sum("revenue").alias("revenue")))
    cohorts = _pd(rel.where("first_purchase_at IS NOT NULL").groupBy(
        F.date_format("first_purchase_at", "yyyy-MM").alias("cohort"),
        F.coalesce("acquisition_channel", F.lit("unknown")).alias("channel"),
        F.coalesce("acquisition_platform", F.lit("")).alias("platform"))
        .agg(F.count(F.lit(1)).alias("buyers"), F.sum(F.when(F.col("kept_orders") >= 2, 1).otherwise(0)).alias("repeat"))
        .orderBy("cohort", "channel", "platform"))
    advocates = _pd(rel.where("advocacy > 0").select(
        "customer_key", "preferred_platform", "advocacy", "reviews", "shares", "ugc", "kept_orders", "revenue",
        "lifecycle_stage").orderBy(F.desc("advocacy"), F.desc("revenue"), "customer_key").limit(10))
    risk = _risk_weekly(spark, lake, as_of)
    gates, quarantine, totals = _quality(lake)
    totals.update(customers=int(lifecycle["customers"].sum()) if len(lifecycle) else 0, trending=trending_count)
    return ReportData(as_of, day, trending, categories, platforms_daily, platforms, campaigns, lifecycle, risk,
                      cohorts, advocates, gates, quarantine, totals, currency)


def _latest_full_day(lake: Lake, trends, until: date | None) -> date | None:
    """The latest day with a full day's activity, up to ``until``: the last date whose product views reach half the
    median of the last fortnight's days (the newest date often holds only the first hours, or late stragglers).
    Only the newest 14 dates' partitions are read (the log names them), unless one of them holds no row."""
    from statistics import median

    from pyspark.sql import functions as F

    def newest(rows):
        return rows.groupBy("date").agg(F.sum("views").alias("v")).orderBy(F.desc("date")).limit(FORTNIGHT).collect()

    days = None
    if lake.exists("gold.daily_product_trends"):
        dates = sorted((d for d in lake.dates("gold.daily_product_trends") if until is None or d <= until),
                       reverse=True)[:FORTNIGHT]
        days = newest(trends.where(F.col("date").isin(dates))) if dates else []
        if len(days) < len(dates):  # a partition without rows: what the whole table says
            days = None
    if days is None:
        days = newest(trends.where(F.col("date") <= F.lit(until)) if until else trends)
    if not days:
        return None
    typical = median(r.v or 0 for r in days)
    return next((r.date for r in days if (r.v or 0) >= typical / 2), days[0].date)


def _influenced(spark: "SparkSession", lake: Lake, platforms, since: date | None, day: date | None):
    """Per platform: purchases (web, app, store) within 7 days after a social touch on it, and store purchases
    among them. Joined on the engine; only the per-platform counts come back."""
    if day is None or not lake.exists("gold.interactions"):
        return platforms
    timeline.attributed(lake).createOrReplaceTempView("_report_timeline")
    purchases = in_list(PURCHASE_EVENTS)
    rows = spark.sql(f"""
        WITH buys AS (SELECT customer_key, occurred_at, channel, order_id FROM _report_timeline
                      WHERE event_type IN ({purchases}) AND occurred_date BETWEEN DATE '{since}' AND DATE '{day}'),
             touches AS (SELECT customer_key, occurred_at, platform FROM _report_timeline
                         WHERE channel = 'social' AND occurred_date BETWEEN DATE '{since - timedelta(days=7)}' AND DATE '{day}')
        SELECT t.platform, count(DISTINCT b.order_id) AS influenced_orders,
               count(DISTINCT CASE WHEN b.channel = 'store' THEN b.order_id END) AS influenced_store_orders
        FROM buys b JOIN touches t ON t.customer_key = b.customer_key
          AND t.occurred_at <= b.occurred_at AND t.occurred_at >= b.occurred_at - INTERVAL 7 DAYS
        GROUP BY t.platform""").toPandas()
    spark.catalog.dropTempView("_report_timeline")
    out = platforms.merge(rows, on="platform", how="outer").fillna(0)
    order = {p: i for i, p in enumerate(PLATFORMS)}
    return out.sort_values("platform", key=lambda s: s.map(lambda p: order.get(p, 99))).reset_index(drop=True)


def _risk_weekly(spark: "SparkSession", lake: Lake, as_of: date | None):
    """At-risk and lapsed buyers at each of the last weeks' ends, by the lifecycle rules (jobs.gold.relationship).

    A buyer (a customer with a purchase on or before the week's end) is lapsed at a week's end when nothing of theirs
    happened in the ``LAPSED_DAYS`` before it, and at risk when the last thing did more than ``AT_RISK_DAYS`` before.
    Read from ``gold.customer_facts`` alone, whatever the lake's age: each customer's ``active_dates`` hold the days
    they were active on as far back as the earliest week can look (``relationship.ACTIVE_DAYS``)."""
    import pandas as pd
    from pyspark.sql import functions as F

    empty = pd.DataFrame(columns=["week", "lapsed", "at_risk", "buyers"])
    if as_of is None or not lake.exists("gold.customer_facts"):
        return empty
    facts = lake.read("gold.customer_facts")
    if "active_dates" not in facts.columns:
        log.warning("gold.customer_facts is an earlier release's: the weekly at-risk panel is left out until the next "
                    "rapport curate rebuilds it")
        return empty
    weeks = spark.createDataFrame([(as_of - timedelta(days=7 * i),) for i in range(WEEKS)], "week date")
    buyers = facts.where("first_purchase_at IS NOT NULL").select(
        "customer_key", F.to_date("first_purchase_at").alias("first_buy"), "active_dates")
    active = buyers.select("customer_key", "first_buy", F.explode("active_dates").alias("occurred_date"))
    last = (weeks.join(active, (F.col("first_buy") <= F.col("week")) & (F.col("occurred_date") <= F.col("week"))
                       & (F.col("occurred_date") >= F.date_sub(F.col("week"), LAPSED_DAYS)))
            .groupBy("week", "customer_key").agg(F.max("occurred_date").alias("last_seen")))
    recent = last.groupBy("week").agg(
        F.count(F.lit(1)).alias("recent"),
        F.sum(F.when(F.datediff("week", "last_seen") > AT_RISK_DAYS, 1).otherwise(0)).alias("at_risk"))
    every = weeks.join(buyers, F.col("first_buy") <= F.col("week")).groupBy("week").agg(F.count(F.lit(1)).alias("buyers"))
    rows = (every.join(recent, "week", "left").select(
        "week", F.coalesce("at_risk", F.lit(0)).alias("at_risk"),
        (F.col("buyers") - F.coalesce("recent", F.lit(0))).alias("lapsed"), "buyers").orderBy("week").toPandas())
    return rows[["week", "lapsed", "at_risk", "buyers"]]


def _quality(lake: Lake):
    """The latest gate of each layer (tables passed of those checked) and the quarantined share by reason."""
    import pandas as pd
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    gates = pd.DataFrame(columns=["layer", "checked_at", "tables", "passed", "failed", "not_applicable"])
    if lake.exists("ops.quality_gates"):
        g = lake.read("ops.quality_gates")
        latest = g.withColumn("_r", F.row_number().over(W.partitionBy("layer").orderBy(F.desc("checked_at")))) \
            .where("_r = 1").select("layer", "run_id")
        gates = (g.join(latest, ["layer", "run_id"]).groupBy("layer").agg(
            F.max("checked_at").alias("checked_at"), F.count(F.lit(1)).alias("tables"),
            F.sum(F.when(F.col("status") == "passed", 1).otherwise(0)).alias("passed"),
            F.sum(F.when(F.col("status") == "failed", 1).otherwise(0)).alias("failed"),
            F.sum(F.when(F.col("status") == "not_applicable", 1).otherwise(0)).alias("not_applicable"))
            .orderBy("layer").toPandas())
    quarantine = pd.DataFrame(columns=["reason", "rows"])
    totals = {"landed": 0, "quarantined": 0}
    if lake.exists("ops.quarantine"):
        quarantine = (lake.read("ops.quarantine").groupBy("reason").agg(F.count(F.lit(1)).alias("rows"))
                      .orderBy(F.desc("rows"), "reason").toPandas())
        totals["quarantined"] = int(quarantine["rows"].sum())
    if lake.exists("ops.ingest_log"):
        totals["landed"] = int(lake.read("ops.ingest_log").agg(F.sum("lines")).first()[0] or 0)
    return gates, quarantine, totals
