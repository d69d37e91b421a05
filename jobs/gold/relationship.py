"""``gold/customer_relationship``: one row per customer, from the timeline.

Two steps. ``customer_facts`` (rewritten for touched customers: appended to from their new
rows, or recomputed from their whole history, ``jobs.gold.curate``) holds what only depends
on a customer's own history. ``customer_relationship`` adds what depends on the date
and on everybody else (recency, RFM quintiles, lifecycle stage) and is rebuilt from
the facts each run (one row per customer, cheap).

Lifecycle stage, first rule that applies:
  lapsed    bought before, nothing for more than 180 days
  at_risk   bought before, nothing for more than 90 days
  advocate  bought, and reviewed, shared or mentioned the brand
  repeat    two or more kept orders
  customer  one kept order
  engaged   no order yet; 3+ interactions, or both a visit and a social interaction
  prospect  anyone else
A kept order is one not cancelled or refunded (``schemas.vocabulary.kept_order_sql``). RFM scores (1–5, 5 best) are quintiles
among customers with a kept order; ties are broken by customer key.
"""

from __future__ import annotations

import warnings
from datetime import date
from functools import reduce
from typing import TYPE_CHECKING

from schemas.vocabulary import ADVOCACY_EVENTS as ADVOCACY, PURCHASE_EVENTS as PURCHASES, UGC_EVENTS as UGC, kept_order_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

# RFM quintiles rank the whole population (one row per customer) in one window on purpose;
# the client's warning about an unpartitioned window says nothing useful here.
warnings.filterwarnings("ignore", message="WARN WindowExpression: No Partition Defined")
SOCIAL_INFLUENCE_DAYS = 7
AT_RISK_DAYS, LAPSED_DAYS = 90, 180
# the report shows at-risk and lapsed buyers at each of the last RISK_WEEKS weeks' ends (jobs.report.data): a week's
# end as early as RISK_WEEKS - 1 weeks before the day after the last interaction looks LAPSED_DAYS further back, so
# a customer's facts keep the dates they were active on in ACTIVE_DAYS before their last interaction
RISK_WEEKS = 12
ACTIVE_DAYS = LAPSED_DAYS + 7 * (RISK_WEEKS - 1)


