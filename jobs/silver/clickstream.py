"""Silver clickstream: bronze Segment events → ``silver.clickstream_events``.

Contract
- Key: ``message_id`` (Segment's messageId). One row per event; exact duplicates
  dropped, same id with other content quarantined as ``id_conflict``. Transport
  fields (``sentAt``, ``receivedAt``) are not part of the content.
- ``event_time`` is corrected for device clock skew as Segment does:
  ``receivedAt − (sentAt − timestamp)``. All four times are kept. Every time is range-checked where
  it is parsed: ``receivedAt`` must be after ``RAPPORT_EARLIEST_EVENT`` and no later than a day after its
  file arrived, the corrected time after ``RAPPORT_EARLIEST_EVENT``; no arithmetic runs on a time outside
  1900-2200, so no line can overflow a date.
- No raw PII: emails and phones from ``identify`` traits are HMAC-hashed; ids that hold an email become a
  keyed pseudonym; free text (paths, titles, referrers, search queries, user agents, UTM values) is
  scrubbed (``jobs.pii.scrub``); URLs keep only UTM and product parameters; IPs are cut to /24 (v4)
  or /48 (v6) by parsing them; user ids that are junk values (``0``, ``null``, ``anonymous`` …) become null.
- Known bots are flagged (``is_bot``) and kept out of sessions, not dropped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.pii.keyring import hmac_sql
from jobs.pii.keyring import pseudonym_sql as keyed_pseudonym_sql
from jobs.pii.scrub import ip_address_sql, ip_network_sql, pseudonym_sql, scrub_sql, url_sql
from jobs.silver import rules
from jobs.silver.common import (
    clean_id, first_failure, long_ids, not_object, odd_types, phone_sql, read_fields, sane_sql, time_checks,
)
from jobs.silver.platforms import snowplow_json
from jobs.sql_text import in_list, sql_string
from schemas import clickstream as schema
from schemas.rules import FUTURE_TOLERANCE_SECONDS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.config import Config

TABLE = "clickstream_events"
KEYS = ("message_id",)
# the identifiers of a row, as silver.identity_map names them (what a suppression matches)
IDENTIFIERS = ("concat('anon:', anonymous_id)", "concat('user:', user_id)", "concat('anon:', previous_id)",
               "concat('email:', email_hash)", "concat('phone:', phone_hash)", "concat('social:', login_provider_user_hash)", "concat('order:', order_id)")
BOT_PATTERN = r"(?i)(bot|crawl|spider|slurp|ahrefs|semrush|facebookexternalhit|headless|python-requests|curl/)"
NUMERIC_PROPERTIES = ("price", "quantity", "total", "revenue", "rating")
LIMITS = {"price": 1e9, "quantity": 1e6, "total": 1e10, "revenue": 1e10, "rating": 5}  # plausible maxima


def _odd_types() -> str:
    """``common.odd_types`` of the fields whose raw text the parse checks, typed as ``schema.EVENT`` types them."""
    from pyspark.sql.types import LongType

    fields = {f.name: f.dataType for f in schema.EVENT["properties"].dataType.fields}
    longs = [p for p in NUMERIC_PROPERTIES if isinstance(fields[p], LongType)]
    return odd_types(("properties", "context", "traits", "page"), longs,
                     [p for p in NUMERIC_PROPERTIES if p not in longs])


ODD_TYPES = _odd_types()
# the fields of a line the parse reads: ``from_json`` builds only these. The whole Segment spec (product arrays,
# devices, names and other traits nothing keeps) cost 1 s more of the 1.1M-event parse's 10.6 s
READ = ("type", "messageId", "anonymousId", "userId", "previousId", "event", "name", "timestamp", "originalTimestamp",
        "sentAt", "receivedAt", "traits.email", "traits.phone", "context.page", "context.userAgent", "context.ip",
        "context.campaign", "context.library.name", "context.app",
        *(f"properties.{p}" for p in ("path", "url", "title", "referrer", "product_id", "sku", "category", "price",
                                      "quantity", "order_id", "total", "revenue", "coupon", "query", "share_via",
                                      "rating", "method", "provider_user_id")))
PARSED = read_fields(schema.EVENT, READ)


def parse(bronze: "DataFrame", cfg: "Config") -> "DataFrame":
    """Typed columns plus ``reason``/``detail`` (null when valid), ``fingerprint`` and ``arrival_ts``. Pure."""
    from pyspark.sql import functions as F

    pii_key, late_days, earliest = cfg.pii_keys(), cfg.late_days, cfg.earliest()
    # Snowplow events (through the collector) read as the Segment events they are (jobs.silver.platforms)
    df = snowplow_json(bronze, "value", "v").withColumn("j", F.from_json("v", PARSED))
    # the raw text of the fields whose type is checked, from two more parses instead of one JSON path lookup (a
    # whole parse of the line) per field: nine parses a line became three. Only for the lines that may need it: a
    # line ``ODD_TYPES`` matches, or one with a number out of range (its detail quotes the raw text). On every other
    # line each such field is an object, a number in range or absent, and the checks that read the raw text hold
    # without it
    def out_of_range(p: str) -> str:
        return f"isnan(j.properties.{p}) OR j.properties.{p} < 0 OR j.properties.{p} > CAST({LIMITS[p]!r} AS DOUBLE)"

    df = (df.withColumn("_raw", F.expr(
              f"CASE WHEN v RLIKE {sql_string(ODD_TYPES)} OR coalesce({' OR '.join(out_of_range(p) for p in NUMERIC_PROPERTIES)}, false) THEN "
              "from_json(v, 'struct<properties:string, context:string, traits:string>') END"))
          .withColumn("_rawp", F.from_json("_raw.properties", "struct<" + ", ".join(
              f"{p}:string" for p in NUMERIC_PROPERTIES) + ">"))
          .withColumn("_page", F.from_json("_raw.context", "struct<page:string>").getField("page")))
    raw = {"properties": "_raw.properties", "context": "_raw.context", "traits": "_raw.traits", "context.page": "_page"}
    # the device's time: originalTimestamp in Segment's and RudderStack's archives (their timestamp is corrected)
    # each time is parsed once, in columns of their own that every check and output below reads: written inline,
    # the corrected time's three casts ran once per use (a dozen), a third of the parse's time
    parsed_ts = {name: f"try_cast(j.{name} AS TIMESTAMP)" for name in ("sentAt", "receivedAt")}
    parsed_ts = {"timestamp": "try_cast(coalesce(j.originalTimestamp, j.timestamp) AS TIMESTAMP)", **parsed_ts}
    ts = {name: f"_ts_{name}" for name in parsed_ts}
    computable = " AND ".join(sane_sql(ts[n]) for n in ts)
    df = df.select("*", *[F.expr(parsed_ts[n]).alias(ts[n]) for n in ts])
    df = df.select("*", F.expr(
        f"CASE WHEN {ts['timestamp']} IS NULL OR NOT {sane_sql(ts['timestamp'])} OR "
        f"NOT {sane_sql(ts['receivedAt'])} THEN NULL WHEN j.sentAt IS NULL OR NOT ({computable}) "
        f"THEN {ts['timestamp']} ELSE timestamp_millis(unix_millis({ts['receivedAt']})"
        f" - (unix_millis({ts['sentAt']}) - unix_millis({ts['timestamp']}))) END").alias("_event_time"))
    event_time = "_event_time"
    wrong = " OR ".join(
        f"(_rawp.{p} IS NOT NULL AND (j.properties.{p} IS NULL OR {out_of_range(p)}))" for p in NUMERIC_PROPERTIES)
    wrong_detail = "concat_ws('; ', " + ", ".join(
        f"CASE WHEN _rawp.{p} IS NOT NULL AND (j.properties.{p} IS NULL OR {out_of_range(p)}) THEN concat('properties.{p} is not a number from 0 to {LIMITS[p]:g}: ', "
        f"substr(_rawp.{p}, 1, 40)) END"
        for p in NUMERIC_PROPERTIES) + ")"
    bad_ts = (" OR ".join(f"({raw} IS NOT NULL AND {ts[n]} IS NULL)" for n, raw in (
        ("timestamp", "coalesce(j.originalTimestamp, j.timestamp)"), ("sentAt", "j.sentAt"), ("receivedAt", "j.receivedAt")))
        + " OR coalesce(j.originalTimestamp, j.timestamp) IS NULL OR j.receivedAt IS NULL")
    df, reason, detail = first_failure(df, [
        ("missing_ids", "coalesce(trim(j.messageId), '') = ''", "'messageId is missing'"),
        ("missing_ids", f"coalesce(trim(j.anonymousId), '') = '' AND {clean_id('j.userId')} IS NULL",
         "'neither anonymousId nor a usable userId'"),
        long_ids("j.messageId", "j.anonymousId", "j.userId", "j.properties.product_id", "j.properties.order_id"),
        *(not_object(p, got=raw[p]) for p in ("properties", "context", "traits", "context.page")),
        ("wrong_types", wrong, wrong_detail),
        ("bad_timestamp", bad_ts,
         "concat('unparseable or missing time: timestamp=', coalesce(substr(j.timestamp, 1, 40), 'null'), ', sentAt=', "
         "coalesce(substr(j.sentAt, 1, 40), 'null'), ', receivedAt=', coalesce(substr(j.receivedAt, 1, 40), 'null'))"),
        *time_checks("receivedAt", ts["receivedAt"], earliest, arrival=True),
        *time_checks("the corrected event time", event_time, earliest, arrival=False),
        ("unknown_event_type", f"j.type NOT IN ({in_list(schema.TYPES)}) OR j.type IS NULL",
         f"concat('type ', coalesce(substr(j.type, 1, 40), 'null'), ' is not {', '.join(schema.TYPES)}')"),
        ("future_timestamp", f"{event_time} > {ts['receivedAt']} + INTERVAL {FUTURE_TOLERANCE_SECONDS} SECONDS",
         f"concat('event time ', cast({event_time} AS STRING), ' is after its arrival ', j.receivedAt)"),
        ("too_late", f"{event_time} < {ts['receivedAt']} - INTERVAL {late_days} DAYS",
         f"concat('arrived more than {late_days} days after the event (RAPPORT_LATE_DAYS)')"),
    ])
    ua = "coalesce(j.context.userAgent, '')"
    device = (f"CASE WHEN _bot THEN 'bot' WHEN j.context.app IS NOT NULL THEN 'app' "
              f"WHEN {ua} RLIKE '(?i)(ipad|tablet)' THEN 'tablet' WHEN {ua} RLIKE '(?i)(mobile|iphone|android)' THEN 'mobile' "
              f"ELSE 'desktop' END")
    # a field that one output reads many times (an IP's checks, a URL's parts) is computed once, in a column of
    # its own: written inline, every use was planned again (Sail gap 16)
    df = df.select("*", F.expr(ip_address_sql("j.context.ip")).alias("_ip"),
                   F.expr("regexp_replace(coalesce(j.context.page.url, j.properties.url), '[?#].*$', '')").alias("_page_url"),
                   F.expr("nullif(coalesce(j.context.page.referrer, j.properties.referrer), '')").alias("_referrer"),
                   F.expr(f"{ua} RLIKE '{BOT_PATTERN}'").alias("_bot"))

    def pseudonym(column_sql: str) -> str:
        return pseudonym_sql(column_sql, lambda c: keyed_pseudonym_sql(c, pii_key))

    parsed = df.select(
        "value", "source_file", "line_number", "landing_dt", "landing_hour", "ingested_at",
        reason.alias("reason"), detail.alias("detail"),
        F.expr(pseudonym("j.messageId")).alias("message_id"),
        F.expr("j.type").alias("type"),
        F.expr(scrub_sql("coalesce(j.event, j.name)")).alias("event"),
        F.expr(pseudonym("nullif(trim(j.anonymousId), '')")).alias("anonymous_id"),
        F.expr(pseudonym(clean_id("j.userId"))).alias("user_id"),
        F.expr(pseudonym(clean_id("j.previousId"))).alias("previous_id"),
        F.expr(f"j.userId IS NOT NULL AND {clean_id('j.userId')} IS NULL").alias("user_id_junk"),
        F.expr(event_time).alias("event_time"),
        F.expr(f"to_date({event_time})").alias("event_date"),
        F.expr(f"CASE WHEN {sane_sql(ts['timestamp'])} THEN {ts['timestamp']} END").alias("device_timestamp"),
        F.expr(f"CASE WHEN {sane_sql(ts['sentAt'])} THEN {ts['sentAt']} END").alias("sent_at"),
        F.expr(ts["receivedAt"]).alias("received_at"),
        F.expr(ts["receivedAt"]).alias("arrival_ts"),
        F.expr(scrub_sql("regexp_replace(coalesce(j.context.page.path, j.properties.path), '[?#].*$', '')")).alias("page_path"),
        F.expr(url_sql("_page_url")).alias("page_url"),
        F.expr(scrub_sql("coalesce(j.context.page.title, j.properties.title, CASE WHEN j.type = 'screen' THEN j.name END)"))
        .alias("page_title"),
        F.expr(url_sql("_referrer")).alias("referrer"),
        F.expr("try_parse_url(_referrer, 'HOST')").alias("referrer_host"),
        *[F.expr(scrub_sql(f"j.context.campaign.{k}")).alias(f"utm_{'campaign' if k == 'name' else k}")
          for k in ("name", "source", "medium", "content")],
        F.expr(pseudonym("j.properties.product_id")).alias("product_id"),
        F.expr(pseudonym("j.properties.sku")).alias("sku"),
        F.expr(scrub_sql("j.properties.category")).alias("category"),
        F.expr("j.properties.price").alias("price"),
        F.expr("j.properties.quantity").alias("quantity"),
        F.expr(pseudonym("j.properties.order_id")).alias("order_id"),
        F.expr("coalesce(j.properties.revenue, j.properties.total)").alias("revenue"),
        F.expr(scrub_sql("j.properties.coupon")).alias("coupon"),
        F.expr(scrub_sql("j.properties.query")).alias("search_query"),
        F.expr(scrub_sql("j.properties.share_via")).alias("share_via"),
        F.expr("j.properties.rating").alias("rating"),
        F.expr(scrub_sql("j.properties.method")).alias("login_method"),
        F.expr(hmac_sql("concat(lower(j.properties.method), ':', j.properties.provider_user_id)", pii_key)).alias(
            "login_provider_user_hash"),  # hashed as social_interactions hashes actor ids, so they join
        F.expr(hmac_sql("j.traits.email", pii_key)).alias("email_hash"),
        F.expr(hmac_sql(phone_sql("j.traits.phone"), pii_key)).alias("phone_hash"),
        F.expr(device).alias("device_class"),
        F.col("_bot").alias("is_bot"),
        F.expr(scrub_sql("j.context.userAgent")).alias("user_agent"),
        F.expr(ip_network_sql("_ip")).alias("ip_truncated"),
        F.expr(scrub_sql("j.context.library.name")).alias("library"),
        F.expr("sha2(regexp_replace(v, '\"(sentAt|receivedAt)\":\"[^\"]*\",?', ''), 256)").alias("fingerprint"),
    )
    return rules.apply(parsed, f"silver.{TABLE}")  # the row rules, in the same pass (schemas/rules.py)
