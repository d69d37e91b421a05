"""Silver clickstream: bronze Segment events → ``silver/clickstream_events``.

Contract
- Key: ``message_id`` (Segment's messageId). One row per event; exact duplicates
  dropped, same id with other content quarantined as ``id_conflict``. Transport
  fields (``sentAt``, ``receivedAt``) are not part of the content.
- ``event_time`` is corrected for device clock skew as Segment does:
  ``receivedAt − (sentAt − timestamp)``. All four times are kept.
- No raw PII: emails and phones from ``identify`` traits are HMAC-hashed, IPs are cut to
  /24, user ids that are junk values (``0``, ``null``, ``anonymous`` …) become null.
- Known bots are flagged (``is_bot``) and kept out of sessions, not dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.silver.common import FUTURE_TOLERANCE_SECONDS, clean_id, first_failure, hmac_sql
from schemas import clickstream as schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

TABLE = "clickstream_events"
KEYS = ("message_id",)
BOT_PATTERN = r"(?i)(bot|crawl|spider|slurp|ahrefs|semrush|facebookexternalhit|headless|python-requests|curl/)"
# IPv4 to its /24, IPv6 to its /48: enough for geography, not enough to find a household
TRUNCATED_IP = (r"CASE WHEN j.context.ip LIKE '%:%' THEN concat(substring_index(j.context.ip, ':', 3), '::') "
                r"ELSE regexp_replace(j.context.ip, '\\.[0-9]+$', '.0') END")
NUMERIC_PROPERTIES = ("price", "quantity", "total", "revenue", "rating")


def parse(bronze: "DataFrame", pii_key: str, late_days: int) -> "DataFrame":
    """Typed columns plus ``reason``/``detail`` (null when valid), ``fingerprint`` and ``arrival_ts``. Pure."""
    from pyspark.sql import functions as F

    df = bronze.withColumn("j", F.from_json("value", schema.EVENT))
    ts = {name: f"try_cast(j.{name} AS TIMESTAMP)" for name in ("timestamp", "sentAt", "receivedAt")}
    event_time = (f"CASE WHEN j.sentAt IS NULL THEN {ts['timestamp']} ELSE timestamp_millis(unix_millis({ts['receivedAt']})"
                  f" - (unix_millis({ts['sentAt']}) - unix_millis({ts['timestamp']}))) END")
    wrong = " OR ".join(
        f"(get_json_object(value, '$.properties.{p}') IS NOT NULL AND j.properties.{p} IS NULL)" for p in NUMERIC_PROPERTIES
    )
    wrong_detail = "concat_ws('; ', " + ", ".join(
        f"CASE WHEN get_json_object(value, '$.properties.{p}') IS NOT NULL AND j.properties.{p} IS NULL "
        f"THEN concat('properties.{p} is not a number: ', get_json_object(value, '$.properties.{p}')) END"
        for p in NUMERIC_PROPERTIES) + ")"
    bad_ts = " OR ".join(f"(j.{n} IS NOT NULL AND {ts[n]} IS NULL)" for n in ts) + " OR j.timestamp IS NULL OR j.receivedAt IS NULL"
    reason, detail = first_failure([
        ("missing_ids", "coalesce(trim(j.messageId), '') = ''", "'messageId is missing'"),
        ("missing_ids", f"coalesce(trim(j.anonymousId), '') = '' AND {clean_id('j.userId')} IS NULL",
         "'neither anonymousId nor a usable userId'"),
        ("wrong_types", wrong, wrong_detail),
        ("bad_timestamp", bad_ts,
         "concat('unparseable or missing time: timestamp=', coalesce(j.timestamp, 'null'), ', sentAt=', "
         "coalesce(j.sentAt, 'null'), ', receivedAt=', coalesce(j.receivedAt, 'null'))"),
        ("unknown_event_type", "j.type NOT IN ('page', 'track', 'identify') OR j.type IS NULL",
         "concat('type ', coalesce(j.type, 'null'), ' is not page, track or identify')"),
        ("future_timestamp", f"{event_time} > {ts['receivedAt']} + INTERVAL {FUTURE_TOLERANCE_SECONDS} SECONDS",
         f"concat('event time ', cast({event_time} AS STRING), ' is after its arrival ', j.receivedAt)"),
        ("too_late", f"{event_time} < {ts['receivedAt']} - INTERVAL {late_days} DAYS",
         f"concat('arrived more than {late_days} days after the event (RAPPORT_LATE_DAYS)')"),
    ])
    ua = "coalesce(j.context.userAgent, '')"
    device = (f"CASE WHEN {ua} RLIKE '{BOT_PATTERN}' THEN 'bot' WHEN j.context.app IS NOT NULL THEN 'app' "
              f"WHEN {ua} RLIKE '(?i)(ipad|tablet)' THEN 'tablet' WHEN {ua} RLIKE '(?i)(mobile|iphone|android)' THEN 'mobile' "
              f"ELSE 'desktop' END")
    page_url = "coalesce(j.context.page.url, j.properties.url)"
    return df.select(
        "value", "source_file", "line_number", "landing_dt", "landing_hour", "ingested_at",
        reason.alias("reason"), detail.alias("detail"),
        F.expr("j.messageId").alias("message_id"),
        F.expr("j.type").alias("type"),
        F.expr("coalesce(j.event, j.name)").alias("event"),
        F.expr("nullif(trim(j.anonymousId), '')").alias("anonymous_id"),
        F.expr(clean_id("j.userId")).alias("user_id"),
        F.expr(f"j.userId IS NOT NULL AND {clean_id('j.userId')} IS NULL").alias("user_id_junk"),
        F.expr(event_time).alias("event_time"),
        F.expr(f"to_date({event_time})").alias("event_date"),
        F.expr(ts["timestamp"]).alias("device_timestamp"),
        F.expr(ts["sentAt"]).alias("sent_at"),
        F.expr(ts["receivedAt"]).alias("received_at"),
        F.expr(ts["receivedAt"]).alias("arrival_ts"),
        F.expr("coalesce(j.context.page.path, j.properties.path)").alias("page_path"),
        F.expr(f"regexp_replace({page_url}, '[?#].*$', '')").alias("page_url"),
        F.expr("coalesce(j.context.page.title, j.properties.title)").alias("page_title"),
        F.expr("nullif(coalesce(j.context.page.referrer, j.properties.referrer), '')").alias("referrer"),
        F.expr("parse_url(nullif(coalesce(j.context.page.referrer, j.properties.referrer), ''), 'HOST')").alias("referrer_host"),
        F.expr("j.context.campaign.name").alias("utm_campaign"),
        F.expr("j.context.campaign.source").alias("utm_source"),
        F.expr("j.context.campaign.medium").alias("utm_medium"),
        F.expr("j.context.campaign.content").alias("utm_content"),
        F.expr("j.properties.product_id").alias("product_id"),
        F.expr("j.properties.sku").alias("sku"),
        F.expr("j.properties.category").alias("category"),
        F.expr("j.properties.price").alias("price"),
        F.expr("j.properties.quantity").alias("quantity"),
        F.expr("j.properties.order_id").alias("order_id"),
        F.expr("coalesce(j.properties.revenue, j.properties.total)").alias("revenue"),
        F.expr("j.properties.coupon").alias("coupon"),
        F.expr("j.properties.query").alias("search_query"),
        F.expr("j.properties.share_via").alias("share_via"),
        F.expr("j.properties.rating").alias("rating"),
        F.expr("j.properties.method").alias("login_method"),
        F.expr(hmac_sql("concat(lower(j.properties.method), ':', j.properties.provider_user_id)", pii_key)).alias(
            "login_provider_user_hash"),  # hashed as social_interactions hashes actor ids, so they join
        F.expr(hmac_sql("j.traits.email", pii_key)).alias("email_hash"),
        F.expr(hmac_sql("j.traits.phone", pii_key)).alias("phone_hash"),
        F.expr(device).alias("device_class"),
        F.expr(f"{ua} RLIKE '{BOT_PATTERN}'").alias("is_bot"),
        F.expr("j.context.userAgent").alias("user_agent"),
        F.expr(TRUNCATED_IP).alias("ip_truncated"),
        F.expr("j.context.library.name").alias("library"),
        F.expr("sha2(regexp_replace(value, '\"(sentAt|receivedAt)\":\"[^\"]*\",?', ''), 256)").alias("fingerprint"),
    )
