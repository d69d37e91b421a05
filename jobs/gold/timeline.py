"""``gold/customer_timeline``: every customer's interactions across channels, in one ordered history.

Contract
- One row per interaction that belongs to a customer: a web/app visit (session), key
  web events (product views, carts, checkouts, searches, shares, wishlists, reviews),
  a social interaction, an order status change (placed, paid, fulfilled, cancelled,
  refunded; store purchases included). Bots and shared devices belong to nobody.
- ``source_table``/``source_key`` name the silver row, so every silver interaction
  that belongs to a customer is on exactly one timeline row.
- ``seq`` numbers a customer's rows by time (then channel, type, key): deterministic, so
  incremental and full builds agree. ``is_milestone``/``milestone`` (comma-separated when a row is several) mark first visit, first
  social touch, first purchase, first repeat purchase, first advocacy (review, share,
  mention) and reactivation after 90 days away.
- Partitioned by ``occurred_date``. A touched customer's history is rebuilt from the date it can have changed
  (curate says which), numbered on from the rows kept before it, and only the dates
  where a row came out different are rewritten (new rows land in recent dates; a merge of two customers,
  or a late event, renumbers the later rows of the customer, and reopens their dates). Partitioned by
  customer (``customer_bucket``, the layout before), the third of customers touched each day rewrote
  every partition. ``seq`` is dense, so a merge reaching back far still rewrites the dates after it.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from jobs.lake import Lake
from schemas.vocabulary import ADVOCACY_EVENTS as ADVOCACY, PURCHASE_EVENTS as PURCHASES

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

BUCKETS = 64
REACTIVATION_DAYS = 90
WEB_EVENTS = {
    "Product Viewed": "product_view", "Product Added": "add_to_cart", "Checkout Started": "checkout",
    "Products Searched": "search", "Product Shared": "share", "Product Added to Wishlist": "wishlist",
    "Product Reviewed": "review",
}
ORDER_EVENTS = {"pending": "order_pending", "paid": "order_paid", "fulfilled": "order_fulfilled",
                "cancelled": "order_cancelled", "refunded": "order_refunded", "partially_refunded": "order_refunded"}
COLUMNS = ("customer_key", "occurred_at", "channel", "platform", "event_type", "summary", "product_id", "campaign",
           "order_id", "session_id", "identifier", "source_table", "source_key")


# a web or app row belongs to the signed-in user, else to the device (shared by visits and key events)
WEB_IDENTIFIER = "CASE WHEN user_id IS NOT NULL THEN concat('user:', user_id) ELSE concat('anon:', anonymous_id) END AS identifier"
WEB_CHANNEL = "CASE WHEN device_class = 'app' THEN 'app' ELSE 'web' END AS channel"


def bucket_sql(key_sql: str) -> str:
    return f"pmod(xxhash64({key_sql}), {BUCKETS})"


def _map(d: dict[str, str], col: str) -> str:
    return "CASE " + " ".join(f"WHEN {col} = '{k}' THEN '{v}'" for k, v in d.items()) + " END"


def web_rows(events: "DataFrame") -> "DataFrame":
    ev = events.where(f"NOT is_bot AND event IN ({', '.join(repr(e) for e in WEB_EVENTS)})")
    return ev.selectExpr(
        WEB_IDENTIFIER,
        "event_time AS occurred_at", WEB_CHANNEL,
        "share_via AS platform", f"{_map(WEB_EVENTS, 'event')} AS event_type",
        "concat(event, CASE WHEN product_id IS NOT NULL THEN concat(' ', product_id) ELSE '' END, "
        "CASE WHEN search_query IS NOT NULL THEN concat(': \"', search_query, '\"') ELSE '' END, "
        "CASE WHEN share_via IS NOT NULL THEN concat(' to ', share_via) ELSE '' END, "
        "CASE WHEN rating IS NOT NULL THEN concat(', ', rating, ' stars') ELSE '' END) AS summary",
        "product_id", "utm_campaign AS campaign", "CAST(NULL AS STRING) AS order_id", "CAST(NULL AS STRING) AS session_id",
        "'clickstream_events' AS source_table", "message_id AS source_key",
    )


def session_rows(sessions: "DataFrame") -> "DataFrame":
    return sessions.selectExpr(
        WEB_IDENTIFIER,
        "session_start AS occurred_at", WEB_CHANNEL,
        "utm_source AS platform", "'visit' AS event_type",
        "concat('Visit: ', pages, ' page', CASE WHEN pages = 1 THEN '' ELSE 's' END, ', ', "
        "cast(round(duration_seconds / 60) AS INT), ' min', "
        "CASE WHEN utm_campaign IS NOT NULL THEN concat(', from ', utm_source, ' (', utm_campaign, ')') "
        "WHEN referrer_host IS NOT NULL THEN concat(', from ', referrer_host) ELSE ', direct' END, "
        "CASE WHEN converted THEN ', bought' ELSE '' END) AS summary",
        "CAST(NULL AS STRING) AS product_id", "utm_campaign AS campaign", "CASE WHEN size(order_ids) > 0 THEN element_at(order_ids, 1) END AS order_id",
        "session_id", "'sessions' AS source_table", "session_id AS source_key",
    )


def with_campaigns(interactions: "DataFrame", posts: "DataFrame | None") -> "DataFrame":
    """Interactions with ``campaign_id``: the campaign of the retailer's post they target, from the newest
    campaign posts extract (so an extract that landed after the interactions still attributes them). Pure."""
    from pyspark.sql import functions as F

    if posts is None:
        return interactions.withColumn("campaign_id", F.lit(None).cast("string"))
    p = posts.select(F.col("platform").alias("_pp"), F.col("post_id").alias("_pid"), "campaign_id").dropDuplicates(
        ["_pp", "_pid"])
    joined = interactions.join(p, (interactions.platform == p._pp) & (interactions.target_id == p._pid)
                               & (interactions.target_type == "post"), "left")
    return joined.drop("_pp", "_pid")


def social_rows(interactions: "DataFrame", posts: "DataFrame | None" = None) -> "DataFrame":
    return with_campaigns(interactions, posts).selectExpr(
        "concat('social:', actor_id_hash) AS identifier", "occurred_at", "'social' AS channel", "platform",
        "interaction_type AS event_type",
        "concat(initcap(replace(interaction_type, '_', ' ')), ' on ', initcap(platform), ': ', coalesce(target_type, '?'), "
        "CASE WHEN campaign_id IS NOT NULL THEN concat(' of campaign ', campaign_id) ELSE '' END, "
        "CASE WHEN product_id IS NOT NULL THEN concat(' ', product_id) ELSE '' END, "
        "CASE WHEN rating IS NOT NULL THEN concat(', ', rating, ' stars') ELSE '' END) AS summary",
        "product_id", "campaign_id AS campaign", "CAST(NULL AS STRING) AS order_id", "CAST(NULL AS STRING) AS session_id",
        "'social_interactions' AS source_table", "concat(platform, ':', event_id) AS source_key",
    )


def order_rows(history: "DataFrame") -> "DataFrame":
    """One row per status an order reached (the earliest delivery that shows it)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first = Window.partitionBy("order_id", "status").orderBy("updated_at", "webhook_id")
    h = history.withColumn("_n", F.row_number().over(first)).where("_n = 1")
    h = h.withColumn("_i", F.row_number().over(Window.partitionBy("order_id").orderBy("updated_at", "webhook_id")))
    # an order's first state is the purchase itself; later states are its changes
    event = (f"CASE WHEN _i = 1 AND channel = 'store' THEN 'store_purchase' WHEN _i = 1 THEN 'order_placed' "
             f"ELSE {_map(ORDER_EVENTS, 'status')} END")
    return h.selectExpr(
        "concat('order:', cast(order_id AS STRING)) AS identifier", "updated_at AS occurred_at", "channel",
        "CAST(NULL AS STRING) AS platform", f"{event} AS event_type",
        f"concat(initcap(replace({event}, '_', ' ')), ' ', coalesce(order_name, concat('#', cast(order_id AS STRING))), ': ', "
        "coalesce(cast(total_price AS STRING), '?'), ' ', coalesce(currency, ''), "
        "CASE WHEN channel = 'store' THEN concat(' at store ', coalesce(cast(location_id AS STRING), '?')) "
        "ELSE concat(' via ', channel) END) AS summary",
        "CASE WHEN size(line_items) > 0 THEN element_at(line_items, 1).product_id END AS product_id", "utm_campaign AS campaign",
        "cast(order_id AS STRING) AS order_id", "CAST(NULL AS STRING) AS session_id",
        "'order_status_history' AS source_table", "concat(cast(order_id AS STRING), ':', status) AS source_key",
    ).where("event_type IS NOT NULL")


