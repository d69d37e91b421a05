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


@pytest.mark.parametrize("seed", [3])
def test_replacing_rows_from_a_day_on_and_moving_changed_orders_gives_the_facts_of_the_whole_history(spark, refined,
                                                                                                       seed):
    """``relationship.replace_tail`` and ``adjusted``: stored facts of a history as it was (some rows from a
    customer's second day on missing, some there at another time, orders in another kept state and total), less the
    facts of those rows as they were, plus the facts of the rows as they are, moved by what the changed orders count
    now against then, give exactly the facts a whole recomputation of the history as it is gives; only the customers
    ``tail_unknown`` names (no rows left from their day on) are left to that."""
    from pyspark.sql import functions as F

    from jobs.gold import changes, timeline

    cfg, _, _ = refined
    lake = Lake(cfg, spark)
    identity, orders = lake.read("silver.identity_map"), lake.read("silver.orders")
    every = lake.read("gold.customer_facts").select("customer_key")
    rows = timeline.customer_rows(lake, every, identity)
    since = (rows.groupBy("customer_key").agg(F.date_add(F.min("occurred_date"), 1).alias("since"),
                                              F.max("occurred_date").alias("_last"))
             .where("_last >= since").drop("_last"))
    marked = rows.join(since, "customer_key", "left").withColumn("_r", F.rand(seed)).withColumn(
        "_tail", F.coalesce(F.col("occurred_date") >= F.col("since"), F.lit(False)))
    # as it was: a third of the later rows not there yet, a tenth an hour earlier (no earlier than the customer's
    # day), a tenth an hour later (so a last interaction can move back)
    earlier = F.greatest(F.col("occurred_at") - F.expr("INTERVAL 1 HOUR"), F.col("since").cast("timestamp"))
    was = (marked.where(~(F.col("_tail") & (F.col("_r") < 0.33)))
           .withColumn("occurred_at", F.when(F.col("_tail") & (F.col("_r") > 0.9), earlier)
                       .when(F.col("_tail") & (F.col("_r") > 0.8), F.col("occurred_at") + F.expr("INTERVAL 1 HOUR"))
                       .otherwise(F.col("occurred_at")))
           .withColumn("occurred_date", F.to_date("occurred_at")).drop("since", "_r", "_tail"))
    was = lake.checkpoint(was, "test-tail", "was")  # drawn once: every plan below reads the same rows
    # then, some orders whose purchase was there were in another state or total
    bought = (was.where("event_type IN ('order_placed', 'store_purchase')")
              .select(F.col("order_id").cast("bigint").alias("order_id")).distinct().withColumn("_r", F.rand(seed + 1)))
    then_orders = orders.join(bought, "order_id", "left").select(
        *[F.when(F.col("_r") < 0.15, F.lit("cancelled")).otherwise(F.col(c)).alias(c) if c == "status" else
          F.when(F.col("_r") > 0.9, F.col(c) + F.lit(1)).otherwise(F.col(c)).alias(c) if c == "total_price" else F.col(c)
          for c in orders.columns])
    then_orders = lake.checkpoint(then_orders, "test-tail", "orders")

    def numbered(df):
        return df.selectExpr("*", f"row_number() OVER (PARTITION BY customer_key ORDER BY {views.ORDER}) AS seq")

    def counted(df):
        return numbered(df.join(since, "customer_key").withColumn("_c", F.col("occurred_date") >= F.col("since")).drop(
            "since"))

    stored = relationship.adjusted(relationship.facts(numbered(was), then_orders),
                                   changes.order_adjustments(identity, orders, then_orders))
    before = relationship.facts(counted(was), orders, counted="_c")
    after = relationship.facts(counted(rows), orders, counted="_c")
    unknown = relationship.tail_unknown(after, since)
    got = (relationship.replace_tail(stored, before, after, since)
           .unionByName(stored.join(since, "customer_key", "left_anti"))).join(unknown, "customer_key", "left_anti")
    want = relationship.facts(numbered(rows), orders).join(unknown, "customer_key", "left_anti")
    cols = [c for c in want.columns if c != "engagement_by_platform"]
    as_rows = lambda df: sorted(map(tuple, df.select(*cols, F.to_json("engagement_by_platform").alias("m")).collect()))  # noqa: E731
    assert as_rows(got) == as_rows(want)
    compared, replaced = want.count(), since.join(unknown, "customer_key", "left_anti").count()
    assert replaced > 100 and compared > replaced and unknown.count() < replaced / 10, (compared, replaced)
    moved = changes.order_adjustments(identity, orders, then_orders).where("kept_orders <> 0 OR revenue <> 0")
    assert moved.count() > 10