def facts(timeline: "DataFrame", orders: "DataFrame", counted: str | None = None) -> "DataFrame":
    """Per-customer facts from complete histories. With ``counted`` (a boolean column of ``timeline``), only the rows
    where it holds are counted, while the rows before them still decide which purchases a social touch influenced:
    the facts of a customer's new rows, from those rows and the days before them (``append``). Pure."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    w = Window.partitionBy("customer_key").orderBy("seq").rowsBetween(Window.unboundedPreceding, 0)
    social = F.col("channel") == "social"
    t = timeline.withColumn("_last_social", F.max(F.when(social, F.col("occurred_at"))).over(w))
    purchase = F.col("event_type").isin(*PURCHASES)

    def within(last: str):
        return F.coalesce(F.col(last) >= F.col("occurred_at") - F.expr(f"INTERVAL {SOCIAL_INFLUENCE_DAYS} DAYS"),
                          F.lit(False))

    influenced = purchase & within("_last_social")
    c = F.lit(True) if counted is None else F.col(counted)
    flipped = F.lit(0)
    if counted is not None:  # earlier purchases a new social row (a late one) now influences: counted in the same
        # aggregation as the counted rows' facts (its own aggregation and join cost as much again)
        t = t.withColumn("_last_old_social", F.max(F.when(social & ~c, F.col("occurred_at"))).over(w))
        flipped = F.countDistinct(F.when(purchase & ~c & within("_last_social") & ~within("_last_old_social"),
                                         F.col("order_id")))
        timeline = timeline.where(c)
    kept = orders.where(kept_order_sql()).select(
        F.col("order_id").cast("string").alias("order_id"), F.col("total_price").alias("_kept_total"))
    t = t.join(kept, "order_id", "left")
    per_platform = _by_platform(timeline.where("channel = 'social'").groupBy("customer_key", "platform").count())

    def each(value, condition=None):  # the value on the counted rows (that meet ``condition``), else NULL
        return F.when(c if condition is None else c & condition, value)

    def how_many(condition):
        return F.sum(F.when(c & condition, 1).otherwise(0))

    base = t.groupBy("customer_key").agg(
        F.min(each(F.col("occurred_at"))).alias("first_seen"),
        F.max(each(F.col("occurred_at"))).alias("last_seen"),
        F.min_by(F.struct("channel", "platform"), each(F.col("seq"))).alias("_first"),  # seq is unique in a customer
        F.min(each(F.col("occurred_at"), purchase)).alias("first_purchase_at"),
        F.countDistinct(each(F.col("order_id"), purchase)).alias("orders"),
        F.countDistinct(each(F.col("order_id"), purchase & F.col("_kept_total").isNotNull())).alias("kept_orders"),
        F.sum(each(F.col("_kept_total"), purchase)).alias("revenue"),
        F.count(each(F.lit(1))).alias("interactions"),
        how_many(F.col("event_type") == "visit").alias("visits"),
        how_many(F.col("channel") == "social").alias("social_interactions"),
        how_many(F.col("event_type") == "share").alias("shares"),
        how_many(F.col("event_type") == "review").alias("reviews"),
        how_many(F.col("event_type").isin(*UGC)).alias("ugc"),
        how_many(F.col("event_type").isin(*ADVOCACY)).alias("advocacy"),
        (F.countDistinct(each(F.col("order_id"), influenced)) + flipped).alias("social_influenced_orders"),
        F.collect_set(each(F.col("occurred_date"))).alias("active_dates"),
    ).where("interactions > 0")  # a customer with counted rows
    return base.join(per_platform, "customer_key", "left").select(
        "customer_key", "first_seen", "last_seen",
        F.col("_first.channel").alias("acquisition_channel"), F.col("_first.platform").alias("acquisition_platform"),
        "first_purchase_at", "orders", "kept_orders", F.coalesce("revenue", F.lit(0).cast("decimal(18,2)")).alias("revenue"),
        *SUMMED[3:], *_platform_columns(), _recent("active_dates"), F.array_sort("active_dates").alias("history_dates"))


SUMMED = ("orders", "kept_orders", "revenue", "interactions", "visits", "social_interactions", "shares", "reviews",
          "ugc", "advocacy", "social_influenced_orders")


def _by_platform(counts: "DataFrame") -> "DataFrame":
    """(customer_key, platform, count) → per customer the map of counts and the platform with the most (``_top``)."""
    from pyspark.sql import functions as F

    return counts.groupBy("customer_key").agg(
        F.map_from_entries(F.sort_array(F.collect_list(F.struct("platform", "count")))).alias("engagement_by_platform"),
        F.max(F.struct("count", F.col("platform"))).alias("_top"))


def _recent(dates: str):
    """The dates (an array column) within ``ACTIVE_DAYS`` before the last interaction, in order."""
    from pyspark.sql import functions as F

    since = F.date_sub(F.to_date("last_seen"), ACTIVE_DAYS)
    return F.array_sort(F.filter(dates, lambda d: d >= since)).alias("active_dates")


def _platform_columns() -> list:
    from pyspark.sql import functions as F

    return [F.coalesce("engagement_by_platform", F.create_map().cast("map<string,bigint>")).alias("engagement_by_platform"),
            F.col("_top.platform").alias("preferred_platform")]


def append(stored: "DataFrame", added: "DataFrame") -> "DataFrame":
    """The facts of customers whose new rows all came after their stored facts' ``first_seen``, from the stored facts
    and the facts of the new rows (``facts(..., counted=...)``, which also counts the earlier purchases a new social
    row influences): what ``facts`` gives over the whole history, because every other fact is a first, a last or a
    count of rows (an order's purchase is one row, on one customer). Customers of ``added`` only. Pure."""
    from pyspark.sql import functions as F

    s = stored.join(added.select("customer_key"), "customer_key", "left_semi")
    o = s.select("customer_key", F.lit(True).alias("_old"), *[F.col(c).alias(f"_o_{c}") for c in s.columns
                                                              if c != "customer_key"])
    joined = added.join(o, "customer_key", "left")
    has_old = F.coalesce(F.col("_old"), F.lit(False))

    def older(c: str):
        return F.when(has_old, F.col(f"_o_{c}")).otherwise(F.col(c)).alias(c)

    per_platform = _platform_sums((s, 1), (added, 1))
    out = joined.select(
        "customer_key", older("first_seen"), F.greatest("_o_last_seen", "last_seen").alias("last_seen"),
        older("acquisition_channel"), older("acquisition_platform"),
        F.least("_o_first_purchase_at", "first_purchase_at").alias("first_purchase_at"),
        *[(F.coalesce(F.col(f"_o_{c}"), F.lit(0)) + F.col(c)).alias(c) for c in SUMMED],
        F.array_sort(F.array_union(F.coalesce("_o_history_dates", F.array().cast("array<date>")), "history_dates"))
        .alias("history_dates"))
    return _with_platforms_and_dates(out, per_platform)


def adjusted(stored: "DataFrame", changes: "DataFrame") -> "DataFrame":
    """``stored`` with ``kept_orders`` and ``revenue`` moved by ``changes`` (``customer_key``, ``kept_orders``,
    ``revenue``: what orders placed before counted then and count now, ``changes.order_adjustments``): a cancel or
    refund changes an order's purchase row, already counted, in nothing but whether and for how much it is kept.
    Every customer of ``stored``. Pure."""
    from pyspark.sql import functions as F

    d = changes.select("customer_key", F.col("kept_orders").alias("_dk"), F.col("revenue").alias("_dr"))
    out = stored.join(d, "customer_key", "left")
    moved = {"kept_orders": F.col("kept_orders") + F.coalesce("_dk", F.lit(0)),
             "revenue": F.col("revenue") + F.coalesce("_dr", F.lit(0))}
    return out.select(*[moved[c].alias(c) if c in moved else F.col(c) for c in stored.columns])


def replace_tail(stored: "DataFrame", before: "DataFrame", after: "DataFrame", since: "DataFrame") -> "DataFrame":
    """The facts of customers whose rows changed from a day on (``since``: ``customer_key``, ``since``), every one of
    them with stored facts and rows on days before it (so their first row is among those, unchanged): the stored
    facts less the facts of their rows from ``since`` on as they were (``before``) plus as they are (``after``), each
    ``facts(..., counted=...)`` with those rows counted and the days before read for the social touches. Counts
    subtract; first seen and acquisition stay; the last and, when it was on or after ``since``, the first purchase
    are ``after``'s; the dates are the stored ones before ``since`` and ``after``'s. A purchase before
    ``since`` keeps its social influence: a touch after it cannot reach back. Only right for customers with rows
    left from ``since`` on (``tail_unknown`` lists the others: their last interaction is not known). Customers of
    ``since`` and ``after``. Pure."""
    from pyspark.sql import functions as F

    s = stored.join(since, "customer_key")
    b = before.select("customer_key", *[F.col(c).alias(f"_b_{c}") for c in SUMMED])
    a = after.select("customer_key", F.col("last_seen").alias("_a_last"), F.col("first_purchase_at").alias("_a_fp"),
                     F.col("history_dates").alias("_a_history"),
                     *[F.col(c).alias(f"_a_{c}") for c in SUMMED])
    joined = s.join(a, "customer_key").join(b, "customer_key", "left")
    per_platform = _platform_sums((s, 1), (before, -1), (after, 1))
    out = joined.select(
        "customer_key", "first_seen", F.col("_a_last").alias("last_seen"), "acquisition_channel", "acquisition_platform",
        F.when(F.to_date("first_purchase_at") < F.col("since"), F.col("first_purchase_at")).otherwise(F.col("_a_fp"))
        .alias("first_purchase_at"),
        *[(F.col(c) - F.coalesce(F.col(f"_b_{c}"), F.lit(0)) + F.coalesce(F.col(f"_a_{c}"), F.lit(0))).alias(c)
          for c in SUMMED],
        F.array_sort(F.array_union(F.filter("history_dates", lambda d: d < F.col("since")), "_a_history"))
        .alias("history_dates"))
    return _with_platforms_and_dates(out, per_platform)


def _platform_sums(*signed: "tuple[DataFrame, int]") -> "DataFrame":
    """``_by_platform`` of facts' ``engagement_by_platform`` maps added (sign 1) or taken away (-1); a platform whose
    count comes to nothing is left out, as ``facts`` leaves out a platform without rows."""
    from pyspark.sql import functions as F

    entries = reduce(lambda x, y: x.unionByName(y), [
        df.select("customer_key", F.explode("engagement_by_platform").alias("platform", "count"))
        .withColumn("count", F.col("count") * sign) for df, sign in signed])
    return _by_platform(entries.groupBy("customer_key", "platform").agg(F.sum("count").alias("count"))
                        .where("count > 0"))


def _with_platforms_and_dates(out: "DataFrame", per_platform: "DataFrame") -> "DataFrame":
    """Combined facts (every column up to ``SUMMED``'s, and ``history_dates``) with the per-platform columns and the
    active dates (the history's within ``ACTIVE_DAYS`` of the last interaction), in ``facts``' column order."""
    return out.join(per_platform, "customer_key", "left").select(
        *[c for c in out.columns if c != "history_dates"], *_platform_columns(), _recent("history_dates"),
        "history_dates")


def tail_unknown(after: "DataFrame", since: "DataFrame") -> "DataFrame":
    """The customers of ``since`` that ``replace_tail`` cannot give: no rows left from their day on, so their last
    interaction is one before it, which no stored fact holds. Their whole history is read instead. Pure."""
    return since.select("customer_key").join(after, "customer_key", "left_anti")


def score(facts_df: "DataFrame", as_of: date) -> "DataFrame":
    """Recency, RFM and lifecycle stage as of a date. Pure."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    recency = F.datediff(F.lit(as_of), F.to_date("last_seen"))
    df = facts_df.drop("active_dates", "history_dates").withColumn("days_since_last_interaction", recency).withColumn(
        "average_order_value", F.when(F.col("kept_orders") > 0, F.round(F.col("revenue") / F.col("kept_orders"), 2)))
    buyers = df.where("kept_orders > 0")
    scored = (buyers
              .withColumn("r_score", F.ntile(5).over(Window.orderBy(F.desc("days_since_last_interaction"), "customer_key")))
              .withColumn("f_score", F.ntile(5).over(Window.orderBy("kept_orders", "customer_key")))
              .withColumn("m_score", F.ntile(5).over(Window.orderBy("revenue", "customer_key")))
              .select("customer_key", "r_score", "f_score", "m_score"))
    df = df.join(scored, "customer_key", "left")
    stage = (F.when((F.col("kept_orders") > 0) & (F.col("days_since_last_interaction") > LAPSED_DAYS), "lapsed")
             .when((F.col("kept_orders") > 0) & (F.col("days_since_last_interaction") > AT_RISK_DAYS), "at_risk")
             .when((F.col("kept_orders") > 0) & (F.col("advocacy") > 0), "advocate")
             .when(F.col("kept_orders") >= 2, "repeat")
             .when(F.col("kept_orders") == 1, "customer")
             .when((F.col("interactions") >= 3) | ((F.col("visits") > 0) & (F.col("social_interactions") > 0)), "engaged")
             .otherwise("prospect"))
    return df.withColumn("lifecycle_stage", stage).withColumn(
        "rfm_segment", F.when(F.col("r_score").isNotNull(), F.concat_ws("", "r_score", "f_score", "m_score"))).withColumn(
        "as_of", F.lit(as_of))
