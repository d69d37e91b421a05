"""The customers an incremental curate touched (``changes.touched``), and their new facts and attributed orders.

Each touched customer's facts come from the cheapest rows that give them exactly (``jobs.gold.curate`` states the
contract): their stored facts and their new rows (appended), their stored facts with their rows from a day on
replaced (since), their whole history (whole), or their stored facts moved by changed orders (adjusted). Every read
of a customer's rows is bounded by the days it was active on (``gold.customer_facts.history_dates``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

from jobs.gold import relationship, timeline, trends
from jobs.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.gold.curate import CurateReport

log = logging.getLogger(__name__)


@dataclass
class Touched:
    """The customers whose facts a run recomputes (``changes.touched``), checkpointed, and the rows it added."""
    whole: "DataFrame"  # from their whole history
    appended: "DataFrame"  # from their stored facts and their new rows
    since: "DataFrame"  # (customer_key, since): their rows from that day on replaced
    gone: "DataFrame"  # keys no identifier has any more: their facts and attributed orders go
    adjusted: "DataFrame"  # (customer_key, kept_orders, revenue): what orders placed before moved
    added: "DataFrame"  # the gold.interactions rows this run added (``_side = 'added'``)
    then: "DataFrame | None" = None  # the identity map the last run read (its customers' rows as they were)
    stored_version: int | None = None  # the gold.interactions version the last run left
    from_day: bool = True  # the stored facts are those of the rows stored then (no run wrote rows since)
    counts: dict[str, int] = field(default_factory=dict)  # customers by how (``changes.HOW``) and "adjusted"
    rows_differ: "DataFrame | None" = None  # every row this run added or removed (``_side``), whatever columns differ

    @property
    def keys(self) -> "DataFrame":
        return (self.whole.unionByName(self.appended).unionByName(self.since.select("customer_key"))
                .unionByName(self.gone).unionByName(self.adjusted.select("customer_key")))


@dataclass
class Rows:
    """The timeline rows a run's touched customers are recomputed from (``timeline.customer_rows``)."""
    whole: "DataFrame | None"  # the whole histories of ``Touched.whole`` (checkpointed: facts and attribution read them)
    recent: "DataFrame | None"  # ``Touched.appended``'s rows from 8 days before ``first`` on, ``_new`` marking the added
    first: date | None  # the first added row's date: their purchases from then on are the ones new rows can change
    since: "DataFrame | None" = None  # ``Touched.since``'s rows from 8 days before the earliest day on, ``_counted`` from
    # each one's day (checkpointed)
    before: "DataFrame | None" = None  # the same customers' rows of those days as the last run left them (its identity)
    after: "DataFrame | None" = None  # the facts of ``since``'s counted rows (checkpointed)


LOOKBACK_DAYS = max(relationship.SOCIAL_INFLUENCE_DAYS, trends.ATTRIBUTION_DAYS) + 1  # read before a customer's new rows


def rows(lake: Lake, touched: Touched, report: CurateReport, identity: "DataFrame", orders: "DataFrame") -> Rows:
    """The rows each kind of touched customer is recomputed from (``Rows``); ``orders``: the kept orders."""
    from pyspark.sql import functions as F

    out = Rows(None, None, None)
    if report.customers_since:  # first: a customer whose rows from its day on cannot give its facts is read whole
        _since_rows(lake, touched, report, identity, orders, out)
    if report.customers_rebuilt:
        stored = _on_their_days(lake, touched, touched.whole, identity, report)
        out.whole = lake.checkpoint(timeline.customer_rows(lake, touched.whole, identity, stored=stored), report.run_id,
                                    "whole-rows")
    if report.customers_appended:
        ids = identity.where("NOT is_shared").join(touched.appended, "customer_key", "left_semi")
        out.first = touched.added.join(ids, "identifier", "left_semi").agg(F.min("occurred_date")).first()[0]  # one value
        since = out.first - timedelta(days=LOOKBACK_DAYS)
        stored = lake.read("gold.interactions").where(F.col("occurred_date") >= F.lit(since))
        new = touched.added.select("source_table", "source_key", F.lit(True).alias("_new"))
        out.recent = (timeline.customer_rows(lake, touched.appended, identity, stored=stored)
                      .join(new, ["source_table", "source_key"], "left").withColumn("_new", F.coalesce("_new", F.lit(False))))
    return out


