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
depends on them); campaign performance recounts the campaigns whose interactions or visits changed, each from
its first one (``recount``: a day reads the weeks its campaigns ran, not the lake's history), its orders counted
from ``gold.campaign_orders`` (``attribution``), which curate keeps per customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from jobs.gold.changes import partition_dates
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


def campaign_performance(lake: Lake, orders: "DataFrame", scope: "Recount | None" = None) -> "DataFrame":
    """``gold.campaign_performance`` from silver and the attributed orders (``gold.campaign_orders``).

    ``scope`` (``recount``): only the campaigns and UTM names whose social interactions or site visits can have
    changed since the last curate are recounted, each from its first interaction or visit on; the others keep
    their stored counts. Campaigns last days, so a day's recount reads the weeks its campaigns ran, not the
    lake's year. None: everything counted."""
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
    drew, visits = _counts(lake, posts, scope)
    touched, last = _order_counts(orders, scope)
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


DREW = ("interactions", "unique_actors", "first_interaction_at", "last_interaction_at")
VISITS = ("site_visits", "visit_orders", "first_visit_at", "last_visit_at")


@dataclass(frozen=True)
class Recount:
    """What a curate recounts of campaign performance: these campaigns' interactions, from ``social_from`` on, these
    UTM names' visits, from ``visits_from`` on, and the attributed orders of ``attributed`` (None: of every
    campaign); the rest of ``stored`` is kept."""
    stored: "DataFrame"
    campaigns: tuple[str, ...]
    social_from: date | None
    utms: tuple[str, ...]
    visits_from: date | None
    attributed: tuple[str, ...] | None = None


def recount(lake: Lake, previous: dict[str, int] | None, attributed: tuple[str, ...] | None = None) -> Recount | None:
    """The campaigns and UTM names whose counts can have changed since the last curate read the silver versions
    ``previous`` (its ``reference_versions``), and the earliest date each kind can have a row on; None when
    everything is to be counted (no stored counts, the campaigns or their posts changed, or what was read is not
    known). ``attributed``: the campaigns whose rows of ``gold.campaign_orders`` this curate replaced (None: not
    known, all recounted).

    Exact: a social interaction or session that changed since is in a partition changed since the version read,
    so on or after the earliest such date (``since``). A campaign (UTM name) is recounted if it has rows on or
    after ``since`` now, or had when last counted (its stored last interaction or visit is on or after
    ``since``). Any other keeps its stored counts: all its rows were and are before ``since``, in partitions
    unchanged since they were counted. A recounted one is read from the earlier of ``since`` and its stored first
    interaction (visit): every row it has now is either unchanged since it was counted, so not before that first
    one, or changed, so not before ``since``."""
    from jobs.gold.timeline import with_campaigns

    stored = _stored_counts(lake, previous)
    if stored is None:
        return None
    social_since = _since(lake, "silver.social_interactions", previous)
    sessions_since = _since(lake, "silver.sessions", previous)
    if social_since is None or sessions_since is None:
        return None
    posts = lake.read_or_empty("silver.campaign_posts")
    campaigns, social_from = _changed_keys(
        lake.read_or_empty("silver.social_interactions"), lambda d: with_campaigns(d, posts), "event_date",
        social_since, stored, "campaign_id", "first_interaction_at", "last_interaction_at")
    utms, visits_from = _changed_keys(
        lake.read_or_empty("silver.sessions"), lambda d: d, "session_date", sessions_since, stored, "utm_campaign",
        "first_visit_at", "last_visit_at")
    return Recount(stored, campaigns, social_from, utms, visits_from, attributed)


def _changed_keys(rows: "DataFrame", attribute, partition: str, since: date, stored: "DataFrame", key: str,
                  first: str, last: str) -> tuple[tuple[str, ...], date | None]:
    """The ``key`` values to recount (``attribute`` gives rows their key) and the earliest date one of them can have a
    row on (None: none to recount). Two small queries."""
    from pyspark.sql import functions as F

    if since == date.max:  # nothing changed since
        return (), None
    changed = attribute(rows.where(F.col(partition) >= F.lit(since))).select(key)
    # a listing of campaign ids or UTM names, no rows
    values = tuple(sorted(r[0] for r in changed.union(stored.where(F.col(last) >= F.lit(since)).select(key))
                          .where(F.col(key).isNotNull()).distinct().collect()))
    if not values:
        return (), None
    earliest = stored.where(F.col(key).isin(list(values))).agg(F.to_date(F.min(first)).alias("d")).first().d
    return values, min(since, earliest) if earliest is not None else since


def _counts(lake: Lake, posts: "DataFrame", scope: Recount | None) -> tuple["DataFrame", "DataFrame"]:
    """Interactions by (campaign, platform) and site visits by (UTM name, platform): counted for what ``scope``
    recounts (everything without one), stored for the rest."""
    from pyspark.sql import functions as F

    from jobs.gold.timeline import with_campaigns

    social = lake.read_or_empty("silver.social_interactions")
    sessions = lake.read_or_empty("silver.sessions").where("utm_campaign IS NOT NULL")
    if scope is not None:
        social = social.where(F.col("event_date") >= F.lit(scope.social_from or date.max))
        sessions = sessions.where(F.col("session_date") >= F.lit(scope.visits_from or date.max)).where(
            _among("utm_campaign", scope.utms))
    social = with_campaigns(social, posts)
    if scope is not None:
        social = social.where(_among("campaign_id", scope.campaigns))
    drew_keys, visit_keys = ["campaign_id", "platform"], ["utm_campaign", "platform"]
    drew = social.where("campaign_id IS NOT NULL").groupBy(*drew_keys).agg(
        F.count("*").alias("interactions"), F.countDistinct("actor_id_hash").alias("unique_actors"),
        F.min("occurred_at").alias("first_interaction_at"), F.max("occurred_at").alias("last_interaction_at"))
    visits = sessions.groupBy(F.col("utm_campaign"), F.lower("utm_source").alias("platform")).agg(
        F.count("*").alias("site_visits"), F.sum(F.col("converted").cast("int")).alias("visit_orders"),
        F.min("session_start").alias("first_visit_at"), F.max("session_start").alias("last_visit_at"))
    if scope is None:
        return drew, visits
    stored = scope.stored
    kept_drew = stored.where(~_among("campaign_id", scope.campaigns)).select(*drew_keys, *DREW)
    kept_visits = (stored.where(F.col("utm_campaign").isNotNull() & ~_among("utm_campaign", scope.utms))
                   .select(*visit_keys, *VISITS).dropDuplicates(visit_keys))
    return drew.unionByName(kept_drew), visits.unionByName(kept_visits)


def _order_counts(orders: "DataFrame", scope: Recount | None) -> tuple["DataFrame", "DataFrame"]:
    """Orders touched within 7 days, and last-touch orders, by (campaign, platform): counted for ``scope``'s
    attributed campaigns from the orders with a row of one (an order whose last touch is one of them has such a
    row), stored for the rest; all counted without a scope."""
    from pyspark.sql import functions as F

    keys = ["campaign_id", "platform"]
    if scope is not None and scope.attributed is not None:
        mine = orders.where(_among("campaign_id", scope.attributed))
        orders = orders.join(mine.select("order_id").distinct(), "order_id", "left_semi")
    touched = orders.groupBy(*keys).agg(F.countDistinct("order_id").alias("orders_within_7d"))
    # an order's last touch: its latest interaction over every campaign and platform (ties to the greatest campaign)
    last = (orders.groupBy("order_id").agg(F.max(F.struct("touch_at", "campaign_id", "platform")).alias("t"))
            .groupBy(F.col("t.campaign_id").alias("campaign_id"), F.col("t.platform").alias("platform"))
            .agg(F.count("*").alias("last_touch_orders")))
    if scope is None or scope.attributed is None:
        return touched, last
    kept = scope.stored.where(~_among("campaign_id", scope.attributed))
    return (touched.where(_among("campaign_id", scope.attributed)).unionByName(kept.select(*keys, "orders_within_7d")),
            last.where(_among("campaign_id", scope.attributed)).unionByName(kept.select(*keys, "last_touch_orders")))


def _among(column: str, values: tuple[str, ...]):
    from pyspark.sql import functions as F

    return F.col(column).isin(list(values)) if values else F.lit(False)


def _stored_counts(lake: Lake, previous: dict[str, int] | None) -> "DataFrame | None":
    """The stored campaign performance, when counts can be carried over from it: it exists with the first/last
    columns, and neither the campaigns nor their posts changed since ``previous`` (they decide what is attributed
    to what, so a change of either recounts everything)."""
    if previous is None or not lake.exists("gold.campaign_performance"):
        return None
    for name in ("silver.campaigns", "silver.campaign_posts"):  # unpartitioned: changed or not, from the log
        if lake.exists(name) and (name not in previous or lake.changed_partitions(name, previous[name]) != set()):
            return None
    stored = lake.read("gold.campaign_performance")
    return stored if set(DREW + VISITS) <= set(stored.columns) else None


def _since(lake: Lake, name: str, previous: dict[str, int]) -> date | None:
    """The earliest date of ``name`` whose rows changed since the version ``previous`` names (``date.max``: none);
    None when that is not known."""
    dates = partition_dates(lake, name, previous)
    return None if dates is None else min(dates, default=date.max)
