"""What an incremental curate must rebuild, found from what changed since the last successful curate (the versions it
read and wrote, recorded in ``ops.runs``), never by scanning history:

- the dates of ``gold.interactions`` whose silver rows changed: the partitions of the data files added or removed
  in the silver sources since the versions it read (the Delta log, no data read), the dates of an order's other
  rows when a late status changes them, and the dates of social interactions on campaign posts that changed;
- the customers whose facts change, and from which day (``touched``): those of the identifiers on interaction rows
  that came out different in what facts read, under the identity before and now, both sides of every identifier
  whose customer or shared flag moved, and the customers of orders placed before whose kept state or total changed.

``jobs.gold.curate`` writes; the contract is described there."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from functools import reduce
from typing import TYPE_CHECKING

from jobs.gold import timeline
from jobs.lake import Lake, partition_date, partitions_sql, sql_literal
from jobs.runs.window import Window
from jobs.sql_text import in_list
from schemas.tables import table
from schemas.vocabulary import PURCHASE_EVENTS, kept_order_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


REFERENCE = {"silver.campaign_posts": ("platform", "post_id", "campaign_id"),
             "silver.products": ("product_id", "title", "category")}
# the silver tables interactions come from, by the date column they are partitioned by
SOURCES = {"silver.clickstream_events": "event_date", "silver.sessions": "session_date",
           "silver.social_interactions": "event_date", "silver.order_status_history": "event_date"}
READ_SINCE = ("silver.identity_map", "silver.orders", "silver.campaigns", *SOURCES)  # what the next run compares against


def version_then(lake: Lake, name: str, previous: dict[str, int] | None) -> "DataFrame | None":
    """``name`` as the last successful curate read it, or None when that is not known or no longer readable."""
    before = (previous or {}).get(name)
    if before is None or before < 0 or not lake.exists(name) or before > (lake.version(name) or 0):
        return None
    try:
        then = lake.read(name, version=before)
        then.limit(1).count()
    except Exception:  # that version was vacuumed: the caller rebuilds everything
        return None
    return then


def orders_then_and_now(lake: Lake, previous: dict[str, int] | None) -> "tuple[DataFrame, DataFrame | None] | None":
    """``silver.orders`` now and as the last curate read it (None for the latter when that is not known), for
    ``touched`` to compare: only the partitions written since are read, on both sides, since every other partition
    holds the same rows then and now (an order whose creation date moved is in both partitions it touched). None
    when the lake has no orders."""
    name = "silver.orders"
    if not lake.exists(name):
        return None
    now, then = lake.read(name), version_then(lake, name, previous)
    if then is None:
        return now, None
    parts = lake.changed_partitions(name, previous[name])
    if parts is None:  # a commit since is no longer in the log: compare every partition
        return now, then
    where = partitions_sql(table(name).partitioned_by, parts)
    return now.where(where), then.where(where)


def partition_dates(lake: Lake, name: str, previous: dict[str, int]) -> set[date] | None:
    """The dates (a date-partitioned table's partitions) whose rows changed since the version ``previous`` names:
    every date it has when it first landed since, none when it does not exist; None when a commit since is no
    longer in the log. From the log only."""
    if not lake.exists(name):
        return set()
    if name not in previous:  # a table that first landed since: every date it has
        return lake.dates(name)
    parts = lake.changed_partitions(name, previous[name])
    if parts is None:
        return None
    return {partition_date(v[0]) for v in parts if v[0] is not None}


def changed_dates(lake: Lake, previous: dict[str, int] | None) -> list[date] | None:
    """The dates whose interactions can differ from what the last curate wrote; None when that cannot be known
    (no successful curate recorded its versions, or a version it read is no longer in the log): rebuild all."""
    if not previous:
        return None
    dates: set[date] = set()
    for name in SOURCES:
        changed_here = partition_dates(lake, name, previous)
        if changed_here is None:
            return None
        dates |= changed_here
    orders = _order_dates(lake, previous, dates)
    if orders is None:
        return None
    posts = changed(lake, "silver.campaign_posts", previous)
    return sorted(dates | orders | (_dates_of_changed_posts(lake, posts) if posts is not None else set()))


def _order_dates(lake: Lake, previous: dict[str, int], dates: set[date]) -> set[date] | None:
    """Dates of an order's interactions that a status landed since changed, outside ``dates``: a status delivered
    late but earlier than the order's first one changes which row is the purchase (its type), and an earlier
    delivery of a status moves its row. The orders' rows are compared as they were and are (a listing of dates).

    Only the dates from the touched orders' earliest creation date on are read, not the table's history. Rows of
    earlier dates are the same then and now (every date whose rows changed is in ``dates``), and a row's type and
    time depend only on the order's rows before it: cutting both sides at the same date can only add dates (an
    order with rows before the cut looks placed at its first row after it, then and now alike), never hide one. An
    order's deliveries are not earlier than its creation, so for real orders the cut leaves out none of their
    rows; a delivery dated before its order's creation costs extra dates, never a missed one."""
    from pyspark.sql import functions as F

    name = "silver.order_status_history"
    if not lake.exists(name) or not dates:
        return set()
    then = version_then(lake, name, previous)
    if then is None:
        return None if name in previous else set()  # new since: every date it has is in ``dates`` already
    now = lake.read(name)
    inside = now.where(f"event_date {timeline.dates_sql(sorted(dates))}")
    created = inside.select(F.min(F.to_date("created_at")).alias("d")).first().d  # one row
    cut = f"event_date >= {sql_literal(min(dates) if created is None else min(min(dates), created))}"
    touched = inside.select("order_id").distinct()
    a = timeline.order_rows(now.where(cut).join(touched, "order_id", "left_semi"))
    b = timeline.order_rows(then.where(cut).join(touched, "order_id", "left_semi"))
    differ = a.exceptAll(b).unionByName(b.exceptAll(a))
    return {r.d for r in differ.select(F.to_date("occurred_at").alias("d")).distinct().collect()  # a listing of dates
            if r.d is not None}