def _since_rows(lake: Lake, touched: Touched, report: CurateReport, identity: "DataFrame", orders: "DataFrame",
                out: Rows) -> None:
    """``Rows.since``, ``before`` and ``after`` for ``Touched.since``; its customers that ``relationship.replace_tail``
    cannot give (``tail_unknown``) move to ``Touched.whole``."""
    from pyspark.sql import functions as F

    lo = touched.since.agg(F.min("since")).first()[0] - timedelta(days=LOOKBACK_DAYS)  # one value
    on = F.col("occurred_date") >= F.lit(lo)

    def counted(rows: "DataFrame") -> "DataFrame":
        return rows.join(touched.since, "customer_key").withColumn(
            "_counted", F.col("occurred_date") >= F.col("since")).drop("since")

    days = _their_days(lake, touched, touched.since, identity, report)
    now = _on(lake.read("gold.interactions"), days).where(on)
    out.since = lake.checkpoint(counted(timeline.customer_rows(lake, touched.since, identity, stored=now)),
                                report.run_id, "since-rows")
    then = _on(lake.read("gold.interactions", version=touched.stored_version), days).where(on)
    out.before = counted(timeline.customer_rows(lake, touched.since, touched.then, stored=then))
    out.after = lake.checkpoint(relationship.facts(timeline.numbered(out.since), orders, counted="_counted"),
                                report.run_id, "since-facts")
    unknown = relationship.tail_unknown(out.after, touched.since)
    if moved := unknown.count():
        unknown = lake.checkpoint(unknown, report.run_id, "since-unknown")
        log.info("curate: %d customers' rows from a day on cannot give their facts: read whole", moved)
        touched.whole = lake.checkpoint(touched.whole.unionByName(unknown), report.run_id, "whole-keys-2")
        touched.since = lake.checkpoint(touched.since.join(unknown, "customer_key", "left_anti"), report.run_id,
                                        "since-keys-2")
        report.customers_rebuilt += moved
        report.customers_since -= moved


def _their_days(lake: Lake, touched: Touched, keys: "DataFrame", identity: "DataFrame",
                report: CurateReport) -> list[date] | None:
    """The dates of ``gold.interactions`` that hold every row of ``keys``' customers, now and as the last run left
    them: the ``history_dates`` of the stored facts of each customer their identifiers belonged to then, and the
    dates this run rewrote (where every row new since is); when ``keys`` has ``since``, only each customer's from
    ``LOOKBACK_DAYS`` before it on. None when that is not known: one of their identifiers was shared then, so its
    rows were counted for nobody, or rows were written after the stored facts (a run killed half-way). A listing
    of dates."""
    from pyspark.sql import functions as F

    if not touched.from_day:  # rows were written after the stored facts: their dates may be missing from them
        return None
    ids = identity.join(keys.select("customer_key").distinct(), "customer_key", "left_semi").select(
        "identifier", F.col("customer_key").alias("_key"))
    then = touched.then.join(ids, "identifier")
    owners = (then.select("_key", "customer_key").unionByName(keys.select(F.col("customer_key").alias("_key"),
                                                                           "customer_key")).distinct())
    days = (lake.read("gold.customer_facts").join(owners, "customer_key")
            .select("_key", F.explode("history_dates").alias("d")))
    if "since" in keys.columns:
        days = days.join(keys.select(F.col("customer_key").alias("_key"), "since"), "_key").where(
            F.col("d") >= F.date_sub("since", LOOKBACK_DAYS))
    # a listing of dates, and an identifier shared then answering a NULL day (not known): one query
    found = (days.select("d", F.lit(False).alias("_shared")).distinct()
             .unionByName(then.where("is_shared").select(F.lit(None).cast("date").alias("d"),
                                                         F.lit(True).alias("_shared")).limit(1)).collect())
    if any(r._shared for r in found):
        return None
    return sorted({r.d for r in found} | set(report.dates_rewritten))


def _on(rows: "DataFrame", days: list[date] | None) -> "DataFrame":
    """``gold.interactions`` rows of ``days`` (every day when None): only those partitions are read."""
    if days is None:
        return rows
    return rows.where(f"occurred_date {timeline.dates_sql(days)}" if days else "FALSE")


def _on_their_days(lake: Lake, touched: Touched, keys: "DataFrame", identity: "DataFrame",
                   report: CurateReport) -> "DataFrame":
    return _on(lake.read("gold.interactions"), _their_days(lake, touched, keys, identity, report))


