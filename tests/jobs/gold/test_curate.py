"""Gold: a hand-made customer end to end, reconciliation with silver, incremental = full, tables by name."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest

from jobs.config import Config
from jobs.lake import Lake
from tests.handmade import T0, land, order, seg, social
from tests.lakes import PII_KEY, curate, ingest_and_refine, table_rows

pytestmark = pytest.mark.integration
GOLD = ("interactions", "customer_timeline", "customer_facts", "product_signals", "customer_relationship",
        "daily_product_trends", "daily_platform_engagement", "campaign_performance", "campaign_orders")


def test_one_timeline_in_order_with_milestones_and_stage(spark, maya):
    cfg, key = maya
    lake = Lake(cfg, spark)
    rows = lake.read("gold.customer_timeline").where(f"customer_key = '{key}'").orderBy("seq").collect()
    assert [(r.seq, r.channel, r.platform, r.event_type) for r in rows] == [
        (1, "web", None, "visit"), (2, "web", None, "product_view"), (3, "social", "instagram", "like"),
        (4, "store", None, "store_purchase")]
    assert [r.milestone for r in rows] == ["first_visit", None, "first_social_touch", "first_purchase"]
    assert rows[3].order_id == "4242" and "at store 1001" in rows[3].summary
    everyone = lake.read("gold.customer_timeline").select("customer_key").distinct().count()
    assert everyone == 1  # web, social and store were stitched into one customer
    p = lake.read("gold.customer_relationship").where(f"customer_key = '{key}'").first()
    assert (p.lifecycle_stage, p.acquisition_channel, p.kept_orders, float(p.revenue)) == ("customer", "web", 1, 10.0)
    assert p.preferred_platform == "instagram" and p.engagement_by_platform == {"instagram": 1}
    assert p.social_influenced_orders == 1 and p.first_purchase_at.date() == (T0 + timedelta(days=2)).date()


def test_rapport_timeline_prints_it_for_a_person(maya):
    cfg, key = maya
    env = {"PATH": "/usr/bin:/bin", "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_PII_KEY": PII_KEY}
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "timeline", "MAYA@x.com"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"Customer {key}: customer" in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line[:1].isdigit()]
    assert [line.split()[0] for line in lines] == ["1", "2", "3", "4"] and "first_purchase" in lines[3]


def test_every_silver_interaction_of_a_customer_is_on_exactly_one_timeline_row(spark, refined):
    cfg, _, _ = refined
    lake = Lake(cfg, spark)
    for name in ("clickstream_events", "social_interactions", "order_status_history", "sessions", "identity_map"):
        lake.read(f"silver.{name}").createOrReplaceTempView(name)
    expected = {r.t: r.n for r in spark.sql("""
        WITH ids AS (SELECT identifier FROM identity_map WHERE NOT is_shared)
        SELECT 'clickstream_events' AS t, count(*) AS n FROM clickstream_events e JOIN ids
          ON ids.identifier = CASE WHEN e.user_id IS NOT NULL THEN concat('user:', e.user_id) ELSE concat('anon:', e.anonymous_id) END
          WHERE NOT e.is_bot AND e.event IN ('Product Viewed', 'Product Added', 'Checkout Started', 'Products Searched',
                                            'Product Shared', 'Product Added to Wishlist', 'Product Reviewed')
        UNION ALL SELECT 'social_interactions', count(*) FROM social_interactions s JOIN ids
          ON ids.identifier = concat('social:', s.actor_id_hash)
        UNION ALL SELECT 'order_status_history', count(DISTINCT h.order_id, h.status) FROM order_status_history h JOIN ids
          ON ids.identifier = concat('order:', cast(h.order_id AS STRING))
        UNION ALL SELECT 'sessions', count(*) FROM sessions v JOIN ids
          ON ids.identifier = CASE WHEN v.user_id IS NOT NULL THEN concat('user:', v.user_id) ELSE concat('anon:', v.anonymous_id) END
    """).collect()}
    tl = lake.read("gold.customer_timeline")
    got = {r.source_table: r["count"] for r in tl.groupBy("source_table").count().collect()}
    assert got == expected and all(n > 0 for n in got.values())
    assert tl.select("source_table", "source_key").distinct().count() == tl.count()
    seqs = tl.groupBy("customer_key").agg({"seq": "max", "*": "count"}).where("`max(seq)` <> `count(1)`").count()
    assert seqs == 0  # 1..n without gaps for every customer


@pytest.mark.slow
def test_incremental_day_by_day_equals_a_full_rebuild(spark, refined, daily):
    cfg, _, _ = refined
    for table in GOLD:
        assert table_rows(spark, Lake(daily).path(f"gold.{table}")) == table_rows(spark, Lake(cfg).path(f"gold.{table}")), table


def test_gold_tables_answer_by_name_and_from_duckdb(spark, refined):
    import duckdb
    from deltalake import DeltaTable

    from jobs import catalog

    cfg, _, _ = refined
    names = catalog.register(spark, cfg)
    assert {f"gold.{t}" for t in GOLD} <= set(names)
    stages = {r.lifecycle_stage: r.n for r in spark.sql(
        "SELECT lifecycle_stage, count(*) AS n FROM gold.customer_relationship GROUP BY 1").collect()}
    assert {"prospect", "engaged", "customer", "advocate"} <= set(stages)
    # the timeline by name is the view the catalog registered from schemas.views' SQL: the rows the jobs read
    by_name = spark.sql("SELECT * FROM gold.customer_timeline")
    cols = sorted(by_name.columns)
    assert sorted(tuple(map(str, r)) for r in by_name.select(*cols).collect()) == \
        table_rows(spark, Lake(cfg).path("gold.customer_timeline"))
    # the README's recipe: delta-rs hands the same files to DuckDB
    relationship = DeltaTable(Lake(cfg).path("gold.customer_relationship")).to_pyarrow_dataset()  # noqa: F841 (DuckDB reads it by name)
    got = dict(duckdb.sql("SELECT lifecycle_stage, count(*) FROM relationship GROUP BY 1").fetchall())
    assert got == stages


def _landing(tmp_path, day, order_id: int):
    """A landing zone with empty reference extracts, and someone else's order and like at 09:00 on ``day`` so that
    every silver table exists."""
    landing = tmp_path / "landing"
    for ref in ("customers", "products", "campaigns", "campaign_posts"):
        land(landing, f"reference/{ref}", day, [])
    land(landing, "orders", day.replace(hour=9), [order(order_id, "someone@x.com", day.replace(hour=9))])
    land(landing, "social", day.replace(hour=9), [social("instagram", "9", "@someone", day.replace(hour=9))])
    return landing


@pytest.mark.slow
def test_a_session_that_changes_hands_leaves_its_old_customer(spark, tmp_path):
    """A shared computer (C used it in the morning): A browses at 23:35; B logs in on it minutes later, landing
    after midnight. The session
    is now B's. A's timeline, built the day before, must lose it although A did nothing in the second window
    (found by the benchmark's daily batches: the session stayed on both timelines)."""
    day = T0.replace(hour=0)
    landing = _landing(tmp_path, day, order_id=77)
    t = day.replace(hour=23, minute=35)
    land(landing, "clickstream", day.replace(hour=10), [seg("PC", "C", day.replace(hour=10), kind="page", event=None)])
    land(landing, "clickstream", t.replace(minute=0), [
        seg("PC", "A", t, kind="page", event=None), seg("PC", "A", t + timedelta(minutes=1), props={"product_id": "P1"})])
    land(landing, "clickstream", day + timedelta(days=1), [
        seg("PC", "B", t + timedelta(minutes=5), kind="page", event=None),
        seg("PC", "B", t + timedelta(minutes=25), props={"product_id": "P2"})])
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    for lo in (day, day + timedelta(days=1)):
        ingest_and_refine(spark, cfg, lo, lo + timedelta(days=1), gates=False)
        curate(spark, cfg, lo, lo + timedelta(days=1), gates=False)
    lake = Lake(cfg, spark)
    visits = lake.read("gold.customer_timeline").where("event_type = 'visit'").collect()
    assert sorted(v.identifier for v in visits) == ["user:B", "user:C"]  # the evening session once, on B's timeline
    full = Config(lake_root=str(tmp_path / "full"), landing_root=str(landing), pii_key=PII_KEY)
    ingest_and_refine(spark, full, gates=False)
    curate(spark, full, gates=False, full=True)
    for table in ("customer_timeline", "customer_relationship"):
        assert table_rows(spark, lake.path(f"gold.{table}")) == table_rows(spark, Lake(full).path(f"gold.{table}")), table


def _interaction_files(lake: Lake, version: int) -> dict[str, object]:
    """The interactions' data files at a version, by path, with the date partition each is in (the Delta log only)."""
    files = lake.files("gold.interactions", version)
    return dict(zip(files.column("path").to_pylist(), files.column("partition.occurred_date").to_pylist()))


def test_a_day_rewrites_only_the_dates_it_changed_and_a_stored_timeline_is_retired(spark, tmp_path):
    """A returns on day 3 after visits on day 1, while B is untouched: the day's write adds day 3's interactions
    and rewrites no file of day 1 (A's timeline is read, not rewritten). A lake where an earlier release stored
    the timeline as a table, or stored facts without a column declared since (``active_dates``), is rebuilt whole
    on its next curate: the stored copy goes, the view and the facts give the rows the day-by-day lake gives (and
    the report's weekly at-risk panel, empty before, its weeks)."""
    day = T0.replace(hour=0)
    landing = _landing(tmp_path, day, order_id=78)
    land(landing, "clickstream", day.replace(hour=10), [
        seg("PA", "A", day.replace(hour=10), kind="page", event=None),
        seg("PA", "A", day.replace(hour=10, minute=2), props={"product_id": "P1"}),
        seg("PB", "B", day.replace(hour=11), kind="page", event=None)])
    back = day + timedelta(days=2, hours=15)
    land(landing, "clickstream", back, [seg("PA", "A", back, kind="page", event=None),
                                        seg("PA", "A", back + timedelta(minutes=3), props={"product_id": "P2"})])
    windows = [(day, day + timedelta(days=2)), (day + timedelta(days=2), day + timedelta(days=3))]

    def build(root: str, old_layout: str | None) -> Lake:
        cfg = Config(lake_root=str(tmp_path / root), landing_root=str(landing), pii_key=PII_KEY)
        lake = Lake(cfg, spark)
        for i, (lo, hi) in enumerate(windows):
            if i == 1 and old_layout == "facts":  # facts as an earlier release stored them
                facts = lake.read("gold.customer_facts").drop("active_dates")
                facts.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
                    lake.path("gold.customer_facts"))
                assert _risk_weekly(spark, lake, day.date()).empty
            if i == 1 and old_layout == "timeline":  # the timeline stored as an earlier release did, without interactions
                lake.read("gold.customer_timeline").write.format("delta").partitionBy("occurred_date").save(
                    lake.path("gold.customer_timeline"))
                shutil.rmtree(lake.path("gold.interactions"))
            ingest_and_refine(spark, cfg, lo, hi, gates=False)
            report = curate(spark, cfg, lo, hi, gates=False)
        assert report.rebuilt_whole == bool(old_layout)
        assert report.dates_rewritten == ([] if old_layout else [back.date()])
        return lake

    from jobs.report.data import _risk_weekly

    lake = build("lake", old_layout=None)
    last = lake.version("gold.interactions")
    before, after = _interaction_files(lake, last - 1), _interaction_files(lake, last)
    removed = set(before) - set(after)
    added = {after[p] for p in set(after) - set(before)}
    assert removed == set() and added == {back.date()}, (removed, added)
    assert lake.read("gold.customer_timeline").where("occurred_date = DATE'%s'" % back.date()).count() == 2
    a = lake.read("gold.customer_timeline").where("identifier = 'user:A'").orderBy("seq").collect()
    assert [r.seq for r in a] == [1, 2, 3, 4] and a[2].occurred_date == back.date()

    old = build("old", old_layout="timeline")
    assert not os.path.exists(old.path("gold.customer_timeline"))
    assert table_rows(spark, old.path("gold.customer_timeline")) == table_rows(spark, lake.path("gold.customer_timeline"))
    old = build("old-facts", old_layout="facts")
    assert table_rows(spark, old.path("gold.customer_facts")) == table_rows(spark, lake.path("gold.customer_facts"))
    risk = _risk_weekly(spark, old, back.date())
    assert len(risk) and risk.equals(_risk_weekly(spark, lake, back.date()))


