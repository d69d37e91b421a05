"""What the marketing team watches: daily product trends, daily platform engagement, campaign performance.

- ``daily_product_trends`` (date, product): views, carts, orders, units, revenue, social
  likes/shares/mentions/pins, cart and conversion rates, views over 7 days against the 7
  before (``growth_7d``) and a ``trending`` flag with a rank.
- ``daily_platform_engagement`` (date, platform): interactions by type, unique actors,
  site visits the platform sent and their conversion, and the same 7-day growth/trending.
- ``campaign_performance`` (campaign, platform): scheduled or not, posted or not, with
  the current message or a stale one, interactions, site visits with the campaign's UTM,
  orders touched within 7 days of a social interaction and last-touch orders, and a
  ``consistency`` verdict: consistent, missing (scheduled, never posted), stale (posted
  an older message), silent (posted, no interaction) or unscheduled.

Trends are rebuilt for the dates new data touched (and the 7 days after, whose growth
depends on them); campaign performance is rebuilt whole (campaigns are few), its orders counted from
``gold.campaign_orders`` (``attribution``), which curate keeps per customer.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from jobs.lake import Lake
from schemas.vocabulary import PLATFORMS, PURCHASE_EVENTS, kept_order_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

TRENDING_GROWTH = 0.25  # at least 25% more than the previous 7 days
TRENDING_MIN_VOLUME = 10  # and enough volume that the growth means something
ATTRIBUTION_DAYS = 7


def with_growth(daily: "DataFrame", key: str, measure: str) -> "DataFrame":
    """Add <measure>_7d, <measure>_prev_7d, growth_7d, trending and trend_rank over a date-complete frame."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy(key).orderBy(F.unix_date("date"))  # a range frame over whole days
    d7 = F.sum(measure).over(w.rangeBetween(-6, 0))
    prev = F.sum(measure).over(w.rangeBetween(-13, -7))
    out = (daily.withColumn(f"{measure}_7d", d7).withColumn(f"{measure}_prev_7d", F.coalesce(prev, F.lit(0)))
           .withColumn("growth_7d", F.when(F.col(f"{measure}_prev_7d") > 0, F.round(
               F.col(f"{measure}_7d") / F.col(f"{measure}_prev_7d") - 1, 4))))
    out = out.withColumn("trending", F.coalesce((F.col("growth_7d") >= TRENDING_GROWTH) &
                                                (F.col(f"{measure}_7d") >= TRENDING_MIN_VOLUME), F.lit(False)))
    rank = F.when(F.col("trending"), F.row_number().over(
        Window.partitionBy("date", "trending").orderBy(F.desc("growth_7d"), F.desc(f"{measure}_7d"), key)))
    return out.withColumn("trend_rank", rank)


def product_daily(lake: Lake, lo: date | None, hi: date | None) -> "DataFrame":
    from pyspark.sql import functions as F

    def between(col: str) -> str:
        return "TRUE" if lo is None else f"{col} BETWEEN DATE'{lo}' AND DATE'{hi}'"

    ev = lake.read_or_empty("silver.clickstream_events").where(
        f"NOT is_bot AND product_id IS NOT NULL AND {between('event_date')}")
    web = ev.groupBy(F.col("event_date").alias("date"), "product_id").agg(
        F.sum(F.when(F.col("event") == "Product Viewed", 1).otherwise(0)).alias("views"),
        F.sum(F.when(F.col("event") == "Product Added", 1).otherwise(0)).alias("carts"))
    lines = lake.read_or_empty("silver.order_lines").where(
        f"{kept_order_sql()} AND {between('created_date')}")
    sold = lines.groupBy(F.col("created_date").alias("date"), "product_id").agg(
        F.countDistinct("order_id").alias("orders"), F.sum("quantity").alias("units"),
        F.sum("line_total").alias("revenue"))
    soc = lake.read_or_empty("silver.social_interactions").where(
        f"product_id IS NOT NULL AND {between('event_date')}")
    social = soc.groupBy(F.col("event_date").alias("date"), "product_id").agg(
        *[F.sum(F.when(F.col("interaction_type").isin(*types), 1).otherwise(0)).alias(name) for name, types in (
            ("social_likes", ("like",)), ("social_shares", ("share",)), ("social_mentions", ("mention", "comment")),
            ("social_pins", ("pin", "repin")))])
    daily = web.join(sold, ["date", "product_id"], "full").join(social, ["date", "product_id"], "full").na.fill(0)
    return daily