def _rows(name: str, rows: list[dict]):
    import pyarrow as pa

    t = table(name)
    full = [{c.name: None for c in t.columns} | r for r in rows]
    return pa.Table.from_pylist(full, schema=pa.schema([(c.name, _arrow(c.type)) for c in t.columns]))


def _arrow(kind: str):
    import pyarrow as pa

    return {"string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC"), "date": pa.date32(), "int": pa.int32(),
            "bigint": pa.int64(), "boolean": pa.bool_()}.get(kind) or (
        pa.list_(pa.string()) if kind == "array<string>" else pa.string())


@pytest.mark.integration
def test_campaign_performance_recounts_only_what_changed_and_equals_a_full_count(spark, tmp_path):
    """Campaigns C1 and C3 ran on days 1-2, C2 on day 10. A day that adds C2's likes recounts C2 only, from day 10;
    a late like of C1 on day 2 and a visit on day 11 recount C1 (and C2, counted since day 2) from C1's first
    like, and the visits of its UTM name from its first visit; an erased person recounts C1 and C3, whose only
    like was theirs. Orders replaced in ``gold.campaign_orders`` recount their campaigns' order counts. Each time
    the table equals a count of everything."""
    from deltalake import DeltaTable, write_deltalake

    from jobs.gold import changes

    lake = Lake(Config(lake_root=str(tmp_path / "lake")), spark)
    day = {d: datetime(2026, 11, d, 12, tzinfo=timezone.utc) for d in (1, 2, 10, 11)}
    _silver(lake, spark, "silver.campaigns", [
        {"campaign_id": "C1", "utm_campaign": "spring", "message_id": "M1", "platforms": ["instagram", "facebook"]},
        {"campaign_id": "C2", "utm_campaign": "summer", "message_id": "M2", "platforms": ["instagram"]},
        {"campaign_id": "C3", "utm_campaign": "autumn", "message_id": "M3", "platforms": ["instagram"]}])
    _silver(lake, spark, "silver.campaign_posts", [
        {"platform": "instagram", "post_id": "ig1", "campaign_id": "C1", "message_id": "M1", "published_at": day[1]},
        {"platform": "facebook", "post_id": "fb1", "campaign_id": "C1", "message_id": "M1", "published_at": day[1]},
        {"platform": "instagram", "post_id": "ig2", "campaign_id": "C2", "message_id": "M2", "published_at": day[10]},
        {"platform": "instagram", "post_id": "ig3", "campaign_id": "C3", "message_id": "M3", "published_at": day[1]}])
    for name in ("silver.social_interactions", "silver.sessions"):
        lake.ensure(name)

    def like(event: str, who: str, post: str, d: int, platform: str = "instagram") -> dict:
        return {"platform": platform, "event_id": event, "interaction_type": "like", "actor_id_hash": who,
                "target_type": "post", "target_id": post, "occurred_at": day[d], "event_date": day[d].date()}

    def visit(session: str, utm: str, d: int, converted: bool) -> dict:
        return {"session_id": session, "utm_campaign": utm, "utm_source": "Instagram", "session_start": day[d],
                "session_date": day[d].date(), "converted": converted}

    def land(social: list[dict] = (), sessions: list[dict] = ()) -> None:
        if social:
            write_deltalake(lake.path("silver.social_interactions"), _rows("silver.social_interactions", social),
                            mode="append")
        if sessions:
            write_deltalake(lake.path("silver.sessions"), _rows("silver.sessions", sessions), mode="append")

    orders = spark.createDataFrame([], table("gold.campaign_orders").schema())

    def versions():  # what a curate records: the silver versions it read
        return {name: lake.version(name) for name in changes.READ_SINCE + tuple(changes.REFERENCE) if lake.exists(name)}

    def count(previous, attributed=None, orders=orders):
        scope = trends.recount(lake, previous, attributed)
        lake.snapshot("gold.campaign_performance", trends.campaign_performance(lake, orders, scope))
        every = sorted(map(repr, trends.campaign_performance(lake, orders).collect()))
        assert sorted(map(repr, lake.read("gold.campaign_performance").collect())) == every
        return scope

    land([like("e1", "h1", "ig1", 1), like("e2", "h2", "ig1", 1), like("e3", "h1", "fb1", 2, "facebook"),
          like("e0", "h1", "ig3", 1)],
         [visit("s1", "spring", 1, True), visit("s2", "spring", 2, False)])
    assert count(None) is None  # the first count: everything
    previous = versions()
    land([like("e4", "h3", "ig2", 10), like("e5", "h3", "ig2", 10)])
    scope = count(previous)
    assert (scope.campaigns, scope.social_from, scope.utms, scope.visits_from) == (("C2",), day[10].date(), (), None)
    c2 = lake.read("gold.campaign_performance").where("campaign_id = 'C2'").first()
    assert (c2.interactions, c2.unique_actors, c2.first_interaction_at, c2.consistency) == (2, 1, day[10].replace(tzinfo=None), "consistent")

    previous = versions()
    land([like("e6", "h3", "ig1", 2)], [visit("s3", "spring", 11, True)])
    scope = count(previous)
    assert (scope.campaigns, scope.social_from, scope.utms, scope.visits_from) == (
        ("C1", "C2"), day[1].date(), ("spring",), day[1].date())
    c1 = lake.read("gold.campaign_performance").where("campaign_id = 'C1' AND platform = 'instagram'").first()
    assert (c1.interactions, c1.unique_actors, c1.site_visits, c1.visit_orders) == (3, 3, 3, 2)

    previous = versions()  # someone erased: their likes leave days 1 and 2, C3's only like among them
    DeltaTable(lake.path("silver.social_interactions")).delete("actor_id_hash = 'h1'")
    scope = count(previous)
    assert scope.campaigns == ("C1", "C2", "C3") and scope.social_from == day[1].date()  # C3: by its stored last
    c3 = lake.read("gold.campaign_performance").where("campaign_id = 'C3'").first()
    assert (c3.interactions, c3.consistency) == (0, "silent")
    c1 = lake.read("gold.campaign_performance").where("campaign_id = 'C1' AND platform = 'facebook'").first()
    assert (c1.interactions, c1.consistency) == (0, "silent")

    previous = versions()  # nothing new: nothing recounted, the same table
    assert count(previous).campaigns == () and lake.read("gold.campaign_performance").count() == 4

    def attributed(*rows):  # (order, campaign, platform, touch day and hour)
        return spark.createDataFrame([("k1", o, c, p, day[d].replace(hour=h), day[11]) for o, c, p, d, h in rows],
                                     table("gold.campaign_orders").schema())

    count(None, orders=attributed(("o1", "C1", "instagram", 10, 1), ("o1", "C3", "instagram", 10, 2),
                                  ("o2", "C1", "facebook", 10, 3)))
    # o1's rows replaced: a later touch of C2 is now its last; o2 (C1 only) keeps its rows
    scope = count(versions(), ("C1", "C2", "C3"), attributed(
        ("o1", "C1", "instagram", 10, 1), ("o1", "C3", "instagram", 10, 2), ("o1", "C2", "instagram", 10, 4),
        ("o2", "C1", "facebook", 10, 3)))
    assert scope.attributed == ("C1", "C2", "C3")
    got = {(r.campaign_id, r.platform): (r.orders_within_7d, r.last_touch_orders)
           for r in lake.read("gold.campaign_performance").collect()}
    assert got == {("C1", "instagram"): (1, 0), ("C1", "facebook"): (1, 1), ("C2", "instagram"): (1, 1),
                   ("C3", "instagram"): (1, 0)}
    _silver(lake, spark, "silver.campaign_posts", [  # a new posts extract: attribution may move, all recounted
        {"platform": "instagram", "post_id": "ig1", "campaign_id": "C1", "message_id": "M1", "published_at": day[1]}])
    assert count(versions() | {"silver.campaign_posts": 0}) is None


