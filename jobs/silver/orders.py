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

from jobs.silver.common import FUTURE_TOLERANCE_SECONDS, first_failure, hmac_sql
from schemas import orders as schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

TABLE = "order_status_history"
KEYS = ("webhook_id",)
AMOUNTS = ("total_price", "subtotal_price", "total_tax", "total_discounts")


def _channel_sql() -> str:
    cases = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in schema.CHANNELS.items())
    return f"CASE lower(j.order.source_name) {cases} ELSE 'web' END"


def parse(bronze: "DataFrame", pii_key: str, late_days: int) -> "DataFrame":
    from pyspark.sql import functions as F

    df = bronze.withColumn("j", F.from_json("value", schema.EVENT))
    updated, received = "try_cast(j.order.updated_at AS TIMESTAMP)", "try_cast(j.received_at AS TIMESTAMP)"
    dec = {a: f"try_cast(j.order.{a} AS DECIMAL(18,2))" for a in AMOUNTS}
    bad_amount = " OR ".join(f"(j.order.{a} IS NOT NULL AND {dec[a]} IS NULL)" for a in AMOUNTS)
    negative = " OR ".join(f"{dec[a]} < 0" for a in AMOUNTS) + \
        " OR exists(j.order.line_items, li -> try_cast(li.price AS DECIMAL(18,2)) < 0)"
    reason, detail = first_failure([
        ("missing_ids", "j.order.id IS NULL OR coalesce(trim(j.webhook_id), '') = ''",
         "CASE WHEN j.order.id IS NULL THEN 'order.id is missing' ELSE 'webhook_id is missing' END"),
        ("wrong_types", "exists(j.order.line_items, li -> li.quantity IS NULL) OR " + bad_amount,
         "'a line item quantity is not a whole number, or an amount is not a decimal'"),
        ("bad_timestamp", f"{updated} IS NULL OR {received} IS NULL OR try_cast(j.order.created_at AS TIMESTAMP) IS NULL",
         "concat('unparseable or missing time: updated_at=', coalesce(j.order.updated_at, 'null'), ', received_at=', "
         "coalesce(j.received_at, 'null'))"),
        ("negative_amount", negative, "concat('negative amount: total_price=', j.order.total_price)"),
        ("future_timestamp", f"{updated} > {received} + INTERVAL {FUTURE_TOLERANCE_SECONDS} SECONDS",
         "concat('updated_at ', j.order.updated_at, ' is after delivery ', j.received_at)"),
        ("too_late", f"{updated} < {received} - INTERVAL {late_days} DAYS",
         f"concat('delivered more than {late_days} days after the update (RAPPORT_LATE_DAYS)')"),
    ])
    status = ("CASE WHEN j.order.cancelled_at IS NOT NULL THEN 'cancelled' "
              "WHEN j.order.financial_status IN ('refunded', 'partially_refunded') THEN j.order.financial_status "
              "WHEN j.order.fulfillment_status = 'fulfilled' THEN 'fulfilled' "
              "ELSE coalesce(j.order.financial_status, 'pending') END")
    return df.select(
        "value", "source_file", "line_number", "landing_dt", "landing_hour", "ingested_at",
        reason.alias("reason"), detail.alias("detail"),
        F.expr("j.webhook_id").alias("webhook_id"),
        F.expr("j.topic").alias("topic"),
        F.expr("j.order.id").alias("order_id"),
        F.expr("j.order.name").alias("order_name"),
        F.expr(hmac_sql("j.order.email", pii_key)).alias("email_hash"),
        F.expr(hmac_sql("j.order.phone", pii_key)).alias("phone_hash"),
        F.expr("j.order.customer.id").alias("shop_customer_id"),
        F.expr("try_cast(j.order.created_at AS TIMESTAMP)").alias("created_at"),
        F.expr(updated).alias("updated_at"),
        F.expr(f"to_date({updated})").alias("event_date"),
        F.expr("try_cast(j.order.cancelled_at AS TIMESTAMP)").alias("cancelled_at"),
        F.expr("j.order.cancel_reason").alias("cancel_reason"),
        F.expr("j.order.financial_status").alias("financial_status"),
        F.expr("j.order.fulfillment_status").alias("fulfillment_status"),
        F.expr(status).alias("status"),
        F.expr("j.order.currency").alias("currency"),
        *[F.expr(dec[a]).alias(a) for a in AMOUNTS],
        F.expr("j.order.source_name").alias("source_name"),
        F.expr(_channel_sql()).alias("channel"),
        F.expr("j.order.location_id").alias("location_id"),
        F.expr("transform(j.order.discount_codes, d -> d.code)").alias("discount_codes"),
        F.expr("parse_url(concat('https://shop', j.order.landing_site), 'QUERY', 'utm_campaign')").alias("utm_campaign"),
        F.expr("parse_url(j.order.referring_site, 'HOST')").alias("referring_host"),
        F.expr("transform(j.order.line_items, li -> named_struct('line_id', li.id, 'product_id', li.product_id, "
               "'sku', li.sku, 'title', li.title, 'quantity', li.quantity, "
               "'price', try_cast(li.price AS DECIMAL(18,2))))").alias("line_items"),
        F.expr(received).alias("received_at"),
        F.expr(received).alias("arrival_ts"),
        F.expr("sha2(value, 256)").alias("fingerprint"),
    )


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