SOURCES = (("clickstream_events", web_rows), ("sessions", session_rows), ("social_interactions", social_rows),
           ("order_status_history", order_rows))


def rows_from(tables: dict[str, "DataFrame"]) -> "DataFrame":
    """All interactions in the given silver tables (by name; missing ones are skipped), not yet attributed. Pure."""
    posts = tables.get("campaign_posts")
    parts = [social_rows(tables[name], posts) if name == "social_interactions" else to_rows(tables[name])
             for name, to_rows in SOURCES if name in tables]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def interactions(lake: Lake, since: date | None = None) -> "DataFrame":
    """All interactions from silver with the identifier they are attributed to (not yet to a customer);
    a silver table that does not exist (its source never landed) contributes none.

    With ``since``, the interactions that occurred on that date or later, reading only those dates of silver
    (an order's rows still come from its whole status history: which state came first decides its type)."""
    tables = {name: lake.read_or_empty(f"silver.{name}") for name in (*(n for n, _ in SOURCES), "campaign_posts")}
    if since is None:
        return rows_from(tables)
    on = f">= DATE'{since}'"
    for name, column in (("clickstream_events", "event_date"), ("sessions", "session_date"),
                         ("social_interactions", "event_date")):
        tables[name] = tables[name].where(f"{column} {on}")
    history = tables["order_status_history"]
    tables["order_status_history"] = history.join(
        history.where(f"event_date {on}").select("order_id").distinct(), "order_id", "left_semi")
    return rows_from(tables).where(f"to_date(occurred_at) {on}")


