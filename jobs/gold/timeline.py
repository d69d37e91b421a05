"""``gold/interactions`` and the ``gold/customer_timeline`` view: every customer's interactions across channels, in
one ordered history.

Contract
- ``gold.interactions``: one row per interaction, stored once and keyed by the identifier it came through (a signed-in
  user, a device, a social account, an order): a web/app visit (session), key web events (product views, carts,
  checkouts, searches, shares, wishlists, reviews), a social interaction, an order status change (placed, paid,
  fulfilled, cancelled, refunded; store purchases included). Bots are no interactions. Partitioned by
  ``occurred_date``; a curate replaces only the dates whose silver rows changed since the last one.
- ``source_table``/``source_key`` name the silver row, so every silver interaction is exactly one row.
- ``gold.customer_timeline`` is a view (``schemas.views``): the interactions joined to the identity in force, so
  rows of shared or unknown identifiers belong to nobody. ``seq`` numbers a customer's rows by time (then channel,
  type, key) when read, and ``is_milestone``/``milestone`` (comma-separated when a row is several) mark first visit,
  first social touch, first purchase, first repeat purchase, first advocacy (review, share, mention) and
  reactivation after 90 days away. A merge, split or unmerge rewrites no stored row: the next read sees it.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from jobs.lake import Lake
from jobs.sql_text import in_list
from schemas import views

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

WEB_EVENTS = {
    "Product Viewed": "product_view", "Product Added": "add_to_cart", "Checkout Started": "checkout",
    "Products Searched": "search", "Product Shared": "share", "Product Added to Wishlist": "wishlist",
    "Product Reviewed": "review",
}
ORDER_EVENTS = {"pending": "order_pending", "paid": "order_paid", "fulfilled": "order_fulfilled",
                "cancelled": "order_cancelled", "refunded": "order_refunded", "partially_refunded": "order_refunded"}


# a web or app row belongs to the signed-in user, else to the device (shared by visits and key events)
WEB_IDENTIFIER = "CASE WHEN user_id IS NOT NULL THEN concat('user:', user_id) ELSE concat('anon:', anonymous_id) END AS identifier"
WEB_CHANNEL = "CASE WHEN device_class = 'app' THEN 'app' ELSE 'web' END AS channel"


def _map(d: dict[str, str], col: str) -> str:
    return "CASE " + " ".join(f"WHEN {col} = '{k}' THEN '{v}'" for k, v in d.items()) + " END"


def web_rows(events: "DataFrame") -> "DataFrame":
    ev = events.where(f"NOT is_bot AND event IN ({in_list(WEB_EVENTS)})")
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
    """All interactions in the given silver tables (by name; missing ones are skipped), with their date, not yet
    attributed: ``gold.interactions`` rows. Pure."""
    posts = tables.get("campaign_posts")
    parts = [social_rows(tables[name], posts) if name == "social_interactions" else to_rows(tables[name])
             for name, to_rows in SOURCES if name in tables]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.selectExpr("*", "to_date(occurred_at) AS occurred_date")


def interactions(lake: Lake, dates: "list[date] | None" = None) -> "DataFrame":
    """``gold.interactions`` rows from silver: every interaction with the identifier it came through, not attributed
    to a customer; a silver table that does not exist (its source never landed) contributes none.

    With ``dates``, the interactions that occurred on those dates, reading only those dates of silver (an order's
    rows still come from its whole status history: which state came first decides its type)."""
    tables = {name: lake.read_or_empty(f"silver.{name}") for name in (*(n for n, _ in SOURCES), "campaign_posts")}
    if dates is not None:
        on = dates_sql(dates)
        for name, column in (("clickstream_events", "event_date"), ("sessions", "session_date"),
                             ("social_interactions", "event_date")):
            tables[name] = tables[name].where(f"{column} {on}")
        history = tables["order_status_history"]
        tables["order_status_history"] = history.join(
            history.where(f"event_date {on}").select("order_id").distinct(), "order_id", "left_semi")
    rows = rows_from(tables)
    return rows if dates is None else rows.where(f"occurred_date {on}")


def dates_sql(dates: "list[date]") -> str:
    """``IN (DATE'…', …)`` for a list of dates (never empty: ``FALSE`` is written by the caller)."""
    return "IN (" + ", ".join(f"DATE'{d}'" for d in sorted(set(dates))) + ")"


def read(lake: Lake, keys: "DataFrame | str | None" = None, *, identity: "DataFrame | None" = None,
         stored: "DataFrame | None" = None) -> "DataFrame":
    """``gold.customer_timeline``: of every customer, or only of ``keys`` (one customer key, or a frame with
    ``customer_key``: their identifiers are looked up first, so only their interactions are numbered). ``identity``
    (default: the map now) and ``stored`` (default: ``gold.interactions`` now) give the timeline as of another time."""
    from pyspark.sql import functions as F

    identity = lake.read_or_empty("silver.identity_map") if identity is None else identity
    stored = lake.read_or_empty("gold.interactions") if stored is None else stored
    if keys is not None:
        identity = (identity.where(F.col("customer_key") == F.lit(keys)) if isinstance(keys, str)
                    else identity.join(keys.select("customer_key").distinct(), "customer_key", "left_semi"))
        stored = stored.join(identity.where("NOT is_shared").select("identifier"), "identifier", "left_semi")
    return views.timeline_frame(stored, identity)


FACT_COLUMNS = ("occurred_at", "occurred_date", "channel", "platform", "event_type", "order_id", "campaign", "identifier",
                "source_table", "source_key")  # what a customer's facts and orders' attribution are computed from


def customer_rows(lake: Lake, keys: "DataFrame", identity: "DataFrame", stored: "DataFrame | None" = None) -> "DataFrame":
    """The rows of ``keys``' customers (of ``stored``, else every interaction), ``FACT_COLUMNS`` and
    ``customer_key`` only: the timeline without the text and the milestones, so a read of whole histories skips
    most of each row's bytes."""
    stored = lake.read_or_empty("gold.interactions") if stored is None else stored
    ids = identity.where("NOT is_shared").join(keys.select("customer_key").distinct(), "customer_key", "left_semi")
    return stored.select(*FACT_COLUMNS).join(ids.select("identifier", "customer_key"), "identifier")


def numbered(rows: "DataFrame") -> "DataFrame":
    """``customer_rows`` with ``seq`` as the timeline numbers them (each customer's rows must all be there)."""
    return rows.selectExpr("*", f"row_number() OVER (PARTITION BY customer_key ORDER BY {views.ORDER}) AS seq")


def attributed(lake: Lake, identity: "DataFrame | None" = None) -> "DataFrame":
    """Every interaction with its customer now (or under ``identity``), not numbered: for what needs only who."""
    identity = lake.read_or_empty("silver.identity_map") if identity is None else identity
    return views.attributed_frame(lake.read_or_empty("gold.interactions"), identity)