@pytest.mark.slow
def test_a_day_rebuilds_histories_from_where_they_changed_and_goes_on_from_the_rows_kept(spark, tmp_path):
    """A (days 0 and 1) comes back on day 100 on device C, which browsed anonymously on day 1 (its own customer
    then): C's customer merges into A's, the older. A's timeline is rebuilt from day 1, C's first day, numbered
    after A's day-0 rows, which stay as stored (their files are not rewritten). D (day 0) comes back on day 100
    too: only D's rows from two days before the window are rebuilt, and day 100 is a reactivation seen from the
    kept rows alone. The day-by-day lake equals a full rebuild."""
    day = T0.replace(hour=0)
    landing = _landing(tmp_path, day, order_id=79)
    land(landing, "clickstream", day.replace(hour=10), [
        seg("PA", "A", day.replace(hour=10), kind="page", event=None),
        seg("PA", "A", day.replace(hour=10, minute=2), props={"product_id": "P1"}),
        seg("PB", "B", day.replace(hour=11), kind="page", event=None),
        seg("PD", "D", day.replace(hour=12), kind="page", event=None)])
    day1 = day + timedelta(days=1)
    land(landing, "clickstream", day1.replace(hour=10), [
        seg("PC", None, day1.replace(hour=10), kind="page", event=None),
        seg("PA", "A", day1.replace(hour=10, minute=30), kind="page", event=None)])
    back = day + timedelta(days=100, hours=15)
    land(landing, "clickstream", back, [seg("PC", "A", back, kind="page", event=None),
                                        seg("PC", "A", back + timedelta(minutes=3), props={"product_id": "P2"}),
                                        seg("PD", "D", back, kind="page", event=None)])
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    lake = Lake(cfg, spark)
    for lo, hi in ((day, day + timedelta(days=2)), (day + timedelta(days=2), day + timedelta(days=101))):
        ingest_and_refine(spark, cfg, lo, hi, gates=False)
        curate(spark, cfg, lo, hi, gates=False)
    report = json.loads(lake.read("ops.runs").where("step = 'curate'").orderBy("started_at").collect()[-1].counts)
    assert report["dates_rewritten"] == [str(back.date())] and not report["rebuilt_whole"], report
    # A's rows replaced from day 1 (C's first), C's key merged away, D appended: no history read whole
    assert (report["customers_since"], report["customers_gone"], report["customers_appended"],
            report["customers_rebuilt"]) == (1, 1, 1, 0), report

    last = lake.version("gold.interactions")
    before, after = _interaction_files(lake, last - 1), _interaction_files(lake, last)
    assert set(before) - set(after) == set()  # the merge rewrote no stored interaction
    a = lake.read("gold.customer_timeline").where("identifier IN ('user:A', 'anon:PC')").orderBy("seq").collect()
    assert len({r.customer_key for r in a}) == 1 and [r.seq for r in a] == list(range(1, len(a) + 1))
    assert [r.occurred_date for r in a if r.milestone and "reactivation" in r.milestone] == [back.date()]
    d = lake.read("gold.customer_timeline").where("identifier = 'user:D'").orderBy("seq").collect()
    assert [(r.seq, r.occurred_date, r.milestone) for r in d] == [
        (1, day.date(), "first_visit"), (2, back.date(), "reactivation")]

    full = Config(lake_root=str(tmp_path / "full"), landing_root=str(landing), pii_key=PII_KEY)
    ingest_and_refine(spark, full, gates=False)
    curate(spark, full, gates=False, full=True)
    for table in GOLD:
        assert table_rows(spark, lake.path(f"gold.{table}")) == table_rows(spark, Lake(full).path(f"gold.{table}")), table