def test_active_dates_keep_the_days_the_weekly_risk_can_look_at(spark):
    """A customer's ``active_dates`` are the days of their interactions in ``ACTIVE_DAYS`` before the last one (what
    the earliest week of the report's at-risk panel can look at), whether computed from the whole history or appended
    to stored facts from new rows."""
    from jobs.gold import timeline

    last = date(2026, 11, 30)
    days = [last - timedelta(days=n) for n in (400, relationship.ACTIVE_DAYS + 1, relationship.ACTIVE_DAYS, 100, 99, 0)]

    def rows(ds, new=()):
        data = [(datetime.combine(d, datetime.min.time(), tzinfo=timezone.utc), d, "web", None, "visit", None, None,
                 "user:1", "sessions", f"s{i}", "c", d in new) for i, d in enumerate(ds)]
        df = spark.createDataFrame(data, "occurred_at timestamp, occurred_date date, channel string, platform string, "
                                         "event_type string, order_id string, campaign string, identifier string, "
                                         "source_table string, source_key string, customer_key string, _new boolean")
        return timeline.numbered(df)

    orders = spark.createDataFrame([], "order_id bigint, total_price decimal(18,2), status string")
    whole = relationship.facts(rows(days).drop("_new"), orders).first()
    assert whole.active_dates == days[2:]
    stored = relationship.facts(rows(days[:-1]).drop("_new"), orders)
    assert stored.first().active_dates == days[1:-1]  # its last was 99 days earlier: reaching 99 days further back
    appended = relationship.append(stored, relationship.facts(rows(days, new={last}), orders, counted="_new")).first()
    assert appended.active_dates == whole.active_dates and appended.last_seen == whole.last_seen
