"""Identity stitching on hand-made customers, landed as real files and run through bronze and silver."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from jobs.config import Config
from jobs.lake import Lake
from jobs.pii.keyring import crm_id_sql, hmac_sql
from tests.handmade import T0, land, order, seg, social
from tests.lakes import PII_KEY, ingest_and_refine

pytestmark = pytest.mark.integration
@pytest.fixture(scope="module")
def world(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("hand")
    landing = root / "landing"
    land(landing, "reference/customers", T0.replace(hour=0), [
        {"customer_id": "C1", "email": "e1@x.com", "social_accounts": [
            {"platform": "instagram", "platform_user_id": "111", "handle": "@c1"}]},
    ])
    land(landing, "clickstream", T0, [
        # A: anon A1 logs in as U1; on a second device A2 the same U1 identifies with the CRM email
        seg("A1", "U1", T0 + timedelta(minutes=1), event="Signed In", props={"method": "email"}),
        seg("A2", "U1", T0 + timedelta(minutes=2), kind="identify", event=None, traits={"email": "E1@x.com "}),
        # B: B1 logs in as U2; B2 checks out as a guest (order 9001 with email e2)
        seg("B1", "U2", T0 + timedelta(minutes=3), event="Signed In", props={"method": "email"}),
        seg("B2", None, T0 + timedelta(minutes=4), event="Order Completed", props={"order_id": "9001"}),
        # D: one kiosk, four shoppers
        *[seg("KIOSK", f"U{n}", T0 + timedelta(minutes=10 + n), event="Signed In", props={"method": "email"})
          for n in (3, 4, 5, 6)],
        # E: junk user ids never link two devices
        seg("J1", "undefined", T0 + timedelta(minutes=20)),
        seg("J2", "undefined", T0 + timedelta(minutes=21)),
    ])
    land(landing, "orders", T0, [order(9001, "e2@x.com", T0 + timedelta(minutes=4))])
    land(landing, "social", T0, [social("instagram", "111", "@c1", T0 + timedelta(minutes=5)),
                                 social("tiktok", "222", "@soc", T0 + timedelta(minutes=6)),
                                 # F: one handle, two X accounts (a handle renamed and taken by someone else)
                                 social("x", "333", "@nia_ki666", T0 + timedelta(minutes=7)),
                                 social("x", "444", "@nia_ki666", T0 + timedelta(minutes=8))])
    cfg = Config(lake_root=str(root / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    ingest_and_refine(spark, cfg, None, T0 + timedelta(hours=1))
    first = keys(spark, cfg)
    # an hour later B2 logs in as U2: the two B customers are one person
    land(landing, "clickstream", T0 + timedelta(hours=1),
         [seg("B2", "U2", T0 + timedelta(hours=1, minutes=1), event="Signed In", props={"method": "email"})])
    ingest_and_refine(spark, cfg, T0 + timedelta(hours=1), None)
    return spark, cfg, first, keys(spark, cfg)


def keys(spark, cfg) -> dict[str, str]:
    lake = Lake(cfg, spark)
    return {r.identifier: r.customer_key for r in lake.read("silver.identity_map").collect()}


def h(spark, kind: str, value: str) -> str:
    return f"{kind}:" + spark.sql(f"SELECT {hmac_sql(repr(value), PII_KEY)} AS v").first().v


def test_a_chain_of_links_is_one_customer(world):
    spark, _, _, k = world
    ids = ["anon:A1", "anon:A2", "user:U1", h(spark, "email", "e1@x.com"), h(spark, "crm", "C1"),
           h(spark, "social", "instagram:111"), h(spark, "handle", "instagram:c1")]
    assert len({k[i] for i in ids}) == 1


def test_two_customers_merge_and_the_merge_is_recorded(world):
    spark, cfg, before, after = world
    b_first = {before["anon:B1"], before["user:U2"]}
    b_guest = {before["anon:B2"], before["order:9001"], before[h(spark, "email", "e2@x.com")]}
    assert len(b_first) == 1 and len(b_guest) == 1 and b_first != b_guest
    merged = {after[i] for i in ("anon:B1", "user:U2", "anon:B2", "order:9001", h(spark, "email", "e2@x.com"))}
    assert merged == b_first  # B1 arrived first, so its key survives
    lake = Lake(cfg, spark)
    m = lake.read("silver.identity_events").where("action IN ('merge', 'split')").collect()
    assert [(r.other_key, r.customer_key, r.action) for r in m] == [(b_guest.pop(), b_first.pop(), "merge")]
    assert "login" in m[0].why and m[0].known_at is not None


def test_adding_data_never_renumbers_existing_customers(world):
    _, _, before, after = world
    unchanged = [i for i in before if not i.startswith(("anon:B2", "order:9001", "email:"))]
    assert all(after[i] == before[i] for i in unchanged)


def test_a_social_only_customer_has_a_key_of_their_own(world):
    spark, _, _, k = world
    sid, handle = h(spark, "social", "tiktok:222"), h(spark, "handle", "tiktok:soc")
    assert k[sid] == k[handle]
    assert sorted(i for i, key in k.items() if key == k[sid]) == sorted([sid, handle])


def test_a_shared_device_does_not_merge_its_users_and_is_reported(world):
    spark, cfg, _, k = world
    assert len({k[f"user:U{n}"] for n in (3, 4, 5, 6)}) == 4
    lake = Lake(cfg, spark)
    shared = sorted((r.identifier, r.linked) for r in lake.read("silver.identity_shared").collect())
    assert shared == sorted([("anon:KIOSK", 4), (h(spark, "handle", "x:nia_ki666"), 2)])


def test_a_handle_that_joins_two_platform_accounts_merges_neither(world):
    spark, _, _, k = world
    assert k[h(spark, "social", "x:333")] != k[h(spark, "social", "x:444")]


def test_junk_ids_never_link(world):
    _, _, _, k = world
    assert k["anon:J1"] != k["anon:J2"]
    assert not any(i.startswith("user:undefined") for i in k)


def test_no_false_merges_on_generated_people(spark, refined, small_landing):
    """Against the generator's truth: a customer key never holds identifiers of two different people."""
    from pyspark.sql import functions as F

    cfg, _, _ = refined
    landing, _ = small_landing
    truth = spark.read.json(str(landing / "_truth" / "persons")).where("person IS NOT NULL")
    ids = truth.select("person", F.explode(F.array_union(
        F.transform("anonymous_ids", lambda a: F.concat(F.lit("anon:"), a)),
        F.array(F.concat(F.lit("user:"), "user_id"), F.concat(F.lit("crm:"), F.expr(crm_id_sql(cfg, "customer_id"))),
                F.concat(F.lit("email:"), F.expr(hmac_sql("email", PII_KEY))))
    )).alias("identifier")).where("identifier IS NOT NULL")
    lake = Lake(cfg, spark)
    im = lake.read("silver.identity_map").where("NOT is_shared")
    people_per_key = ids.join(im, "identifier").groupBy("customer_key").agg(F.countDistinct("person").alias("people"))
    assert people_per_key.count() > 1000
    assert people_per_key.where("people > 1").count() == 0