def product_trends(lake: Lake, lo: date | None, hi: date | None) -> "DataFrame":
    from pyspark.sql import functions as F

    base_lo = None if lo is None else lo - timedelta(days=13)
    daily = product_daily(lake, base_lo, hi)
    products = lake.read_or_empty("silver.products").select("product_id", "title", "category")
    out = with_growth(daily, "product_id", "views").join(products, "product_id", "left")
    out = out.withColumn("cart_rate", F.when(F.col("views") > 0, F.round(F.col("carts") / F.col("views"), 4))).withColumn(
        "conversion_rate", F.when(F.col("views") > 0, F.round(F.col("orders") / F.col("views"), 4)))
    return out if lo is None else out.where(f"date BETWEEN DATE'{lo}' AND DATE'{hi}'")


def platform_trends(lake: Lake, lo: date | None, hi: date | None) -> "DataFrame":
    from pyspark.sql import functions as F

    base_lo = None if lo is None else lo - timedelta(days=13)
    where = "TRUE" if lo is None else f"{{c}} BETWEEN DATE'{base_lo}' AND DATE'{hi}'"
    soc = lake.read_or_empty("silver.social_interactions").where(where.format(c="event_date"))
    types = ("like", "comment", "share", "mention", "review", "check_in", "follow", "story_view")
    inter = soc.groupBy(F.col("event_date").alias("date"), "platform").agg(
        F.count("*").alias("interactions"), F.countDistinct("actor_id_hash").alias("unique_actors"),
        F.sum(F.when(F.col("interaction_type").isin("pin", "repin"), 1).otherwise(0)).alias("pins"),
        *[F.sum(F.when(F.col("interaction_type") == t, 1).otherwise(0)).alias(f"{t}s") for t in types])
    platform_of = "CASE " + " ".join(
        f"WHEN lower(utm_source) = '{p}' OR referrer_host LIKE '%{'t.co' if p == 'x' else p}%' THEN '{p}'" for p in PLATFORMS
    ) + " END"
    sessions = lake.read_or_empty("silver.sessions").where(where.format(c="session_date"))
    visits = (sessions.withColumn("platform", F.expr(platform_of)).where("platform IS NOT NULL")
              .groupBy(F.col("session_date").alias("date"), "platform")
              .agg(F.count("*").alias("visits"), F.sum(F.col("converted").cast("int")).alias("converted_visits")))
    daily = inter.join(visits, ["date", "platform"], "full").na.fill(0)
    out = with_growth(daily, "platform", "interactions").withColumn(
        "visit_conversion_rate", F.when(F.col("visits") > 0, F.round(F.col("converted_visits") / F.col("visits"), 4)))
    return out if lo is None else out.where(f"date BETWEEN DATE'{lo}' AND DATE'{hi}'")


def attribution(rows: "DataFrame") -> "DataFrame":
    """``gold.campaign_orders`` of timeline rows (``customer_key``, ``occurred_at``, ``channel``, ``campaign``,
    ``platform``, ``event_type``, ``order_id``): each order and each campaign-platform whose social interaction by
    the same customer came in the ``ATTRIBUTION_DAYS`` before it, with the latest such interaction. Pure, and per
    customer: the rows of some customers give exactly their orders' rows."""
    from pyspark.sql import functions as F

    touches = rows.where("channel = 'social' AND campaign IS NOT NULL").select(
        "customer_key", F.col("occurred_at").alias("touch_at"), F.col("campaign").alias("campaign_id"), "platform",
        F.to_date("occurred_at").alias("_day"))
    # each purchase meets only the touches of its customer on the days its attribution window spans (an equi-join
    # on customer and day, not every touch of a customer against every purchase)
    buys = rows.where(F.col("event_type").isin(*PURCHASE_EVENTS) & F.col("order_id").isNotNull()).select(
        "customer_key", "order_id", F.col("occurred_at").alias("buy_at"),
        F.explode(F.sequence(F.date_sub(F.to_date("occurred_at"), ATTRIBUTION_DAYS), F.to_date("occurred_at"))).alias("_day"))
    return (touches.join(buys, ["customer_key", "_day"])
            .where(f"touch_at <= buy_at AND touch_at >= buy_at - INTERVAL {ATTRIBUTION_DAYS} DAYS")
            .groupBy("customer_key", "order_id", "campaign_id", "platform")
            .agg(F.max("touch_at").alias("touch_at"), F.max("buy_at").alias("buy_at")))


