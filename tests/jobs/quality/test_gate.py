"""Quality gates on a copy of generated data: each kind of violation, and what the gate does about it."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import pytest

from jobs.lake import Lake
from jobs.pipeline import runner
from jobs.runs.guards import PromotionRefused
from jobs.runs.window import Window
from jobs.quality import docs, gate
from jobs.quality.gate import QualityGateError
from jobs.quality.suites import load_suites

pytestmark = pytest.mark.integration


@pytest.fixture
def lake_copy(spark, refined, tmp_path):
    cfg, _, _ = refined
    shutil.copytree(Lake(cfg).root, tmp_path / "lake")
    copy = dataclasses.replace(cfg, lake_root=str(tmp_path / "lake"))
    return copy, Lake(copy, spark)


def orders_suite(tmp_path, expectation: str):
    """A suites folder whose silver.orders suite is order ids not null and ``expectation`` (a YAML flow mapping)."""
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "silver_orders.yaml").write_text(
        "table: silver.orders\nscope: table\nexpectations:\n"
        "  - {type: expect_column_values_to_not_be_null, column: order_id, severity: critical}\n" f"  - {expectation}\n")
    return suites


def validate(spark, cfg, layer, **kw):
    return gate.run(spark, cfg, Window(), layer=layer, **kw)


def promotable(spark, cfg, stage):
    runner.check(spark, cfg, stage, Window())


def inject(spark, lake, layer, table, **changes):
    """Append a copy of one existing row with some columns changed: one violation, nothing else."""
    from pyspark.sql import functions as F

    from deltalake import write_deltalake

    df = lake.read(f"{layer}.{table}")
    row = df.limit(1)
    for column, value in changes.items():
        row = row.withColumn(column, F.expr(value).cast(df.schema[column].dataType))
    # written around the jobs on purpose (delta-rs, not Lake): a violation no job would make
    write_deltalake(lake.path(f"{layer}.{table}"), row.select(*df.columns).toArrow(), mode="append")


def results(spark, lake, run_id=None):
    """The results of one gate run (the latest if not named)."""
    from pyspark.sql import functions as F

    df = lake.read("ops.quality_results")
    run_id = run_id or df.orderBy(F.desc("evaluated_at")).first().run_id
    return df.where(f"run_id = '{run_id}'")


def test_clean_data_passes_every_gate_and_every_expectation_is_counted(spark, lake_copy):
    cfg, lake = lake_copy
    runs = []
    for layer in ("bronze", "silver", "gold"):
        out = validate(spark, cfg, layer)
        assert out.passed and out.expectations == sum(len(s.expectations) for s in load_suites(layer))
        runs.append(out.run_id)
    gates = lake.read("ops.quality_gates").where(f"run_id IN ({', '.join(repr(r) for r in runs)})").collect()
    assert {g.table_name for g in gates} == {s.table for s in load_suites()}
    assert all(g.status == "passed" and g.critical_failures == 0 and g.evaluated == g.configured for g in gates)
    configured = sum(len(s.expectations) for s in load_suites())
    assert sum(results(spark, lake, r).count() for r in runs) == configured
    promotable(spark, cfg, "curate")  # no error: promotion allowed


@pytest.mark.parametrize("table, changes, expectation, sample", [
    ("clickstream_events", {}, "expect_column_values_to_be_unique(column=message_id)", None),
    ("clickstream_events", {"message_id": "'neg'", "price": "-5.0"}, "expect_column_values_to_be_between(column=price", "-5.0"),
    ("social_interactions", {"event_id": "'x1'", "platform": "'myspace'"}, "expect_column_values_to_be_in_set(column=platform", "myspace"),
    ("order_status_history", {"webhook_id": "'w1'", "updated_at": "received_at + INTERVAL 2 DAYS"}, "no_future_events", None),
    ("identity_map", {"identifier": "'email:bob@example.com'"}, "expect_column_values_to_not_match_regex(column=identifier", "email:<email>"),
])
def test_a_critical_violation_stops_promotion_with_a_clear_message(spark, lake_copy, table, changes, expectation, sample):
    cfg, lake = lake_copy
    inject(spark, lake, "silver", table, **changes)
    with pytest.raises(QualityGateError) as err:
        validate(spark, cfg, "silver")
    message = str(err.value)
    assert f"silver.{table}: {expectation}" in message and "the next layer will not be built" in message
    if sample:
        assert sample in message
    assert "bob@example.com" not in message  # a gate that catches personal data does not repeat it
    from pathlib import Path

    for folder in ("_docs", "_quality"):  # nor do its Data Docs and stored results
        assert not [p for p in (Path(lake.root) / folder).rglob("*") if p.is_file() and b"bob@example.com" in p.read_bytes()]
    line = next(x for x in message.splitlines() if f"silver.{table}: {expectation}" in x)
    # the line of this expectation says how many rows failed (row rules) or what was observed (an aggregate)
    assert re.search(r": [1-9][\d,]* of [\d,]+ rows failed|: observed \S+", line), line
    with pytest.raises(PromotionRefused, match=f"silver.{table}: the silver gate failed"):
        promotable(spark, cfg, "curate")
    failed = results(spark, lake).where("NOT success AND severity = 'critical'").collect()
    assert len(failed) == 1 and failed[0].table_name == f"silver.{table}"


def test_a_warning_is_recorded_and_the_run_goes_on(spark, lake_copy):
    cfg, lake = lake_copy
    # (a rating of 9 is a row rule now: refine quarantines it, and the silver gate holds it critical)
    inject(spark, lake, "gold", "daily_product_trends", product_id="'r9'", conversion_rate="-1.0")
    validate(spark, cfg, "gold")  # no exception
    warned = results(spark, lake).where("NOT success").collect()
    assert [(w.table_name, w.severity, w.expectation_type, w.unexpected_count) for w in warned] == [
        ("gold.daily_product_trends", "warning", "expect_column_values_to_be_between", 1)]
    assert json.loads(warned[0].sample) == [-1.0]
    promotable(spark, cfg, "export")


def test_an_interaction_stored_twice_blocks_gold(spark, lake_copy):
    cfg, lake = lake_copy
    inject(spark, lake, "gold", "interactions", summary="'twice'")
    with pytest.raises(QualityGateError, match=r"expect_compound_columns_to_be_unique\(column_list=\['source_table', 'source_key'\]"):
        validate(spark, cfg, "gold")
    with pytest.raises(PromotionRefused, match="gold.interactions: the gold gate failed"):
        promotable(spark, cfg, "export")  # exports check this before publishing


def test_a_volume_drop_against_the_previous_run_is_caught(spark, lake_copy):
    cfg, lake = lake_copy
    validate(spark, cfg, "gold")  # remembers today's volumes
    lake.delta_table("gold.customer_relationship").delete("customer_key > 'ck_3'")
    with pytest.raises(QualityGateError, match=r"gold.customer_relationship: volume_vs_previous\(max_drop=0.5\)"):
        validate(spark, cfg, "gold")


def test_an_expectation_that_cannot_be_evaluated_fails_the_gate(spark, lake_copy, tmp_path):
    cfg, _ = lake_copy
    suites = orders_suite(tmp_path, "{type: expect_column_values_to_not_be_null, column: no_such_column, severity: critical}")
    with pytest.raises(QualityGateError, match="no_such_column"):
        validate(spark, cfg, "silver", suites_dir=suites)


def test_data_docs_are_built_under_the_lake(spark, lake_copy):
    cfg, _ = lake_copy
    validate(spark, cfg, "gold")
    assert {k[0] for k in docs.pending(cfg)} >= {s.table.replace(".", "_") for s in load_suites("gold")}  # stored, unrendered
    runner.run_step(spark, cfg, "quality.docs", Window())
    assert docs.pending(cfg) == []
    index = docs.docs_index(cfg)
    page = index.read_text()
    assert "gold gate: <span class='ok'>passed</span>" in page and "gold.interactions" in page
    for link in __import__("re").findall(r'href="([^"]+)"', page):
        assert (index.parent / link).exists(), link  # every details link opens Great Expectations' page


def test_rapport_curate_refuses_to_build_gold_after_a_failed_silver_gate(spark, lake_copy):
    import subprocess
    import sys

    cfg, lake = lake_copy
    inject(spark, lake, "silver", "orders")  # a duplicate order id
    with pytest.raises(QualityGateError):
        validate(spark, cfg, "silver")
    before = lake.version("gold.interactions")
    env = {"PATH": "/usr/bin:/bin", "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_PII_KEY": cfg.pii_key}
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "curate"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 1 and "curate will not build from landing window" in proc.stderr, proc.stderr
    assert "silver.orders: the silver gate failed" in proc.stderr and "rapport quality validate --layer silver" in proc.stderr
    assert lake.version("gold.interactions") == before  # gold untouched


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


def test_data_docs_render_in_headless_chromium(spark, lake_copy, tmp_path):
    import subprocess

    from tests.browser import chromium_path

    browser = chromium_path()
    cfg, _ = lake_copy
    with pytest.raises(QualityGateError):  # a failure makes the page worth reading
        inject(spark, lake_copy[1], "silver", "orders")
        validate(spark, cfg, "silver")
    index = docs.docs_index(cfg)
    profile = tmp_path / "chromium-profile"
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", index.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "silver gate" in dom.stdout and "FAILED" in dom.stdout and "expect_column_values_to_be_unique" in dom.stdout
    shot = tmp_path / "docs.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1280,900", index.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000  # a real rendered page, not a blank one


def test_an_expectation_one_pass_does_not_compile_is_validated_by_great_expectations(spark, lake_copy, tmp_path):
    cfg, lake = lake_copy
    suites = orders_suite(tmp_path,
                          "{type: expect_column_mean_to_be_between, column: total_price, max_value: -1, severity: warning}")
    report_ = validate(spark, cfg, "silver", suites_dir=suites)
    assert report_.passed and report_.warnings == 1
    rows = {r.expectation_type: r for r in lake.read("ops.quality_results").where(
        f"run_id = '{report_.run_id}'").collect()}
    mean = float(rows["expect_column_mean_to_be_between"].observed)
    assert not rows["expect_column_mean_to_be_between"].success and mean > 0


def test_a_passed_gate_does_not_load_great_expectations_and_a_failed_one_renders_its_pages(spark, lake_copy):
    import subprocess
    import sys

    cfg, lake = lake_copy
    script = ("import sys; from jobs.config import Config; from jobs.engine import spark_session; "
              "from jobs.quality import gate; from jobs.runs.window import Window\n"
              "cfg = Config.load()\n"
              "with spark_session(cfg) as spark:\n"
              "    gate.run(spark, cfg, Window(), layer='silver')\n"
              "print('GE_LOADED', 'great_expectations' in sys.modules)")
    env = {**__import__("os").environ, "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_LANDING_ROOT": cfg.landing_root,
           "RAPPORT_PII_KEY": cfg.pii_key}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "GE_LOADED False" in proc.stdout
    stored = docs.pending(cfg)
    assert {k[0] for k in stored} >= {"silver_orders", "silver_clickstream_events"}
    inject(spark, lake, "silver", "orders")  # a duplicate order id: a critical failure
    with pytest.raises(QualityGateError):
        validate(spark, cfg, "silver", tables=["silver.orders"])
    newest = max((docs.quality_root(cfg) / "gx" / "uncommitted" / "validations" / "silver_orders").glob("*/*/*.json"),
                 key=lambda p: p.parent.name)
    assert json.loads(newest.read_text())["success"] is False
    page = docs.docs_index(cfg).parent / "validations" / newest.relative_to(newest.parents[3]).with_suffix(".html")
    assert page.exists()  # rendered at once, not left for later