def _dates_of_changed_posts(lake: Lake, posts: "DataFrame") -> set[date]:
    """The dates of social interactions on a post whose campaign changed (an extract that landed late, or anew)."""
    changed_ = posts.selectExpr("platform AS _pp", "post_id AS _pid").distinct()
    social = lake.read_or_empty("silver.social_interactions").where("target_type = 'post'")
    hit = social.join(changed_, (social.platform == changed_._pp) & (social.target_id == changed_._pid))
    return {r.event_date for r in hit.select("event_date").distinct().collect()}  # a listing of dates


@dataclass
class Customers:
    """The customers whose facts a run changes (``touched``), by how their new facts are found."""
    how: "DataFrame"  # (customer_key, how, since): each customer once, ``how`` one of HOW
    adjusted: "DataFrame"  # (customer_key, kept_orders, revenue): moved by orders placed before (``order_adjustments``)

    def of(self, how: str) -> "DataFrame":
        """``customer_key`` of the customers recomputed ``how`` (with ``since`` for "since")."""
        rows = self.how.where(f"how = '{how}'")
        return rows.select("customer_key", "since") if how == "since" else rows.select("customer_key")


# whole: from their whole history; appended: from their stored facts and their new rows (``relationship.append``);
# since: their rows from that day on replaced (``relationship.replace_tail``); gone: keys no identifier has any more
# (merged into another), their facts go
HOW = ("whole", "appended", "since", "gone")