def _delivery(order_id: int, placed, at, received, financial: str, fulfillment: str | None) -> dict:
    """A Shopify ``orders/updated`` webhook for an order placed at ``placed``, in its state of ``at``."""
    body = order(order_id, "late@x.com", placed)
    body["order"].update(updated_at=at.isoformat().replace("+00:00", "Z"), financial_status=financial,
                         fulfillment_status=fulfillment)
    return {**body, "topic": "orders/updated", "triggered_at": body["order"]["updated_at"],
            "received_at": received.isoformat().replace("+00:00", "Z")}


def test_a_late_status_costs_only_its_own_date_whatever_the_order_did_between(spark, tmp_path):
    """An order placed on day 0 and fulfilled on day 3 gets, landing on day 6, a refund dated day 2. The only date
    whose interactions differ is day 2: the order's rows are compared from its creation on, so its day-3 row keeps
    its type (read from day 2 only, the refund would look like the order's first row and day 3 would be rebuilt
    for nothing). The customer's facts take the refund as a new row. The day-by-day lake equals a full
    rebuild."""
    from jobs.gold import changes

    day = T0.replace(hour=0)
    landing = _landing(tmp_path, day, order_id=81)
    placed = day.replace(hour=10)
    land(landing, "orders", placed, [order(80, "late@x.com", placed)])
    fulfilled = day + timedelta(days=3, hours=11)
    land(landing, "orders", fulfilled, [_delivery(80, placed, fulfilled, fulfilled, "paid", "fulfilled")])
    refund, arrived = day + timedelta(days=2, hours=12), day + timedelta(days=6, hours=8)
    land(landing, "orders", arrived, [_delivery(80, placed, refund, arrived, "partially_refunded", None)])
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    lake = Lake(cfg, spark)
    ingest_and_refine(spark, cfg, day, day + timedelta(days=4), gates=False)
    curate(spark, cfg, day, day + timedelta(days=4), gates=False)
    ingest_and_refine(spark, cfg, day + timedelta(days=4), day + timedelta(days=7), gates=False)
    assert changes.changed_dates(lake, changes.previous_run(lake)["reference_versions"]) == [refund.date()]
    report = curate(spark, cfg, day + timedelta(days=4), day + timedelta(days=7), gates=False)
    assert report.dates_rewritten == [refund.date()] and not report.rebuilt_whole
    # the refund is a row after the customer's first: appended, no history read whole (a partial refund leaves the
    # order kept at its total, so its stored purchase does not move)
    assert (report.customers_appended, report.customers_adjusted, report.customers_rebuilt) == (1, 0, 0), report
    rows = lake.read("gold.interactions").where("order_id = '80'").orderBy("occurred_at").collect()
    assert [(r.occurred_date, r.event_type) for r in rows] == [
        (placed.date(), "order_placed"), (refund.date(), "order_refunded"),
        (fulfilled.date(), "order_fulfilled")], rows

    full = Config(lake_root=str(tmp_path / "full"), landing_root=str(landing), pii_key=PII_KEY)
    ingest_and_refine(spark, full, gates=False)
    curate(spark, full, gates=False, full=True)
    for table in GOLD:
        assert table_rows(spark, lake.path(f"gold.{table}")) == table_rows(spark, Lake(full).path(f"gold.{table}")), table