def facts(lake: Lake, touched: Touched, rows: Rows, report: CurateReport, orders: "DataFrame") -> "DataFrame":
    """The facts of the touched customers: whole histories for ``whole``; for ``appended``, their stored facts and the
    facts of their new rows, read with the rows of the days before the first of them (a purchase's social influence
    looks back ``relationship.SOCIAL_INFLUENCE_DAYS``); for ``since``, their stored facts less their rows' from their
    day on as they were, plus as they are; for the others whose orders placed before changed, their stored facts
    moved by those orders. Every stored fact read is first moved by the customer's changed orders."""
    # the touched customers' stored facts, read once for every part (the table holds every customer)
    stored = lake.checkpoint(relationship.adjusted(lake.read("gold.customer_facts").join(
        touched.keys, "customer_key", "left_semi"), touched.adjusted), report.run_id, "stored-facts")
    others = (touched.adjusted.select("customer_key").join(touched.whole, "customer_key", "left_anti")
              .join(touched.appended, "customer_key", "left_anti").join(touched.since, "customer_key", "left_anti")
              .join(touched.gone, "customer_key", "left_anti"))
    parts = [stored.join(others, "customer_key", "left_semi")]  # each written by its own query: one plan holding
    # every aggregate at once ran out of engine memory
    if rows.whole is not None:
        parts.append(relationship.facts(timeline.numbered(rows.whole), orders))
    if rows.recent is not None:
        added = lake.checkpoint(relationship.facts(timeline.numbered(rows.recent), orders, counted="_new"),
                                report.run_id, "new-facts")
        parts.append(relationship.append(stored, added))
    if rows.since is not None and report.customers_since:
        before = relationship.facts(timeline.numbered(rows.before), orders, counted="_counted")
        parts.append(relationship.replace_tail(stored, before, rows.after, touched.since))
    return lake.checkpoint_parts([lake.conform("gold.customer_facts", p) for p in parts], report.run_id, "facts")


def campaign_orders(lake: Lake, touched: Touched, rows: Rows, run_id: str) -> tuple[str, ...]:
    """``gold.campaign_orders`` for the touched customers: every order of ``whole`` ones from their histories (none
    of ``gone`` ones), the orders of ``appended`` ones placed since their first new row, and of ``since`` ones
    from their day (an order's 7 days before can hold a changed row only then); every other customer's stay as
    stored (their rows and identity did not change, and an order's kept state is not attribution's).

    Returns the campaigns whose order counts can have changed: those of every row, before and after, of the orders
    whose rows changed other than in their customer key (a merge moves an order to another key and changes no
    count; an order's last touch is among its rows, so one that moved has both campaigns listed)."""
    from pyspark.sql import functions as F

    stored = lake.read("gold.campaign_orders")
    day = F.to_date("buy_at")
    redone = (touched.whole.unionByName(touched.gone).select("customer_key", F.lit(None).cast("date").alias("_from"))
              .unionByName(touched.since.select("customer_key", F.col("since").alias("_from"))))
    parts = [] if rows.whole is None else [trends.attribution(rows.whole)]
    if rows.recent is not None:
        parts.append(trends.attribution(rows.recent).where(day >= F.lit(rows.first)))
        redone = redone.unionByName(touched.appended.select("customer_key", F.lit(rows.first).alias("_from")))
    if rows.since is not None:
        parts.append(trends.attribution(rows.since).join(touched.since, "customer_key").where(day >= F.col("since"))
                     .drop("since"))
    marked = stored.join(redone.withColumn("_in", F.lit(True)), "customer_key", "left")
    replaced_ = F.coalesce(F.col("_in") & (F.col("_from").isNull() | (day >= F.col("_from"))), F.lit(False))
    kept, replaced = (marked.where(c).select(*stored.columns) for c in (~replaced_, replaced_))
    new = lake.checkpoint_parts([p.select(*stored.columns) for p in parts] or [stored.limit(0)], run_id,
                                "campaign-orders")
    same = ["order_id", "campaign_id", "platform", "touch_at", "buy_at"]
    before, after = replaced.select(*same), new.select(*same)
    moved = before.subtract(after).union(after.subtract(before)).select("order_id").distinct()
    changed = (before.union(after).join(moved, "order_id", "left_semi").select("campaign_id").distinct()
               .collect())  # a listing of campaign ids
    lake.snapshot("gold.campaign_orders", kept.unionByName(new))
    return tuple(sorted(r.campaign_id for r in changed))
