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
- ``gold.product_signals`` (what the interactions export is scored from, per identifier and product; the identity
  applied when the export reads) gets what the rows added and removed change (``affinity.keep``): an append the
  size of the day's changes, compacted every few generations; rebuilt from ``gold.interactions`` when what the last
  run left is not known, or the export's weights, half-life or era changed.
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
from jobs.gold import affinity, changes, recompute, relationship, timeline, trends
from jobs.gold.recompute import Touched
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
    product_signals: str = ""  # how gold.product_signals was brought up to date (``affinity.keep``): built,
    # appended, compacted or unchanged
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
            rows = recompute.rows(lake, touched, report, identity, kept)
            lake.replace_keys("gold.customer_facts", recompute.facts(lake, touched, rows, report, kept), keys, "customer_key")
            if lake.exists("gold.campaign_orders"):
                attributed = recompute.campaign_orders(lake, touched, rows, report.run_id)
        if not lake.exists("gold.campaign_orders"):  # a lake from before it: every order attributed once
            trends.attribute_all(lake, identity)
            attributed = None
    # from the log's statistics when every file has them, else one column read
    newest = lake.newest("gold.interactions", "occurred_at")
    if newest is None:
        newest = lake.read("gold.interactions").select(F.max("occurred_at").alias("m")).first().m
    report.product_signals = affinity.keep(lake, None if touched is None else touched.rows_differ, report.run_id,
                                           newest.date() if newest else None, identity)
    if as_of is None:
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


def _interactions(lake: Lake, report: CurateReport, identity: "DataFrame", last: dict) -> "Touched | None":
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
    rows_differ = lake.read("gold.interactions").limit(0).withColumn("_side", F.lit("added"))  # no date changed
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
        rows_differ = differ
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
    elif lake.changed_partitions("gold.interactions", stored_version) != set():  # written since the last run: what
        rows_differ = None  # product signals were kept from is not known
    facts = lake.read("gold.customer_facts") if lake.exists("gold.customer_facts") else None
    orders = changes.orders_then_and_now(lake, previous)
    c = changes.touched(identity, then, differ, facts, orders, from_day=from_day)
    c = changes.Customers(lake.checkpoint(c.how, report.run_id, "customers"),
                          lake.checkpoint(c.adjusted, report.run_id, "adjusted"))
    counts = {r.how: r.n for r in c.how.select("how").unionByName(c.adjusted.select(F.lit("adjusted").alias("how")))
              .groupBy("how").agg(F.count(F.lit(1)).alias("n")).collect()}  # five rows
    return Touched(*(c.of(how) for how in changes.HOW), c.adjusted,
                   differ.where("_side = 'added'") if differ is not None else identity.limit(0), then, stored_version,
                   from_day, counts, rows_differ if from_day else None)


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
