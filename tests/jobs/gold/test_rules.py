"""The business rules of gold on hand-made rows whose answers were worked out by hand: lifecycle boundaries,
RFM quintiles, 7-day growth and trending rank, and every campaign-consistency verdict."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from jobs.config import Config
from jobs.gold import relationship, trends
from jobs.lake import Lake
from schemas import views
from schemas.tables import table

pytestmark = pytest.mark.unit
AS_OF = date(2026, 11, 30)
FACTS = table("gold.customer_facts")


def fact(key, days_ago, kept=0, advocacy=0, interactions=1, visits=0, social=0, revenue="0"):
    last = datetime.combine(AS_OF - timedelta(days=days_ago), datetime.min.time(), tzinfo=timezone.utc)
    row = {c.name: None for c in FACTS.columns}
    row.update(customer_key=key, first_seen=last, last_seen=last, orders=kept, kept_orders=kept,
               revenue=Decimal(revenue), interactions=interactions, visits=visits, social_interactions=social,
               shares=0, reviews=0, ugc=0, advocacy=advocacy, social_influenced_orders=0, engagement_by_platform={})
    return tuple(row[c.name] for c in FACTS.columns)


def stages(spark, rows):
    df = spark.createDataFrame(rows, FACTS.schema())
    return {r.customer_key: r.lifecycle_stage for r in relationship.score(df, AS_OF).collect()}


def test_lifecycle_stage_boundaries(spark):
    got = stages(spark, [
        fact("buyer_90", 90, kept=1), fact("buyer_91", 91, kept=1), fact("buyer_180", 180, kept=1),
        fact("buyer_181", 181, kept=1), fact("advocate", 3, kept=1, advocacy=1),
        fact("advocate_at_risk", 100, kept=1, advocacy=2), fact("repeat", 3, kept=2), fact("customer", 3, kept=1),
        fact("busy", 3, interactions=3), fact("two_channels", 3, interactions=2, visits=1, social=1),
        fact("one_look", 3, interactions=2, visits=2), fact("old_prospect", 400),
    ])
    assert got == {"buyer_90": "customer", "buyer_91": "at_risk", "buyer_180": "at_risk", "buyer_181": "lapsed",
                   "advocate": "advocate", "advocate_at_risk": "at_risk", "repeat": "repeat", "customer": "customer",
                   "busy": "engaged", "two_channels": "engaged", "one_look": "prospect", "old_prospect": "prospect"}


def test_rfm_scores_are_quintiles_among_buyers(spark):
    # ten buyers: b0 bought least recently, least often and least; b9 most recently, most often and most
    rows = [fact(f"b{i}", 20 - i, kept=i + 1, revenue=f"{10 * (i + 1)}.00") for i in range(10)]
    rows.append(fact("looker", 1, interactions=5))
    scored = {r.customer_key: r for r in relationship.score(spark.createDataFrame(rows, FACTS.schema()), AS_OF).collect()}
    expected = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [scored[f"b{i}"].r_score for i in range(10)] == expected
    assert [scored[f"b{i}"].f_score for i in range(10)] == expected
    assert [scored[f"b{i}"].m_score for i in range(10)] == expected
    assert scored["b9"].rfm_segment == "555" and scored["b0"].rfm_segment == "111"
    assert scored["b4"].average_order_value == Decimal("10.00")
    assert scored["looker"].r_score is None and scored["looker"].rfm_segment is None


def test_growth_trending_and_rank_over_whole_weeks(spark):
    d0 = date(2026, 11, 1)
    views = {  # product -> views per day for 14 days
        "flat": [5] * 14,                   # 35 vs 35: no growth
        "rising": [2] * 7 + [4] * 7,        # 28 vs 14: +100%, trending
        "spiking": [1] * 7 + [3] * 7,       # 21 vs 7: +200%, trending, ranked first
        "tiny": [0] * 7 + [1] * 7,          # 7 vs 0: no previous week, no growth
        "small": [1] * 7 + [1, 1, 1, 1, 1, 1, 3],  # 9 vs 7: +28.6% but under 10 views: not trending
    }
    rows = [(d0 + timedelta(days=i), p, v) for p, vs in views.items() for i, v in enumerate(vs)]
    daily = spark.createDataFrame(rows, "date date, product_id string, views bigint")
    last = {r.product_id: r for r in trends.with_growth(daily, "product_id", "views").where(
        f"date = DATE'{d0 + timedelta(days=13)}'").collect()}
    assert (last["flat"].views_7d, last["flat"].views_prev_7d, last["flat"].growth_7d) == (35, 35, 0.0)
    assert (last["rising"].growth_7d, last["spiking"].growth_7d, last["small"].growth_7d) == (1.0, 2.0, 0.2857)
    assert last["tiny"].growth_7d is None and not last["tiny"].trending
    assert {p for p, r in last.items() if r.trending} == {"rising", "spiking"}
    assert (last["spiking"].trend_rank, last["rising"].trend_rank, last["flat"].trend_rank) == (1, 2, None)


def _silver(lake: Lake, spark, name: str, rows: list[dict]) -> None:
    t = table(name)
    lake.snapshot(name, spark.createDataFrame([tuple(r.get(c.name) for c in t.columns) for r in rows], t.schema()))


@pytest.mark.integration
def test_every_campaign_consistency_verdict(spark, tmp_path):
    lake = Lake(Config(lake_root=str(tmp_path / "lake")), spark)
    t = datetime(2026, 11, 3, 12, tzinfo=timezone.utc)
    _silver(lake, spark, "silver.campaigns", [{"campaign_id": "C1", "utm_campaign": "spring", "message_id": "M2",
                                               "platforms": ["facebook", "instagram", "x", "tiktok"]}])
    _silver(lake, spark, "silver.campaign_posts", [
        {"platform": "facebook", "post_id": "fb1", "campaign_id": "C1", "message_id": "M2", "published_at": t},
        {"platform": "instagram", "post_id": "ig1", "campaign_id": "C1", "message_id": "M1", "published_at": t},
        {"platform": "tiktok", "post_id": "tt1", "campaign_id": "C1", "message_id": "M2", "published_at": t},
        {"platform": "pinterest", "post_id": "pi1", "campaign_id": "C1", "message_id": "M2", "published_at": t}])
    lake.ensure("silver.social_interactions")
    from deltalake import write_deltalake

    si = table("silver.social_interactions")
    like = {c.name: None for c in si.columns} | {"platform": "facebook", "event_id": "e1", "interaction_type": "like",
                                                 "actor_id_hash": "h1", "target_type": "post", "target_id": "fb1",
                                                 "occurred_at": t, "campaign_id": "C1", "message_id": "M2",
                                                 "event_date": t.date()}
    write_deltalake(lake.path("silver.social_interactions"),
                    spark.createDataFrame([tuple(like[c.name] for c in si.columns)], si.schema()).toArrow(), mode="append")
    orders = spark.createDataFrame([], table("gold.campaign_orders").schema())
    got = {r.platform: r.consistency for r in trends.campaign_performance(lake, orders).collect()}
    assert got == {"facebook": "consistent", "instagram": "stale", "x": "missing", "tiktok": "silent",
                   "pinterest": "unscheduled"}


@pytest.mark.integration
@pytest.mark.parametrize("seed", [1])
def test_appending_new_rows_to_stored_facts_gives_the_facts_of_the_whole_history(spark, refined, seed):
    """``relationship.append``: the facts of a history before some rows, and of those rows read with the rest, give
    the facts of the whole history. The new rows are a random share of every customer's rows after their first
    (late rows between old ones included, purchases and social touches among them, so that a late social touch
    influences a stored purchase): exactly the facts a whole recomputation gives."""
    from pyspark.sql import functions as F

    from jobs.gold import relationship, timeline

    cfg, _, _ = refined
    lake = Lake(cfg, spark)
    identity, orders = lake.read("silver.identity_map"), lake.read("silver.orders")
    every = lake.read("gold.customer_facts").select("customer_key")
    rows = timeline.numbered(timeline.customer_rows(lake, every, identity)).withColumn(
        "_new", (F.col("seq") > 1) & (F.rand(seed) < 0.4))
    old = rows.where("NOT _new").drop("seq").selectExpr(
        "*", f"row_number() OVER (PARTITION BY customer_key ORDER BY {views.ORDER}) AS seq")
    stored = relationship.facts(old, orders)
    appended = relationship.append(stored, relationship.facts(rows, orders, counted="_new"))
    untouched = stored.join(appended.select("customer_key"), "customer_key", "left_anti")
    got, want = appended.unionByName(untouched), relationship.facts(rows, orders)
    cols = [c for c in want.columns if c != "engagement_by_platform"]
    as_rows = lambda df: sorted(map(tuple, df.select(*cols, F.to_json("engagement_by_platform").alias("m")).collect()))  # noqa: E731
    assert as_rows(got) == as_rows(want)
    new = rows.where("_new")
    assert new.where("channel = 'social'").count() > 0 and new.where("event_type IN ('order_placed', 'store_purchase')").count() > 0
