"""Curate: silver → gold for one landing window (incremental) or everything (``full``).

Contract
- ``gold.interactions`` holds every interaction once, keyed by the identifier it came through; the customer is
  applied when ``gold.customer_timeline`` (a view, ``schemas.views``) is read. So a merge, a split or an unmerge
  rewrites no stored interaction, and a day's curate writes what the day brought.
- Incremental (default): the dates whose silver rows changed since the last successful curate (the Delta log of the
  silver sources, from the versions that run read; ``jobs.gold.changes``) are rebuilt from silver, and only the
  dates where a row came out different are replaced. The customers of the rows that differ in what facts read,
  and both sides of every identifier that moved in ``silver.identity_map`` since, get new facts
  (``changes.touched`` says how): from their stored facts and their new rows when only rows after their first were
  added (``relationship.append``); from their stored facts with their rows from the day of their first change on
  replaced when rows went away, moved or came with a merged customer after their first day
  (``relationship.replace_tail``); else from their whole timeline, read from the partitions of their
  ``history_dates`` only. An order placed before that was cancelled, refunded or repriced moves its customer's
  stored kept orders and revenue (``relationship.adjusted``); a key merged away loses its facts. So a day reads
  the days its changes reach, not the customers' years. A compaction (``dataChange: false``) changes nothing.
  A run killed half-way leaves the last successful run's versions recorded: the next one redoes its work.
  When what the last run read is not known (a first run, an earlier release's lake, a vacuumed version), or the
  stored facts lack a column this release declares, gold is rebuilt whole.
- Trends are rebuilt for the dates the window touched and the 7 days after. Relationship scores are rebuilt
  whole (one row per customer); campaign performance recounts the campaigns whose interactions, visits or
  attributed orders changed, each from its first one (``trends.recount``); the orders campaign performance
  counts (``gold.campaign_orders``, each order with the campaigns that touched it in the 7 days before) are
  kept per customer and recomputed for the touched customers only, as their facts are.
- Full: every table rebuilt from silver. Incremental and full give identical tables.
- ``as_of`` (for recency and lifecycle) defaults to the day after the newest interaction.
- Every gold table is registered by name (``gold.customer_timeline`` …).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from jobs import catalog
from jobs.config import Config
from jobs.gold import changes, relationship, timeline, trends
from jobs.lake import Lake
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from jobs.runs.window import Window
from jobs.silver.identity_history import last_known
from jobs.storage import remove_tree
from schemas.vocabulary import kept_order_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
AS_OF_TABLES = ("gold.interactions", "gold.customer_relationship", "gold.customer_facts")


@dataclass
class CurateReport(Report):
    reference_versions: dict[str, int] = field(default_factory=dict)  # what the next run compares against
    full: bool = False
    rebuilt_whole: bool = False  # gold was rebuilt from all of silver (asked, or what changed was not known)
    customers_rebuilt: int = 0  # customers whose facts were recomputed from their whole history
    customers_appended: int = 0  # customers whose facts were their stored facts and their new rows'
    customers_since: int = 0  # customers whose facts were their stored facts with their rows from a day on replaced
    customers_gone: int = 0  # customer keys retired (merged into another): their facts removed
    customers_adjusted: int = 0  # customers whose orders placed before changed their kept orders or revenue
    dates_rewritten: list[date] = field(default_factory=list)  # the dates of gold.interactions replaced
    interactions: int = 0
    customers: int = 0
    dates: list[date] = field(default_factory=list)  # the dates trends were rebuilt from
    campaigns_recounted: int | None = None  # campaigns whose performance was recounted (None: all of them)
    as_of: date | None = None
    known_at: str | None = None  # what gold is as of: the window's end (or the identity's newest known time)
    written_versions: dict[str, int] = field(default_factory=dict)  # the gold versions this run left: --as-of reads them


def run(spark: "SparkSession", cfg: Config, window: Window, *, full: bool = False, as_of: date | None = None,
        run_id: str | None = None) -> CurateReport:
    lake = Lake(cfg, spark)
    report = CurateReport("curate", run_id or str(RunId.new("curate")), window, full=full)
    try:
        _run(lake, window, report, as_of)
    finally:
        remove_tree(cfg, lake.staging(report.run_id))
    catalog.register(spark, cfg)
    log.info("curated: %s", report.counts())
    return report


def _run(lake: Lake, window: Window, report: CurateReport, as_of: date | None) -> None:
    from pyspark.sql import functions as F

    last = changes.previous_run(lake)
    previous = last.get("reference_versions")
    report.known_at = _known_at(lake, window).isoformat()
    report.reference_versions = {name: v for name in (*changes.REFERENCE, *changes.READ_SINCE)
                                 if (v := lake.version(name)) is not None}
    # the identity map at the version recorded: the next run finds what moved after exactly this one
    identity = (lake.read("silver.identity_map", version=report.reference_versions["silver.identity_map"])
                if "silver.identity_map" in report.reference_versions else lake.read_or_empty("silver.identity_map"))
    touched = None if report.full else _interactions(lake, report, identity, last)
    orders = lake.read_or_empty("silver.orders")
    if touched is None:
        report.rebuilt_whole = True
        _retire_stored_timeline(lake)
        lake.replace_partitions("gold.interactions", timeline.interactions(lake), None)
        lake.replace_keys("gold.customer_facts", relationship.facts(timeline.read(lake, identity=identity), orders),
                          None, "customer_key")
        report.customers_rebuilt = lake.rows("gold.customer_facts") or 0
        trends.attribute_all(lake, identity)
        keys = None
    else:
        keys = touched.keys
        counts = touched.counts
        report.customers_rebuilt, report.customers_appended = counts.get("whole", 0), counts.get("appended", 0)
        report.customers_since, report.customers_gone = counts.get("since", 0), counts.get("gone", 0)
        report.customers_adjusted = counts.get("adjusted", 0)
        attributed: tuple[str, ...] | None = ()  # the campaigns whose attributed orders changed (None: not known)
        if (report.customers_rebuilt or report.customers_appended or report.customers_since or report.customers_gone
                or report.customers_adjusted):
            # the kept orders, read once for every facts query of the run (silver.orders has a file per day)
            kept = lake.checkpoint(orders.where(kept_order_sql()).select("order_id", "status", "total_price"),
                                   report.run_id, "kept-orders")
            rows = _rows(lake, touched, report, identity, kept)
            lake.replace_keys("gold.customer_facts", _facts(lake, touched, rows, report, kept), keys, "customer_key")
            if lake.exists("gold.campaign_orders"):
                attributed = _campaign_orders(lake, touched, rows, report.run_id)
        if not lake.exists("gold.campaign_orders"):  # a lake from before it: every order attributed once
            trends.attribute_all(lake, identity)
            attributed = None
    if as_of is None:  # from the log's statistics when every file has them, else one column read
        newest = lake.newest("gold.interactions", "occurred_at")
        if newest is None:
            newest = lake.read("gold.interactions").select(F.max("occurred_at").alias("m")).first().m
        as_of = (newest.date() + timedelta(days=1)) if newest else date.today()
    report.as_of = as_of
    lake.snapshot("gold.customer_relationship", relationship.score(lake.read("gold.customer_facts"), as_of))

    if keys is None:
        lo = hi = None
    else:
        report.dates = changes.touched_dates(lake, window)
        lo, hi = (report.dates[0], report.dates[-1] + timedelta(days=7)) if report.dates else (None, None)
    if keys is None or report.dates:
        where = None if lo is None else f"date BETWEEN DATE'{lo}' AND DATE'{hi}'"
        lake.replace_partitions("gold.daily_product_trends", trends.product_trends(lake, lo, hi), where)
        lake.replace_partitions("gold.daily_platform_engagement", trends.platform_trends(lake, lo, hi), where)
    products = None if keys is None else changes.changed(lake, "silver.products", previous)
    if products is not None:  # a catalogue that changed (or landed late) names the products of every day
        ids = products.select("product_id").distinct()
        current = lake.read_or_empty("silver.products").select("product_id", "title", "category")
        lake.refresh("gold.daily_product_trends", ids.join(current, "product_id", "left"), ["product_id"],
                     ["title", "category"])
    scope = None if keys is None else trends.recount(lake, previous, attributed)
    report.campaigns_recounted = None if scope is None else len(scope.campaigns)
    lake.snapshot("gold.campaign_performance", trends.campaign_performance(lake, lake.read("gold.campaign_orders"),
                                                                           scope))

    report.interactions = lake.rows("gold.interactions") or lake.read("gold.interactions").count()
    report.customers = lake.rows("gold.customer_relationship") or lake.read("gold.customer_relationship").count()
    report.written_versions = {name: v for name in AS_OF_TABLES if (v := lake.version(name)) is not None}


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

    @property
    def keys(self) -> "DataFrame":
        return (self.whole.unionByName(self.appended).unionByName(self.since.select("customer_key"))
                .unionByName(self.gone).unionByName(self.adjusted.select("customer_key")))


def _interactions(lake: Lake, report: CurateReport, identity: "DataFrame", last: dict) -> Touched | None:
    """Replace the dates of ``gold.interactions`` whose rows changed since the last successful curate; the customers
    whose facts must be recomputed, or None when what changed cannot be known (rebuild whole)."""
    from pyspark.sql import functions as F

    previous = last.get("reference_versions")
    stored_version = (last.get("written_versions") or {}).get("gold.interactions")
    if not lake.exists("gold.interactions") or stored_version is None or not _facts_current(lake):
        return None
    dates = changes.changed_dates(lake, previous)
    then = changes.version_then(lake, "silver.identity_map", previous)
    if dates is None or then is None:
        return None
    differ, from_day = None, True
    if dates:
        on = f"occurred_date {timeline.dates_sql(dates)}"
        fresh = lake.checkpoint(lake.conform("gold.interactions", timeline.interactions(lake, dates)), report.run_id,
                                "interactions")
        stored = lake.read("gold.interactions").where(on).select(*fresh.columns)
        # the rows that differ, once (read before the write below changes ``stored``)
        differ = lake.checkpoint(fresh.subtract(stored).withColumn("_side", F.lit("added"))
                                 .unionByName(stored.subtract(fresh).withColumn("_side", F.lit("removed"))),
                                 report.run_id, "differ-rows")
        written = sorted({r.occurred_date for r in differ.select("occurred_date").distinct().collect()})  # a listing
        differ = _in_facts(differ)
        if lake.changed_partitions("gold.interactions", stored_version) != set():  # rows written since (a run killed
            # half-way, an erasure; a compaction is not a change) or not known
            try:
                left = lake.read("gold.interactions", version=stored_version).where(on).select(*fresh.columns)
            except Exception:  # vacuumed: what the customers were cannot be known
                return None
            # the facts are those of ``left``: every customer of a row that differs from it is recomputed whole
            differ = (differ.unionByName(_in_facts(fresh.subtract(left).withColumn("_side", F.lit("added"))))
                      .unionByName(_in_facts(left.subtract(fresh).withColumn("_side", F.lit("added"))))
                      .withColumn("_side", F.lit("removed")))
            from_day = False
        differ = lake.checkpoint(differ, report.run_id, "differ")
        if written:
            report.dates_rewritten = written
            where = f"occurred_date {timeline.dates_sql(written)}"
            lake.replace_partitions("gold.interactions", fresh.where(where), where)
    facts = lake.read("gold.customer_facts") if lake.exists("gold.customer_facts") else None
    orders = changes.orders_then_and_now(lake, previous)
    c = changes.touched(identity, then, differ, facts, orders, from_day=from_day)
    c = changes.Customers(lake.checkpoint(c.how, report.run_id, "customers"),
                          lake.checkpoint(c.adjusted, report.run_id, "adjusted"))
    counts = {r.how: r.n for r in c.how.groupBy("how").agg(F.count(F.lit(1)).alias("n")).unionByName(
        c.adjusted.select(F.lit("adjusted").alias("how"), F.lit(1).alias("n")).groupBy("how").agg(
            F.count(F.lit(1)).alias("n"))).collect()}  # five rows
    return Touched(*(c.of(how) for how in changes.HOW), c.adjusted,
                   differ.where("_side = 'added'") if differ is not None else identity.limit(0), then, stored_version,
                   from_day, counts)


def _in_facts(differ: "DataFrame") -> "DataFrame":
    """The rows of ``differ`` (``_side`` added or removed) that differ in what facts and attribution read
    (``timeline.FACT_COLUMNS``): a row rewritten with only its text changed (a session's page count) changes no
    customer's facts."""
    from pyspark.sql import functions as F

    d = differ.select(*timeline.FACT_COLUMNS, "_side")
    added, removed = (d.where(f"_side = '{s}'").drop("_side") for s in ("added", "removed"))
    return (added.subtract(removed).withColumn("_side", F.lit("added"))
            .unionByName(removed.subtract(added).withColumn("_side", F.lit("removed"))))


def _facts_current(lake: Lake) -> bool:
    """Whether the stored facts have every column declared: an earlier release's lake lacks some, which only its
    customers' whole histories can give (so gold is rebuilt whole, once)."""
    from schemas.tables import table

    if not lake.exists("gold.customer_facts"):
        return False
    return set(table("gold.customer_facts").column_names) <= set(lake.read("gold.customer_facts").columns)


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


def _rows(lake: Lake, touched: Touched, report: CurateReport, identity: "DataFrame", orders: "DataFrame") -> Rows:
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
    # an identifier shared then answers a NULL day (not known): one query
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


def _facts(lake: Lake, touched: Touched, rows: Rows, report: CurateReport, orders: "DataFrame") -> "DataFrame":
    """The facts of the touched customers: whole histories for ``whole``; for ``appended``, their stored facts and the
    facts of their new rows, read with the rows of the days before the first of them (a purchase's social influence
    looks back ``relationship.SOCIAL_INFLUENCE_DAYS``); for ``since``, their stored facts less their rows' from their
    day on as they were, plus as they are; for the others whose orders placed before changed, their stored facts
    moved by those orders. Every stored fact read is first moved by the customer's changed orders."""
    stored = relationship.adjusted(lake.read("gold.customer_facts"), touched.adjusted)
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


def _campaign_orders(lake: Lake, touched: Touched, rows: Rows, run_id: str) -> tuple[str, ...]:
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


def _retire_stored_timeline(lake: Lake) -> None:
    """A lake from an earlier release stored ``gold.customer_timeline`` as a table; it is a view now."""
    if lake.version("gold.customer_timeline") is not None:  # a Delta log at the view's path
        remove_tree(lake.cfg, lake.path("gold.customer_timeline"))
        log.info("gold.customer_timeline was stored by an earlier release: removed, it is a view over "
                 "gold.interactions now")


def _known_at(lake: Lake, window: Window) -> datetime:
    """The time gold is as known at after this run: the window's end (not later than now), never before the identity
    it reads was known (``silver.identity_versions``)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    identity = last_known(lake)
    moment = min(window.end, now) if window.end is not None else (identity or now)
    return max(moment, identity) if identity is not None else moment