def test_the_benchmarks_identity_rates_agree_with_the_truth(spark, refined, small_landing):
    """The benchmark's false-merge and split figures, on the small lake: none merged, every split accounted for."""
    from jobs.bench.identity import rates

    cfg, _, _ = refined
    landing, _ = small_landing
    r = rates(spark, cfg, landing)
    assert r["keys"] > 1000 and r["people"] > 1000
    assert r["false_merged_keys"] == 0 and r["false_merge_rate"] == 0
    assert r["split_joinable"] + r["split_unlinked"] == r["split_people"] < r["people"]
    assert not Path(Lake(cfg, spark).staging("bench-identity")).exists()  # its scratch space is gone


def test_a_later_run_recomputes_only_the_components_it_touched(world):
    """The second run brought one login (B2 as U2): only the two B customers' identifiers are recomputed, each
    customer as one node joined by the new link (nothing stopped joining anything)."""
    import json

    from pyspark.sql import functions as F

    spark, cfg, _, after = world
    run = (Lake(cfg, spark).read("ops.runs").where("step = 'refine.identity' AND status = 'succeeded'")
           .orderBy(F.desc("finished_at")).first())
    counts = json.loads(run.counts)
    b = [i for i, key in after.items() if key == after["user:U2"]]
    assert counts["recomputed"] == len(b) < counts["identifiers"]
    assert counts["contracted"] is True


def test_a_links_first_evidence_is_its_least_time_then_table_then_key_nulls_last(spark):
    """The text a link's evidence rows are ordered by sorts as their (time, table, key) do, a null after every
    value, whatever the keys hold (a table name that begins another, keys with any character, years 1900-2199)."""
    import random
    from datetime import datetime

    from jobs.silver.identity import _evidence_order

    rng = random.Random(3)
    times = [None, datetime(1900, 1, 1), datetime(1969, 12, 31, 23, 59, 59, 999999), datetime(1970, 1, 1),
             datetime(2026, 12, 7, 4, 5, 6, 7), datetime(2199, 12, 31, 23, 59, 59)]
    tables = [None, "ab", "abc", "a", "a!", "a\u0001", "clickstream_events", "order_status_history"]
    keys = [None, "", "a", "a\u0001", "b", "\u00e9|x", "z" * 40, "0"]
    rows = [(rng.choice(times), rng.choice(tables), rng.choice(keys)) for _ in range(400)]
    from pyspark.sql import functions as F

    got = [(r.t, r.tb, r.k) for r in spark.createDataFrame(rows, "t timestamp, tb string, k string").orderBy(
        F.expr(_evidence_order("t", "tb", "k"))).collect()]

    def nulls_last(v):
        return (v is None, v if v is not None else 0)

    assert got == sorted(rows, key=lambda r: tuple(nulls_last(v) for v in r))