def touched(identity: "DataFrame", then: "DataFrame | None", differ: "DataFrame | None",
            facts: "DataFrame | None", orders: "tuple[DataFrame, DataFrame | None] | None" = None,
            from_day: bool = True) -> Customers:
    """The customers whose facts can have changed, and how their facts are recomputed (``Customers``).

    Every change is dated: a row added or removed (``differ``, ``_side``) on its day, for its customer now and, when
    removed, then; an identifier whose customer moved since ``then``, for both sides, on the day its old customer was
    first seen (its rows were that customer's, all from then on). A customer whose only changes are added rows after
    its stored ``first_seen`` is ``appended``; one with another change is recomputed ``since`` its earliest change's
    day when that is after the day of its stored ``first_seen`` (so its first row, and every row before the day,
    stand), else ``whole``, as is every side of an identifier found shared or no longer shared (its rows were
    counted for nobody, or stop being). A key no identifier has now is ``gone``. An order placed before whose kept
    state or total changed moves its customer's ``kept_orders`` and ``revenue`` (``adjusted``); without what the
    orders were (``orders[1]`` None), any new status of an order placed before makes its customer ``whole``.

    Without ``then`` (what the last run read is not known) every customer of ``differ`` is whole; without
    ``from_day`` (the stored facts may not be the stored rows', a run killed half-way) every changed one is.
    Proportional to the identity map and the batch. Pure."""
    from pyspark.sql import functions as F

    key = identity.limit(0).select("customer_key")
    adjusted = key.select("customer_key", F.lit(0).cast("bigint").alias("kept_orders"),
                          F.lit(0).cast("decimal(18,2)").alias("revenue"))

    def each(keys: "DataFrame", how: str) -> "DataFrame":
        return keys.select("customer_key", F.lit(how).alias("how"), F.lit(None).cast("date").alias("since"))

    if differ is None and then is None:
        return Customers(each(key, "whole"), adjusted)
    if then is None:  # what the customers were is not known: every customer of a row that differs
        whole = differ.select("identifier").distinct().join(identity, "identifier").select("customer_key").distinct()
        return Customers(each(whole, "whole"), adjusted)
    first = (facts.select("customer_key", F.col("first_seen").alias("_first")) if facts is not None
             else key.withColumn("_first", F.lit(None).cast("timestamp")))
    a = then.select("identifier", F.col("customer_key").alias("old_key"), F.col("is_shared").alias("old_shared"))
    b = identity.select("identifier", F.col("customer_key").alias("new_key"), F.col("is_shared").alias("new_shared"))
    moved = (a.join(b, "identifier", "full_outer")
             .where("old_key IS NOT NULL AND (new_key IS NULL OR old_key <> new_key OR old_shared <> new_shared)")
             .join(first.withColumnRenamed("customer_key", "old_key"), "old_key", "left"))
    flagged = F.coalesce(F.col("old_shared"), F.lit(False)) | F.coalesce(F.col("new_shared"), F.lit(False))
    day = F.when(~flagged, F.to_date("_first"))  # NULL: when its rows were is not known (whole)
    changed = F.lit("changed")
    dated = [moved.select(F.col("old_key").alias("customer_key"), day.alias("day"), changed.alias("kind")),
             # a moved identifier whose old customer had no facts brought no rows
             moved.where(F.col("new_key").isNotNull() & (flagged | F.col("_first").isNotNull()))
             .select(F.col("new_key").alias("customer_key"), day.alias("day"), changed.alias("kind"))]
    dated = [d.withColumn("at", F.lit(None).cast("timestamp")) for d in dated]
    gone = moved.select(F.col("old_key").alias("customer_key")).distinct().join(
        identity.select("customer_key"), "customer_key", "left_anti")
    if differ is not None:
        removed = differ.where("_side = 'removed'").select("identifier", F.col("occurred_date").alias("day"))
        for m in (identity, then):
            dated.append(removed.join(m.select("identifier", "customer_key"), "identifier").select(
                "customer_key", "day", changed.alias("kind"), F.lit(None).cast("timestamp").alias("at")))
        added = differ.where("_side = 'added'").join(identity.where("NOT is_shared"), "identifier")
        dated.append(added.select("customer_key", F.col("occurred_date").alias("day"), F.lit("added").alias("kind"),
                                  F.col("occurred_at").alias("at")))
    status = None
    if orders is not None and orders[1] is not None:
        adjusted = order_adjustments(then, *orders)
    elif differ is not None:  # what the orders were is not known: any new status of an order placed before
        purchases = in_list(PURCHASE_EVENTS)
        status = (differ.where(f"_side = 'added' AND source_table = 'order_status_history' AND "
                               f"event_type NOT IN ({purchases})").join(identity.where("NOT is_shared"), "identifier")
                  .select("customer_key").distinct())
    per = (reduce(lambda x, y: x.unionByName(y), dated).groupBy("customer_key").agg(
        F.min("day").alias("since"), F.max(F.col("day").isNull().cast("int")).alias("_unknown"),
        F.max((F.col("kind") == "changed").cast("int")).alias("_changed"), F.min("at").alias("_first_new"))
           .join(gone, "customer_key", "left_anti").join(first, "customer_key", "left"))
    if status is not None:
        per = per.join(status.withColumn("_status", F.lit(True)), "customer_key", "left")
    else:
        per = per.withColumn("_status", F.lit(False))
    from_since = (F.col("_changed") == 1) & F.lit(from_day) & (F.col("_unknown") == 0) & F.col("_first").isNotNull() & (
        F.col("since") > F.to_date("_first"))
    late = (F.col("_changed") == 0) & F.coalesce(F.col("_first_new") <= F.col("_first"), F.lit(False))
    whole = F.coalesce(F.col("_status"), F.lit(False)) | late | ((F.col("_changed") == 1) & ~from_since)
    how = F.when(whole, "whole").when(F.col("_changed") == 1, "since").otherwise("appended")
    return Customers(per.select("customer_key", how.alias("how"), F.when(how == "since", F.col("since")).alias("since"))
                     .unionByName(each(gone, "gone")), adjusted)


