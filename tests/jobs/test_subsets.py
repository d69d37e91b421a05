"""Any subset of sources works: a lake with only clickstream, only orders, only social, or two of them, goes
through ingest, refine, curate, the gates and export. Missing tables are not applicable, not failures; what
is defined matches the all-sources lake."""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from jobs.config import Config
from jobs.lake import Lake
from jobs.pipeline.runner import run_pipeline, run_stage
from jobs.runs.window import Window
from tests.lakes import PII_KEY

pytestmark = pytest.mark.integration


def subset_lake(spark, small_landing, tmp_path, sources: tuple[str, ...], s3_config=None) -> Config:
    landing, _ = small_landing
    mine = tmp_path / "landing"
    for s in sources:
        shutil.copytree(landing / s, mine / s)
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(mine), pii_key=PII_KEY)
    if s3_config is not None:
        s3, bucket = s3_config
        cfg = dataclasses.replace(s3, lake_root=cfg.lake_root, landing_root=cfg.landing_root, pii_key=PII_KEY,
                                  export_uri=f"s3://{bucket}/exports")
    results = run_pipeline(spark, cfg, Window(), stages=("ingest", "refine", "curate"))
    assert all(r.gate is None or r.gate.passed for r in results.values())
    return cfg


def values(spark, cfg: Config, table: str, columns: tuple[str, ...], where: str = "TRUE") -> list[tuple]:
    df = Lake(cfg, spark).read(table).where(where).select(*columns)
    return sorted(tuple(str(v) for v in r) for r in df.collect())


def gates_not_applicable(spark, cfg: Config) -> set[str]:
    return {r.table_name for r in Lake(cfg, spark).read("ops.quality_gates").where("status = 'not_applicable'").collect()}


def test_an_orders_only_retailer_gets_order_timelines_relationships_rfm_and_exports(spark, small_landing, refined,
                                                                                    tmp_path, s3_config):
    full, _, _ = refined
    cfg = subset_lake(spark, small_landing, tmp_path, ("orders",), s3_config)
    lake = Lake(cfg, spark)
    assert values(spark, cfg, "silver.orders", ("order_id", "status", "total_price")) == \
        values(spark, full, "silver.orders", ("order_id", "status", "total_price"))
    assert {"silver.clickstream_events", "silver.social_interactions", "silver.sessions"} <= gates_not_applicable(spark, cfg)
    assert "silver.orders" not in gates_not_applicable(spark, cfg)
    events = {r.event_type for r in lake.read("gold.customer_timeline").select("event_type").distinct().collect()}
    assert events and events <= {"order_placed", "store_purchase", "order_paid", "order_fulfilled", "order_cancelled",
                                 "order_refunded", "order_pending"}
    rel = lake.read("gold.customer_relationship")
    assert rel.where("rfm_segment IS NOT NULL").count() > 100
    both = ("sum(kept_orders) AS orders", "sum(revenue) AS revenue")
    assert rel.selectExpr(*both).first() == Lake(full, spark).read("gold.customer_relationship").selectExpr(*both).first()
    sold = ("date", "product_id", "orders", "units", "revenue")
    assert values(spark, cfg, "gold.daily_product_trends", sold, "orders > 0") == \
        values(spark, full, "gold.daily_product_trends", sold, "orders > 0")
    assert lake.read("gold.daily_product_trends").where("title IS NOT NULL").count() == 0  # no catalogue: null titles
    assert lake.read("gold.campaign_performance").count() == 0  # no campaigns
    export = run_stage(spark, cfg, "export", Window(), progress=lambda m: None).reports["export"]
    assert export.rows["customer_features"] == rel.count() and export.rows["interactions"] > 0


@pytest.mark.parametrize("sources, same", [
    (("clickstream",), (("silver.sessions", ("session_id", "user_id", "events", "converted"), "TRUE"),
                        ("gold.daily_product_trends", ("date", "product_id", "views", "carts"), "views + carts > 0"))),
    (("social",), (("gold.daily_platform_engagement", ("date", "platform", "interactions", "likes", "unique_actors"),
                    "TRUE"),)),
    (("clickstream", "orders"), (("silver.orders", ("order_id", "status"), "TRUE"),
                                 ("gold.daily_product_trends", ("date", "product_id", "views", "orders"), "TRUE"))),
])
@pytest.mark.slow
def test_other_subsets_build_what_their_sources_define(spark, small_landing, refined, tmp_path, sources, same):
    full, _, _ = refined
    cfg = subset_lake(spark, small_landing, tmp_path, sources)
    for table, columns, where in same:
        assert values(spark, cfg, table, columns, where) == values(spark, full, table, columns, where), table
    lake = Lake(cfg, spark)
    assert lake.read("gold.customer_timeline").count() > 0 and lake.read("gold.campaign_performance").count() == 0
    missing = {t for t, src in (("silver.orders", "orders"), ("silver.clickstream_events", "clickstream"),
                                ("silver.social_interactions", "social")) if src not in sources}
    assert missing <= gates_not_applicable(spark, cfg)


def test_a_required_source_that_never_landed_fails_the_gate(spark, small_landing, tmp_path):
    from jobs.quality.gate import QualityGateError

    landing, _ = small_landing
    shutil.copytree(landing / "clickstream", tmp_path / "landing" / "clickstream")
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(tmp_path / "landing"), pii_key=PII_KEY,
                 required="clickstream,orders")
    with pytest.raises(QualityGateError, match="bronze.orders.*does not exist"):
        run_stage(spark, cfg, "ingest", Window())