def attribute_all(lake: Lake, identity: "DataFrame | None" = None) -> None:
    """``gold.campaign_orders`` from every interaction (under ``identity``, else the current map): a full curate, or
    the first on a lake from before the table."""
    from jobs.gold.timeline import attributed

    lake.snapshot("gold.campaign_orders", attribution(attributed(lake, identity)))


def campaign_performance(lake: Lake, orders: "DataFrame") -> "DataFrame":
    """``gold.campaign_performance`` from silver and the attributed orders (``gold.campaign_orders``)."""
    from pyspark.sql import functions as F

    campaigns = lake.read_or_empty("silver.campaigns")
    posts = lake.read_or_empty("silver.campaign_posts")
    scheduled = campaigns.select("campaign_id", "utm_campaign", F.col("message_id").alias("campaign_message"),
                                 F.explode("platforms").alias("platform")).withColumn("scheduled", F.lit(True))
    posted = posts.groupBy("campaign_id", "platform").agg(F.max("message_id").alias("post_message_id"),
                                                          F.min("published_at").alias("published_at"))
    grid = scheduled.join(posted, ["campaign_id", "platform"], "full").join(
        campaigns.select("campaign_id", F.col("utm_campaign").alias("_utm"), F.col("message_id").alias("_msg")),
        "campaign_id", "left")
    grid = grid.select("campaign_id", "platform", F.coalesce("utm_campaign", "_utm").alias("utm_campaign"),
                       F.coalesce("campaign_message", "_msg").alias("campaign_message"),
                       F.coalesce("scheduled", F.lit(False)).alias("scheduled"), "post_message_id", "published_at")
    from jobs.gold.timeline import with_campaigns

    social = with_campaigns(lake.read_or_empty("silver.social_interactions"), posts).where("campaign_id IS NOT NULL")
    drew = social.groupBy("campaign_id", "platform").agg(
        F.count("*").alias("interactions"), F.countDistinct("actor_id_hash").alias("unique_actors"),
        F.max("occurred_at").alias("last_interaction_at"))
    sessions = lake.read_or_empty("silver.sessions").where("utm_campaign IS NOT NULL")
    visits = sessions.groupBy(F.col("utm_campaign"), F.lower("utm_source").alias("platform")).agg(
        F.count("*").alias("site_visits"), F.sum(F.col("converted").cast("int")).alias("visit_orders"))
    touched = orders.groupBy("campaign_id", "platform").agg(F.countDistinct("order_id").alias("orders_within_7d"))
    # an order's last touch: its latest interaction over every campaign and platform (ties to the greatest campaign)
    last = (orders.groupBy("order_id").agg(F.max(F.struct("touch_at", "campaign_id", "platform")).alias("t"))
            .groupBy(F.col("t.campaign_id").alias("campaign_id"), F.col("t.platform").alias("platform"))
            .agg(F.count("*").alias("last_touch_orders")))
    out = (grid.join(drew, ["campaign_id", "platform"], "left").join(visits, ["utm_campaign", "platform"], "left")
           .join(touched, ["campaign_id", "platform"], "left").join(last, ["campaign_id", "platform"], "left"))
    for c in ("interactions", "unique_actors", "site_visits", "visit_orders", "orders_within_7d", "last_touch_orders"):
        out = out.withColumn(c, F.coalesce(c, F.lit(0)))
    consistency = (F.when(~F.col("scheduled"), "unscheduled")
                   .when(F.col("post_message_id").isNull(), "missing")
                   .when(F.col("post_message_id") != F.col("campaign_message"), "stale")
                   .when(F.col("interactions") == 0, "silent")
                   .otherwise("consistent"))
    return out.withColumn("posted", F.col("post_message_id").isNotNull()).withColumn("consistency", consistency)
