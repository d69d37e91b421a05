"""Silver orders: Shopify order webhooks → ``order_status_history``, ``orders`` (current) and ``order_lines``.

Contract
- ``order_status_history``: one row per distinct delivery (key ``webhook_id``), so every
  state an order passed through is kept, whatever order the deliveries came in.
- ``orders``: the current state per ``order_id`` via MERGE; an update is applied only
  when its ``updated_at`` is newer, so a late, older delivery never overwrites a newer one.
- ``order_lines``: the line items of each order's current state.
- Amounts are decimals; negative amounts and non-numeric quantities are quarantined.
  Emails and phones are HMAC-hashed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.pii.keyring import hmac_sql
from jobs.pii.keyring import pseudonym_sql as keyed_pseudonym_sql
from jobs.pii.scrub import pseudonym_sql, scrub_sql
from jobs.silver import rules
from jobs.silver.common import first_failure, long_ids, not_object, phone_sql, time_checks
from schemas import orders as schema
from schemas.rules import FUTURE_TOLERANCE_SECONDS
from schemas.vocabulary import MAX_AMOUNT

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.config import Config

TABLE = "order_status_history"
KEYS = ("webhook_id",)
# the identifiers of a row, as silver.identity_map names them (what a suppression matches)
IDENTIFIERS = ("concat('order:', cast(order_id AS STRING))", "concat('email:', email_hash)", "concat('phone:', phone_hash)",
               "concat('shop:', cast(shop_customer_id AS STRING))")
AMOUNTS = ("total_price", "subtotal_price", "total_tax", "total_discounts")


def _channel_sql() -> str:
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in schema.CHANNELS.items())
    return f"CASE lower(o.source_name) {cases} ELSE 'web' END"


def parse(bronze: "DataFrame", cfg: "Config") -> "DataFrame":
    """Typed deliveries of every form plus ``reason``/``detail``, ``fingerprint`` and ``arrival_ts``. Pure."""
    from pyspark.sql import functions as F

    pii_key, late_days, earliest = cfg.pii_keys(), cfg.late_days, cfg.earliest()
    root = F.struct(*[F.col(f"j.{f.name}").alias(f.name) for f in schema.ORDER.fields])
    df = (bronze.withColumn("j", F.from_json("value", schema.ROOT))
          .withColumn("o", F.coalesce(F.col("j.body"), F.col("j.order"), root))
          .withColumn("form", F.expr("CASE WHEN j.body IS NOT NULL THEN 'webhook' WHEN j.order IS NOT NULL "
                                     "THEN 'envelope' ELSE 'order' END")))
    raw_id = ("coalesce(get_json_object(value, '$.body.id'), get_json_object(value, '$.order.id'), "
              "get_json_object(value, '$.id'))")
    order_id = f"try_cast(regexp_extract({raw_id}, '^(gid://shopify/Order/)?([0-9]{{1,19}})$', 2) AS BIGINT)"
    updated, created = "try_cast(o.updated_at AS TIMESTAMP)", "try_cast(o.created_at AS TIMESTAMP)"
    received = "try_cast(coalesce(j.received_at, j.triggered_at) AS TIMESTAMP)"
    dec = {a: f"try_cast(o.{a} AS DECIMAL(18,2))" for a in AMOUNTS}
    bad_amount = " OR ".join(f"(o.{a} IS NOT NULL AND ({dec[a]} IS NULL OR {dec[a]} > {MAX_AMOUNT}))" for a in AMOUNTS)
    negative = " OR ".join(f"{dec[a]} < 0" for a in AMOUNTS) + \
        " OR exists(o.line_items, li -> try_cast(li.price AS DECIMAL(18,2)) < 0)"
    df, reason, detail = first_failure(df, [
        ("missing_ids", f"{order_id} IS NULL",
         f"CASE WHEN {raw_id} IS NULL THEN 'the order has no id' ELSE concat('order id ', substr({raw_id}, 1, 40), "
         "' is not a whole number (or a Shopify order gid)') END"),
        long_ids("j.webhook_id", "j.event_id"),
        not_object("body"), not_object("order"),
        ("wrong_types", "exists(o.line_items, li -> li.quantity IS NULL OR li.quantity < 0 OR li.quantity > 1000000) "
                        "OR " + bad_amount,
         "'a line item quantity is not a whole number from 0 to 1000000, or an amount is not a decimal up to 1e9'"),
        ("bad_timestamp", f"{updated} IS NULL OR {created} IS NULL OR "
                          f"(coalesce(j.received_at, j.triggered_at) IS NOT NULL AND {received} IS NULL)",
         "concat('unparseable or missing time: created_at=', coalesce(substr(o.created_at, 1, 40), 'null'), "
         "', updated_at=', coalesce(substr(o.updated_at, 1, 40), 'null'))"),
        *time_checks("received_at", received, earliest, arrival=True),
        *time_checks("updated_at", updated, earliest, arrival=True),
        *time_checks("created_at", created, earliest, arrival=True),
        ("negative_amount", negative, "concat('negative amount: total_price=', substr(o.total_price, 1, 40))"),
        ("future_timestamp", f"{updated} > {received} + INTERVAL {FUTURE_TOLERANCE_SECONDS} SECONDS",
         "concat('updated_at ', o.updated_at, ' is after delivery ', coalesce(j.received_at, j.triggered_at))"),
        ("too_late", f"{updated} < {received} - INTERVAL {late_days} DAYS",
         f"concat('delivered more than {late_days} days after the update (RAPPORT_LATE_DAYS)')"),
    ])
    status = ("CASE WHEN o.cancelled_at IS NOT NULL THEN 'cancelled' "
              "WHEN o.financial_status IN ('refunded', 'partially_refunded') THEN o.financial_status "
              "WHEN o.fulfillment_status = 'fulfilled' THEN 'fulfilled' "
              "ELSE coalesce(o.financial_status, 'pending') END")

    def pseudonym(column_sql: str) -> str:
        return pseudonym_sql(column_sql, lambda c: keyed_pseudonym_sql(c, pii_key))

    delivery = (f"coalesce({pseudonym('j.webhook_id')}, concat(cast({order_id} AS STRING), '@', "
                f"date_format({updated}, \"yyyy-MM-dd'T'HH:mm:ss.SSS'Z'\")))")
    parsed = df.select(
        "value", "source_file", "line_number", "landing_dt", "landing_hour", "ingested_at",
        reason.alias("reason"), detail.alias("detail"),
        F.expr(delivery).alias("webhook_id"),
        F.expr("substr(j.topic, 1, 64)").alias("topic"),
        F.expr(order_id).alias("order_id"),
        F.expr(scrub_sql("o.name")).alias("order_name"),
        F.expr(hmac_sql("o.email", pii_key)).alias("email_hash"),
        F.expr(hmac_sql(phone_sql("o.phone"), pii_key)).alias("phone_hash"),
        F.expr("o.customer.id").alias("shop_customer_id"),
        F.expr(created).alias("created_at"),
        F.expr(updated).alias("updated_at"),
        F.expr(f"to_date({updated})").alias("event_date"),
        F.expr("try_cast(o.cancelled_at AS TIMESTAMP)").alias("cancelled_at"),
        F.expr(scrub_sql("o.cancel_reason")).alias("cancel_reason"),
        F.expr("substr(o.financial_status, 1, 64)").alias("financial_status"),
        F.expr("substr(o.fulfillment_status, 1, 64)").alias("fulfillment_status"),
        F.expr(status).alias("status"),
        F.expr("substr(o.currency, 1, 8)").alias("currency"),
        *[F.expr(dec[a]).alias(a) for a in AMOUNTS],
        F.expr("substr(o.source_name, 1, 64)").alias("source_name"),
        F.expr(_channel_sql()).alias("channel"),
        F.expr("o.location_id").alias("location_id"),
        F.expr(f"transform(o.discount_codes, d -> {scrub_sql('d.code')})").alias("discount_codes"),
        F.expr(scrub_sql("try_parse_url(concat('https://shop', o.landing_site), 'QUERY', 'utm_campaign')")).alias("utm_campaign"),
        F.expr("try_parse_url(o.referring_site, 'HOST')").alias("referring_host"),
        F.expr(f"transform(o.line_items, li -> named_struct('line_id', li.id, 'product_id', {pseudonym('li.product_id')}, "
               f"'sku', {pseudonym('li.sku')}, 'title', {scrub_sql('li.title')}, 'quantity', li.quantity, "
               "'price', try_cast(li.price AS DECIMAL(18,2))))").alias("line_items"),
        F.expr(f"coalesce({received}, {updated})").alias("received_at"),
        F.expr(f"coalesce({received}, {updated})").alias("arrival_ts"),
        F.expr("sha2(to_json(o), 256)").alias("fingerprint"),
    )
    return rules.apply(parsed, f"silver.{TABLE}")  # the row rules, in the same pass (schemas/rules.py)


ORDER_COLUMNS = (
    "order_id", "order_name", "email_hash", "phone_hash", "shop_customer_id", "created_at", "updated_at", "cancelled_at",
    "cancel_reason", "financial_status", "fulfillment_status", "status", "currency", *AMOUNTS, "source_name", "channel",
    "location_id", "discount_codes", "utm_campaign", "referring_host", "line_items",
)


def latest_states(history: "DataFrame") -> "DataFrame":
    """The newest state per order among the given deliveries (ties: latest delivery, then webhook id). Pure."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("order_id").orderBy(F.desc("updated_at"), F.desc("received_at"), F.desc("webhook_id"))
    return (history.withColumn("_n", F.row_number().over(w)).where("_n = 1")
            .select(*ORDER_COLUMNS, F.to_date("created_at").alias("created_date")))


def lines_of(orders: "DataFrame") -> "DataFrame":
    """One row per line item of each order's current state. Pure."""
    from pyspark.sql import functions as F

    return orders.select("order_id", "created_date", "currency", "status", F.explode("line_items").alias("li")).select(
        "order_id", "created_date", F.col("li.line_id").alias("line_id"), F.col("li.product_id").alias("product_id"),
        F.col("li.sku").alias("sku"), F.col("li.title").alias("title"), F.col("li.quantity").alias("quantity"),
        F.col("li.price").alias("price"), (F.col("li.price") * F.col("li.quantity")).alias("line_total"), "currency",
        "status",
    )
