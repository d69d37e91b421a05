"""Silver on generated data: the manifest, exactly; idempotent; day by day = all at once; no raw PII."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import pytest

from jobs.config import Config, ConfigError
from jobs.lake import Lake
from jobs.runs.report import ReconciliationError
from schemas.sources import EVENT_SOURCES
from jobs.runs.window import Window
from jobs.silver import refine
from tests.lakes import PII_KEY, ingest_and_refine, table_rows

pytestmark = pytest.mark.integration
SILVER = ("clickstream_events", "social_interactions", "order_status_history", "orders", "order_lines",
          "crm_customers", "products", "campaigns", "campaign_posts", "identity_map", "identity_edges", "identity_nodes", "sessions")


@pytest.mark.parametrize("source", EVENT_SOURCES)
def test_silver_quarantine_and_duplicates_match_the_manifest(refined, source):
    _, manifest, reports = refined
    s, r = manifest["sources"][source], reports[source]
    assert r.silver_rows == r.new_rows == s["valid"]
    assert r.duplicates == s["exact_duplicates"]
    expected = {k: n for k, n in s["bad"].items() if n}
    expected["corrupt_gzip_member"] = s["truncated_gzip"]["members"]
    if s["id_conflicts"]:
        expected["id_conflict"] = s["id_conflicts"]
    assert r.quarantined == expected
    assert r.balanced and r.landed == s["lines"] - s["truncated_gzip"]["lines"] + s["truncated_gzip"]["members"]


def test_audit_records_a_balanced_row_per_source(spark, refined):
    cfg, _, _ = refined
    lake = Lake(cfg, spark)
    audit = {r.source: r for r in lake.read("ops.audit").collect()}
    assert set(audit) == set(EVENT_SOURCES)
    assert all(a.balanced and a.landed == a.silver_rows + a.quarantined + a.duplicates for a in audit.values())


def test_an_id_conflict_says_where_the_first_copy_is(spark, refined):
    cfg, _, _ = refined
    lake = Lake(cfg, spark)
    row = lake.read("ops.quarantine").where("reason = 'id_conflict'").first()
    first_file, first_line = row.detail.split(" first seen at ")[1].split(" ")[0].rsplit(":", 1)
    original = lake.read("silver.clickstream_events").where(
        f"source_file = '{first_file}' AND line_number = {first_line}").first()
    assert original is not None and original.message_id == json.loads(row.raw)["messageId"]
    # the raw line is the one bronze holds for the conflicting row (staged refine keeps only quarantined rows' lines)
    line = lake.read("bronze.clickstream").where(
        f"source_file = '{row.source_file}' AND line_number = {row.line_number}").first()
    assert line is not None and row.raw == line.value


@pytest.mark.slow
def test_rerunning_leaves_every_table_identical(spark, refined):
    cfg, _, _ = refined
    lake = Lake(cfg, spark)
    paths = [lake.path(f"silver.{t}") for t in SILVER] + [lake.path(f"ops.{t}") for t in ("quarantine", "duplicates")]
    before = {p: table_rows(spark, p) for p in paths}
    again = ingest_and_refine(spark, cfg)
    assert all(again[s].new_rows == 0 and again[s].balanced for s in EVENT_SOURCES)
    assert {p: table_rows(spark, p) for p in paths} == before


@pytest.mark.slow
def test_day_by_day_gives_the_same_silver_as_one_run(spark, refined, daily):
    cfg, _, _ = refined
    for table in ("clickstream_events", "social_interactions", "order_status_history", "orders", "order_lines",
                  "identity_map", "identity_nodes", "sessions"):
        assert table_rows(spark, Lake(daily).path(f"silver.{table}")) == table_rows(spark, Lake(cfg).path(f"silver.{table}")), table
    # a link's end is when a run knew it (day by day, the day it was found shared; in one run, that run's end): the
    # same links end, for the same reasons, at times that differ by design
    edges = [sorted(tuple(r) for r in Lake(c, spark).read("silver.identity_edges").selectExpr(
        "a", "b", "via", "first_seen", "evidence_table", "evidence_key", "valid_to IS NULL AS joins", "end_reason").collect())
        for c in (daily, cfg)]
    assert edges[0] == edges[1]
    assert any(not e[6] for e in edges[0])  # some link ended (a shared identifier in the generated data)
    for table in ("quarantine", "duplicates"):
        assert table_rows(spark, Lake(daily).path(f"ops.{table}")) == table_rows(spark, Lake(cfg).path(f"ops.{table}")), table


def test_no_raw_pii_in_silver(spark, refined, small_landing):
    cfg, _, _ = refined
    landing, _ = small_landing
    truth = [json.loads(line) for p in sorted((Path(landing) / "_truth/persons").glob("*.gz"))
             for line in zlib.decompress(p.read_bytes(), 31).decode().splitlines()]
    secrets = {t["email"] for t in truth if t.get("email")} | {t["phone"] for t in truth if t.get("phone")}
    secrets |= {a["handle"].lstrip("@") for t in truth for a in t.get("social_accounts", [])}
    secrets |= {a["platform_user_id"] for t in truth for a in t.get("social_accounts", []) if len(a["platform_user_id"]) > 8}
    lake = Lake(cfg, spark)
    for table in SILVER:
        df = lake.read(f"silver.{table}")
        text = "\n".join(r[0] for r in df.selectExpr("to_json(struct(*))").collect())
        assert not re.search(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", text), table  # no email address
        assert not re.search(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.(?!0\b)\d{1,3}\b", text), table  # no full IPv4
        tokens = set(re.findall(r"[\w.+@-]+", text))
        assert not (secrets & tokens), (table, sorted(secrets & tokens)[:3])


def test_hashes_are_keyed_and_join_across_sources(spark, refined):
    import hashlib
    import hmac

    cfg, _, _ = refined
    lake = Lake(cfg, spark)
    crm = lake.read("silver.crm_customers")
    linked = crm.selectExpr("explode(social_accounts) AS a").selectExpr("a.actor_id_hash AS h")
    social = lake.read("silver.social_interactions").select("actor_id_hash")
    assert linked.join(social, linked.h == social.actor_id_hash).count() > 0  # CRM links reach social actors
    orders = lake.read("silver.orders").where("email_hash IS NOT NULL").select("email_hash")
    assert orders.join(crm, "email_hash").count() > 0
    assert hmac.new(PII_KEY.encode(), b"a@b.co", hashlib.sha256).hexdigest() == spark.sql(
        f"SELECT {__import__('jobs.pii.keyring', fromlist=['x']).hmac_sql(repr('A@B.co '), PII_KEY)} AS h").first().h


def test_order_state_is_the_newest_update_whatever_the_arrival_order(spark, refined):
    cfg, _, _ = refined
    lake = Lake(cfg, spark)
    from pyspark.sql import functions as F

    history = lake.read("silver.order_status_history")
    newest = history.groupBy("order_id").agg(
        F.expr("max_by(status, updated_at)").alias("newest_status"), F.max("updated_at").alias("newest_at"),
        F.expr("max_by(received_at, updated_at) < max(received_at)").alias("overtaken"))
    current = lake.read("silver.orders").select("order_id", "status", "updated_at")
    rows = newest.join(current.select("order_id", F.col("status").alias("cur"), F.col("updated_at").alias("cur_at")),
                       "order_id")
    assert rows.count() == current.count() == history.select("order_id").distinct().count()
    assert rows.where("cur <> newest_status OR cur_at <> newest_at").count() == 0
    assert rows.where("overtaken").count() > 0  # some orders had an older delivery arrive last, and it did not win
    lines = lake.read("silver.order_lines")
    assert lines.select("order_id").distinct().count() == current.count()


def test_late_events_land_in_their_own_date(spark, refined):
    cfg, manifest, _ = refined
    lake = Lake(cfg, spark)
    ev = lake.read("silver.clickstream_events")
    late = ev.where("received_at - event_time >= INTERVAL 1 DAY")
    assert late.count() == manifest["sources"]["clickstream"]["late_arrivals"]
    assert late.where("event_date < landing_dt AND event_date = to_date(event_time)").count() == late.count()
    bots = ev.where("is_bot")
    assert bots.count() > 0 and bots.where("device_class <> 'bot'").count() == 0


def test_a_window_that_does_not_balance_fails_loudly(spark, refined, tmp_path):
    import shutil

    cfg, _, _ = refined
    copy = Config(lake_root=str(tmp_path / "lake"), landing_root=cfg.landing_root, pii_key=PII_KEY)
    shutil.copytree(Lake(cfg).root, Lake(copy).root)
    lake = Lake(copy, spark)
    from pyspark.sql import functions as F

    # tamper: a duplicate that no landed line accounts for
    dups = lake.read("ops.duplicates").where("source = 'social'").limit(1)
    lake.append_new("ops.duplicates", dups.withColumn("source_file", F.concat("source_file", F.lit("-ghost"))))
    with pytest.raises(ReconciliationError, match="records landed .ops.ingest_log. but silver"):
        refine.run(spark, copy, Window(), source="social")
    audit = lake.read("ops.audit").where("source = 'social'").first()
    assert audit.balanced is False
    from jobs.pipeline import runner
    from jobs.runs.guards import PromotionRefused

    with pytest.raises(PromotionRefused, match=r"curate will not build(.|\n)*social: refine did not reconcile landing hours"):
        runner.check(spark, copy, "curate", Window())  # a failed reconciliation stops curate, not only the gate


def test_refine_needs_the_pii_key(spark, refined):
    cfg, _, _ = refined
    with pytest.raises(ConfigError, match="RAPPORT_PII_KEY"):
        refine.run(spark, Config(lake_root=cfg.lake_root, landing_root=cfg.landing_root), Window(), source="orders")


def test_crm_ids_are_kept_as_keyed_hashes_unless_declared_non_personal(spark, refined, tmp_path):
    """A CRM that keys customers by email puts no raw email past bronze: its ids are hashed like any identifier;
    RAPPORT_CRM_IDS=plain keeps opaque ids as they are."""
    import dataclasses
    import hashlib
    import hmac
    import json

    from jobs.silver import reference

    cfg, manifest, _ = refined
    lake = Lake(cfg, spark)
    ids = [r.customer_id for r in lake.read("silver.crm_customers").select("customer_id").collect()]
    raw = [json.loads(r.value)["customer_id"] for r in lake.read("bronze.customers").select("value").collect()
           if json.loads(r.value).get("customer_id")]
    assert len(ids) > 100 and set(ids).isdisjoint(raw)
    assert set(ids) <= {hmac.new(PII_KEY.encode(), c.strip().lower().encode(), hashlib.sha256).hexdigest() for c in raw}
    crm_nodes = lake.read("silver.identity_map").where("id_type = 'crm'").select("identifier").collect()
    assert crm_nodes and all(r.identifier[4:] in set(ids) for r in crm_nodes)
    by_email = spark.createDataFrame([('{"customer_id": "Jane@Shop.example", "email": "jane@shop.example"}',)], "value string")
    from pyspark.sql import functions as F

    parsed = by_email.select(F.from_json("value", reference.schema.SCHEMAS["customers"]).alias("j"))
    hashed = reference.conform("customers", parsed, cfg).first().customer_id
    assert hashed == hmac.new(PII_KEY.encode(), b"jane@shop.example", hashlib.sha256).hexdigest()
    plain = reference.conform("customers", parsed, dataclasses.replace(cfg, crm_ids="plain")).first().customer_id
    assert plain == "Jane@Shop.example"


def test_a_window_refined_again_parses_only_the_lines_ingested_since(spark, refined, tmp_path, monkeypatch):
    """A micro-batch refines the same window again with a few new files: it parses only their lines, the window
    still balances, and silver equals the lake built in one run."""
    import shutil
    from datetime import timedelta

    cfg_whole, _, _ = refined
    monkeypatch.setattr(refine, "RESCAN", timedelta(0))  # every line of the test is ingested within the clock margin
    landing, held = tmp_path / "landing", tmp_path / "held"
    shutil.copytree(cfg_whole.landing_root, landing)
    last_day = max((landing / "clickstream").glob("dt=*"))
    shutil.move(str(last_day), held)  # the last day's clickstream files arrive after the first refine
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    first = ingest_and_refine(spark, cfg)
    shutil.move(str(held), last_day)
    second = ingest_and_refine(spark, cfg)
    lake = Lake(cfg, spark)
    new_lines = lake.read("bronze.clickstream").where(f"landing_dt = DATE'{last_day.name[3:]}'").count()
    assert second["clickstream"].parsed == new_lines > 0  # only the lines ingested since the first refine
    assert first["clickstream"].parsed > new_lines
    assert second["social"].parsed == second["orders"].parsed == 0  # nothing new landed for them
    assert all(second[s].balanced for s in EVENT_SOURCES)
    for table in ("clickstream_events", "social_interactions", "order_status_history", "sessions"):
        assert table_rows(spark, lake.path(f"silver.{table}")) == table_rows(spark, Lake(cfg_whole).path(
            f"silver.{table}")), table
    for table in ("quarantine", "duplicates"):
        assert table_rows(spark, lake.path(f"ops.{table}")) == table_rows(spark, Lake(cfg_whole).path(f"ops.{table}"))


def test_an_order_update_rewrites_only_its_creation_date_and_a_moved_order_stays_one_row(spark, tmp_path):
    """silver.orders is merged against the creation dates of the orders a window brings, not the whole table: a
    later delivery of order 1 rewrites only its date's file, and order 2 (created the day before) keeps its file. A
    delivery that moves order 3 to another creation date (a changed created_at) is merged against the whole table:
    still one row per order."""
    from datetime import timedelta

    from deltalake import DeltaTable

    from tests.handmade import T0, iso, land, order

    day0, day1 = T0 - timedelta(days=1), T0
    landing = tmp_path / "landing"
    land(landing, "orders", day0, [order(2, "b@x.com", day0)])
    land(landing, "orders", day1, [order(1, "a@x.com", day1), order(3, "c@x.com", day1)])
    later = day1 + timedelta(days=1)
    paid = order(1, "a@x.com", day1)
    paid["order"].update(updated_at=iso(later), financial_status="refunded")
    paid["received_at"] = iso(later)
    moved = order(3, "c@x.com", later)
    moved["order"]["created_at"] = iso(day0)
    land(landing, "orders", later, [paid, moved])
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    lake = Lake(cfg, spark)
    ingest_and_refine(spark, cfg, day0.replace(hour=0), later.replace(hour=0), gates=False)
    before = lake.files("silver.orders").column("path").to_pylist()
    ingest_and_refine(spark, cfg, later.replace(hour=0), later.replace(hour=0) + timedelta(days=1), gates=False)
    rows = {r.order_id: (r.status, r.created_date) for r in lake.read("silver.orders").collect()}
    assert lake.read("silver.orders").count() == 3
    assert rows == {1: ("refunded", day1.date()), 2: ("paid", day0.date()), 3: ("paid", day0.date())}
    assert DeltaTable(lake.path("silver.orders")).history(1)[0]["operation"] == "MERGE"
    kept = set(lake.files("silver.orders").column("path").to_pylist()) & set(before)
    assert any("2026-10-31" in p for p in kept), (before, kept)  # order 2's date was not rewritten by the update of order 1
