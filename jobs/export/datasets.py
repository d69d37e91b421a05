"""What the exports hold: pure transforms from gold (and silver order lines) to each dataset.

- ``interactions``: one row per customer × product with an implicit-feedback ``weight``:
  the sum over the customer's signals with that product of
  ``weight(signal) * 0.5 ** (age_days / half_life_days)``, ``age_days`` counted from the
  signal's date to ``as_of``. Signals are timeline rows with a product (views, wishlist,
  carts, shares, reviews, social likes/comments/pins/repins/mentions) plus one
  ``purchase`` per product line of an order that was not cancelled or refunded.
  Weights and half-life are settings (``RAPPORT_EXPORT_WEIGHTS``, ``…_HALF_LIFE_DAYS``).
- ``customer_features``: the relationship profile, column by column from an allow-list,
  so a column added to gold later is not exported until someone decides it may be.
- ``timelines``: one JSON object per customer with their ordered interactions.

No dataset carries an email, phone, IP address, social handle or the identifier an
interaction was attributed through; customers are their ``customer_key`` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Mapping

from schemas.vocabulary import PURCHASE_EVENTS, kept_order_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

FEATURE_COLUMNS = (
    "customer_key", "lifecycle_stage", "rfm_segment", "r_score", "f_score", "m_score", "first_seen", "last_seen",
    "days_since_last_interaction", "acquisition_channel", "acquisition_platform", "first_purchase_at", "orders",
    "kept_orders", "revenue", "average_order_value", "interactions", "visits", "social_interactions", "shares",
    "reviews", "ugc", "advocacy", "social_influenced_orders", "engagement_by_platform", "preferred_platform", "as_of",
)
TIMELINE_EVENT_FIELDS = ("seq", "occurred_at", "channel", "platform", "event_type", "summary", "product_id",
                         "campaign", "order_id", "is_milestone", "milestone")


@dataclass(frozen=True)
class Dataset:
    name: str
    sources: tuple[str, ...]  # "<layer>.<table>" it is built from; their versions go into the manifest
    always_jsonl: bool = False


DATASETS = {
    "interactions": Dataset("interactions", ("gold.product_signals", "gold.interactions", "silver.identity_map",
                                             "gold.customer_relationship", "silver.order_lines")),
    "customer_features": Dataset("customer_features", ("gold.customer_relationship",)),
    "timelines": Dataset("timelines", ("gold.interactions", "silver.identity_map"), always_jsonl=True),
}
DEFAULT_DATASETS = ("interactions", "customer_features")


def interactions(timeline: "DataFrame", order_lines: "DataFrame", weights: Mapping[str, float],
                 half_life_days: int, as_of: date) -> "DataFrame":
    """Customer × product implicit feedback, time-decayed to ``as_of``. Pure."""
    from pyspark.sql import functions as F

    weighed = {s: w for s, w in weights.items() if w > 0}
    events = [s for s in weighed if s != "purchase"]
    signals = (timeline.where(F.col("product_id").isNotNull() & F.col("event_type").isin(*events))
               .select("customer_key", "product_id", F.col("event_type").alias("signal"), "occurred_at"))
    if "purchase" in weighed:
        kept_lines = (order_lines.where(kept_order_sql())
                      .select(F.col("order_id").cast("string").alias("order_id"), "product_id")
                      .where("product_id IS NOT NULL").distinct())
        bought = (timeline.where(F.col("event_type").isin(*PURCHASE_EVENTS))
                  .select("customer_key", "order_id", "occurred_at").join(kept_lines, "order_id")
                  .select("customer_key", "product_id", F.lit("purchase").alias("signal"), "occurred_at"))
        signals = signals.unionByName(bought)
    weight_of = F.expr("CASE " + " ".join(f"WHEN signal = '{s}' THEN {float(w)!r}" for s, w in weighed.items()) + " END")
    age = F.greatest(F.datediff(F.lit(as_of), F.to_date("occurred_at")), F.lit(0))
    decayed = weight_of * F.pow(F.lit(0.5), age / F.lit(float(half_life_days)))
    return (signals.groupBy("customer_key", "product_id")
            .agg(F.round(F.sum(decayed), 6).alias("weight"), F.count(F.lit(1)).alias("signals"),
                 F.sum(F.when(F.col("signal") == "purchase", 1).otherwise(0)).alias("purchases"),
                 F.max("occurred_at").alias("last_interaction_at"))
            .withColumn("as_of", F.lit(as_of)))


def interactions_from_signals(signals: "DataFrame", identity: "DataFrame", order_lines: "DataFrame",
                              half_life_days: int, scored_from: date, as_of: date) -> "DataFrame":
    """``interactions`` from ``gold.product_signals`` (``jobs.gold.affinity``) and the identity in force: the same
    rows, read from the customers' product pairs instead of their histories. Pure."""
    from pyspark.sql import functions as F

    from schemas.affinity import current

    signals = current(signals)
    kept_lines = (order_lines.where(kept_order_sql())
                  .select(F.col("order_id").cast("string").alias("item"), "product_id")
                  .where("product_id IS NOT NULL").distinct())
    counted = ("identifier", "product_id", "score", "signals", "purchases", "last_at")
    pairs = (signals.where("kind = 'signal'").select("*", F.col("item").alias("product_id"),
                                                     F.lit(0).cast("bigint").alias("purchases")).select(*counted)
             .unionByName(signals.where("kind = 'purchase'").join(kept_lines, "item")
                          .select("*", F.col("signals").alias("purchases")).select(*counted)))
    ids = identity.where("NOT is_shared").select("identifier", "customer_key")
    decay = F.pow(F.lit(0.5), F.lit(float((as_of - scored_from).days) / half_life_days))
    return (pairs.join(ids, "identifier").groupBy("customer_key", "product_id")
            .agg(F.sum("score").alias("_score"), F.coalesce(F.sum("signals"), F.lit(0).cast("bigint")).alias("signals"),
                 F.sum("purchases").alias("purchases"), F.max("last_at").alias("last_interaction_at"))
            .select("customer_key", "product_id", F.round(F.col("_score").cast("double") * decay, 6).alias("weight"),
                    "signals", "purchases", "last_interaction_at", F.lit(as_of).alias("as_of")))


def customer_features(relationship: "DataFrame") -> "DataFrame":
    """The relationship profile, allow-listed columns only. Pure."""
    return relationship.select(*FEATURE_COLUMNS)


def timelines(timeline: "DataFrame") -> "DataFrame":
    """One row per customer: ``events``, their interactions ordered by ``seq``. Pure."""
    from pyspark.sql import functions as F

    event = F.struct(*[F.col(c) for c in TIMELINE_EVENT_FIELDS])
    return (timeline.groupBy("customer_key")
            .agg(F.count(F.lit(1)).alias("interactions"), F.sort_array(F.collect_list(event)).alias("events")))