def attribute(rows: "DataFrame", identity: "DataFrame") -> "DataFrame":
    """Rows joined to their customer; rows of shared or unknown identifiers belong to nobody. Pure."""
    ids = identity.where("NOT is_shared").select("identifier", "customer_key")
    return rows.join(ids, "identifier").select(*COLUMNS)


# what the milestones count (a row is one if the condition holds), by the prefix column that carries the kept rows'
# count of it
_COUNTED = {"_visit0": "event_type = 'visit'", "_social0": "channel = 'social'",
            "_purchase0": f"event_type IN ({', '.join(repr(e) for e in PURCHASES)})",
            "_adv0": f"event_type IN ({', '.join(repr(e) for e in ADVOCACY)})"}


def kept_prefix(stored: "DataFrame", keys: "DataFrame") -> "DataFrame":
    """What each key's stored rows before its ``from_date`` add up to, for ``sequence`` to go on from them: rows,
    visits, social touches, purchases, advocacy and the last time. Reads five narrow columns. Pure."""
    from pyspark.sql import functions as F

    kept = (stored.select("customer_key", "occurred_date", "occurred_at", "channel", "event_type")
            .join(keys.where("from_date IS NOT NULL").select("customer_key", "from_date"), "customer_key")
            .where("occurred_date < from_date"))
    return kept.groupBy("customer_key").agg(
        F.count("*").alias("_rows0"), F.max("occurred_at").alias("_last0"),
        *[F.sum(F.when(F.expr(cond), 1).otherwise(0)).alias(name) for name, cond in _COUNTED.items()])


def sequence(rows: "DataFrame", prefix: "DataFrame | None" = None) -> "DataFrame":
    """Add seq, milestones and the bucket. ``rows`` hold each customer's whole history, or, with ``prefix``
    (``kept_prefix``), the rows from a date on, numbered after the kept rows before it. Pure."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if prefix is None:
        rows = rows.select("*", F.lit(None).cast("timestamp").alias("_last0"),
                           *[F.lit(None).cast("bigint").alias(c) for c in ("_rows0", *_COUNTED)])
    else:
        rows = rows.join(prefix, "customer_key", "left")
    order = ["occurred_at", "channel", "event_type", "source_key"]
    w = Window.partitionBy("customer_key").orderBy(*order)
    cum = w.rowsBetween(Window.unboundedPreceding, 0)

    def running(name: str) -> "F.Column":  # the count so far, the kept rows' included
        return F.coalesce(F.col(name), F.lit(0)) + F.sum(F.when(F.expr(_COUNTED[name]), 1).otherwise(0)).over(cum)

    ranked = (rows.withColumn("seq", F.coalesce(F.col("_rows0"), F.lit(0)) + F.row_number().over(w))
              .withColumn("_prev", F.coalesce(F.lag("occurred_at").over(w), F.col("_last0"))))
    for name in _COUNTED:
        ranked = ranked.withColumn(f"{name}_n", running(name))

    def nth(name: str, n: int) -> "F.Column":  # the row is the n-th of what ``name`` counts
        return F.expr(_COUNTED[name]) & (F.col(f"{name}_n") == n)

    reached = F.concat_ws(",", *[F.when(cond, F.lit(name)) for name, cond in (
        ("first_visit", nth("_visit0", 1)),
        ("first_social_touch", nth("_social0", 1)),
        ("first_purchase", nth("_purchase0", 1)),
        ("first_repeat_purchase", nth("_purchase0", 2)),
        ("first_advocacy", nth("_adv0", 1)),
        ("reactivation", F.col("_prev") < F.col("occurred_at") - F.expr(f"INTERVAL {REACTIVATION_DAYS} DAYS")),
    )])
    milestone = F.when(reached != "", reached)  # every milestone the row reaches, comma-separated
    return ranked.select(
        "customer_key", "seq", "occurred_at", F.to_date("occurred_at").alias("occurred_date"), "channel", "platform",
        "event_type", "summary", "product_id", "campaign", "order_id", "session_id",
        milestone.isNotNull().alias("is_milestone"), milestone.alias("milestone"),
        "identifier", "source_table", "source_key", F.expr(bucket_sql("customer_key")).alias("customer_bucket"),
    )


def write(lake: Lake, timeline: "DataFrame", touched: "DataFrame | None") -> None:
    """Full: replace the table. Incremental: the touched customers' rows from their ``from_date`` on (all of
    them where it is NULL) become exactly ``timeline``'s; their rows before it stay as they are."""
    lake.replace_keys("gold.customer_timeline", timeline, touched, "customer_key", since="occurred_date")
