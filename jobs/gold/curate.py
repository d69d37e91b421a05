"""Curate: silver → gold for one landing window (incremental) or everything (``full``).

Contract
- Incremental (default): the customers touched by the window's new silver rows — and
  every customer whose identity changed since their timeline was built (merges,
  splits, newly shared devices), and every customer on either side of a session that
  refine cut anew or that changed hands — get their timeline rebuilt from the date it can have
  changed: two days before the window's earliest event for new rows and recut sessions; for a
  merge, the first interaction of the younger customer (the older key survives, so the history
  before it stands); for a customer that lost an identifier, their first interaction. Silver is
  read from the earliest of those dates, and each rebuilt history is numbered on from the
  stored rows before its date (``timeline.kept_prefix``). Only a formerly shared identifier, a
  run killed half-way, or a lake whose last curate is unknown rebuilds histories whole from all
  of silver. Facts are recomputed from the touched customers' rows as written.
  What moved is found by comparing ``silver.identity_map``
  and ``silver.sessions`` with the versions the last successful curate read (recorded in its
  ``ops.runs`` row), not by reading the timeline. Trends are rebuilt for the dates the window touched and the 7 days
  after. Relationship scores and campaign performance are rebuilt whole (small).
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

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
AS_OF_TABLES = ("gold.customer_timeline", "gold.customer_relationship", "gold.customer_facts")


@dataclass
class CurateReport(Report):
    reference_versions: dict[str, int] = field(default_factory=dict)  # what the next run compares against
    full: bool = False
    customers_rebuilt: int = 0
    rebuilt_whole: int = 0  # of those, rebuilt from their first interaction on (from silver)
    rebuilt_from: date | None = None  # the earliest date a rebuilt history was rebuilt from
    timeline_rows: int = 0
    customers: int = 0
    dates: list[date] = field(default_factory=list)
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

    if not report.full and lake.exists("gold.customer_timeline") and not lake.laid_out_as_declared("gold.customer_timeline"):
        log.info("gold.customer_timeline is partitioned as an earlier release laid it out: this run rebuilds gold whole")
        report.full = True
    full = report.full
    report.known_at = _known_at(lake, window).isoformat()
    previous = changes.previous_reference_versions(lake)
    report.reference_versions = {name: v for name in (*changes.REFERENCE, *changes.READ_SINCE)
                                 if (v := lake.version(name)) is not None}
    # the identity map at the version recorded: the next run finds what moved after exactly this one
    identity = (lake.read("silver.identity_map", version=report.reference_versions["silver.identity_map"])
                if "silver.identity_map" in report.reference_versions else lake.read_or_empty("silver.identity_map"))
    keys = None if full or not lake.exists("gold.customer_timeline") else changes.touched(lake, identity, window,
                                                                                             previous, report)
    if keys is None:
        built = lake.checkpoint(timeline.sequence(timeline.attribute(timeline.interactions(lake), identity)),
                                report.run_id, "timeline")
        timeline.write(lake, built, None)
        report.customers_rebuilt = built.select("customer_key").distinct().count()
        histories = built  # every customer's whole history: their facts need no second read of the timeline
    else:
        # silver from the earliest date a touched history can change, each history from its own date, numbered
        # after the stored rows before it
        since = report.rebuilt_from or date.max
        rows = (timeline.attribute(timeline.interactions(lake, None if report.rebuilt_whole else since), identity)
                .join(keys, "customer_key").where("from_date IS NULL OR to_date(occurred_at) >= from_date")
                .select(*timeline.COLUMNS))
        prefix = timeline.kept_prefix(lake.read("gold.customer_timeline"), keys)
        built = lake.checkpoint(timeline.sequence(rows, prefix), report.run_id, "timeline")
        timeline.write(lake, built, keys)
        histories = lake.read("gold.customer_timeline").join(keys.select("customer_key"), "customer_key", "left_semi")

    orders = lake.read_or_empty("silver.orders")
    tl = lake.read("gold.customer_timeline")
    lake.replace_keys("gold.customer_facts", relationship.facts(histories, orders), keys, "customer_key")
    if as_of is None:  # from the log's statistics when every file has them, else one column read
        newest = lake.newest("gold.customer_timeline", "occurred_at")
        if newest is None:
            newest = tl.select(F.max("occurred_at").alias("m")).first().m
        as_of = (newest.date() + timedelta(days=1)) if newest else date.today()
    report.as_of = as_of
    lake.snapshot("gold.customer_relationship", relationship.score(lake.read("gold.customer_facts"), as_of))

    if full or keys is None:
        lo = hi = None
    else:
        report.dates = changes.touched_dates(lake, window)
        lo, hi = (report.dates[0], report.dates[-1] + timedelta(days=7)) if report.dates else (None, None)
    if full or keys is None or report.dates:
        where = None if lo is None else f"date BETWEEN DATE'{lo}' AND DATE'{hi}'"
        lake.replace_partitions("gold.daily_product_trends", trends.product_trends(lake, lo, hi), where)
        lake.replace_partitions("gold.daily_platform_engagement", trends.platform_trends(lake, lo, hi), where)
    products = None if full or keys is None else changes.changed(lake, "silver.products", previous)
    if products is not None:  # a catalogue that changed (or landed late) names the products of every day
        ids = products.select("product_id").distinct()
        current = lake.read_or_empty("silver.products").select("product_id", "title", "category")
        lake.refresh("gold.daily_product_trends", ids.join(current, "product_id", "left"), ["product_id"],
                     ["title", "category"])
    lake.snapshot("gold.campaign_performance", trends.campaign_performance(lake, tl))

    report.timeline_rows = lake.rows("gold.customer_timeline") or tl.count()
    report.customers = lake.rows("gold.customer_relationship") or lake.read("gold.customer_relationship").count()
    report.written_versions = {name: v for name in AS_OF_TABLES if (v := lake.version(name)) is not None}
    if lake.exists("ops.curate_intents"):
        lake.delete("ops.curate_intents", "TRUE")  # every gold table holds what the intents asked for


def _known_at(lake: Lake, window: Window) -> datetime:
    """The time gold is as known at after this run: the window's end (not later than now), never before the identity
    it reads was known (``silver.identity_versions``)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    identity = last_known(lake)
    moment = min(window.end, now) if window.end is not None else (identity or now)
    return max(moment, identity) if identity is not None else moment