def order_adjustments(then: "DataFrame", now: "DataFrame", before: "DataFrame") -> "DataFrame":
    """(customer_key, kept_orders, revenue): for each customer (as ``then`` had it), what the orders placed before
    whose kept state or total changed count now less what they counted then. Every order in silver.orders has one
    purchase row (its first state), counted for the customer of ``order:<id>`` unless that identifier was shared;
    an order counts as kept when it is and has a total (as ``relationship.facts`` counts it). Pure."""
    from pyspark.sql import functions as F

    def state(o: "DataFrame", i: int) -> "DataFrame":
        kept = F.coalesce(F.expr(kept_order_sql()), F.lit(False)) & F.col("total_price").isNotNull()
        return o.select("order_id", kept.alias(f"_kept{i}"),
                        F.when(kept, F.col("total_price")).otherwise(F.lit(0)).alias(f"_rev{i}"))

    changed_ = state(now, 0).join(state(before, 1), "order_id").where("_kept0 <> _kept1 OR _rev0 <> _rev1")
    return (changed_.select(F.concat(F.lit("order:"), F.col("order_id").cast("string")).alias("identifier"),
                            (F.col("_kept0").cast("bigint") - F.col("_kept1").cast("bigint")).alias("kept_orders"),
                            (F.col("_rev0") - F.col("_rev1")).alias("revenue"))
            .join(then.where("NOT is_shared").select("identifier", "customer_key"), "identifier")
            .groupBy("customer_key").agg(F.sum("kept_orders").alias("kept_orders"), F.sum("revenue").alias("revenue")))


def previous_run(lake: Lake) -> dict:
    """What the last successful curate recorded (``ops.runs``): the versions it read (``reference_versions``) and
    left (``written_versions``); empty when there was none, or it was an earlier release's."""
    import json

    from pyspark.sql import functions as F

    if not lake.exists("ops.runs"):
        return {}
    row = (lake.read("ops.runs").where("step = 'curate' AND status = 'succeeded'").orderBy(F.desc("finished_at"))
           .select("counts").first())
    return json.loads(row.counts) if row and row.counts else {}


def changed(lake: Lake, name: str, previous: dict[str, int] | None) -> "DataFrame | None":
    """Rows of a reference table that differ from the version the last curate used (both sides); None if none
    changed (a catalogue landed again as it was changes nothing downstream, so nothing downstream is read for it).
    A version no longer readable (vacuumed) counts as everything changed."""
    columns = REFERENCE[name]
    current = lake.version(name)
    before = (previous or {}).get(name)
    if current is None or (previous is not None and before == current):
        return None
    now = lake.read(name).select(*columns)
    then = version_then(lake, name, previous)
    if then is None:  # not known, or vacuumed: treat every row as changed
        return now
    then = then.select(*columns)
    diff = now.exceptAll(then).unionByName(then.exceptAll(now))
    return diff if diff.limit(1).count() else None  # a reference table is small: read twice, not the history


def touched_dates(lake: Lake, window: Window) -> list[date]:
    where = window.sql()
    dates: set[date] = set()
    for table, col in (("clickstream_events", "event_date"), ("social_interactions", "event_date"),
                       ("order_status_history", "to_date(created_at)")):
        if lake.exists(f"silver.{table}"):  # a listing of dates
            dates |= {r.d for r in lake.read(f"silver.{table}").where(where).selectExpr(f"{col} AS d").distinct().collect()
                      if r.d is not None}
    return sorted(dates)


