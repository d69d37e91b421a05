"""Gates whose cost follows the batch: a ``touched`` suite reads the partitions written since the last passed
gate, checks keys against the rest of the table, and the weekly whole-table gate reads everything."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.runs.window import Window
from jobs.quality import batch, docs, gate
from jobs.quality.gate import QualityGateError
from jobs.quality.suites import load_suites
from tests.jobs.quality.test_gate import inject, lake_copy, validate  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


def suite(table):
    return next(s for s in load_suites() if s.table == table)


def test_a_touched_gate_reads_the_partitions_written_since_the_last_passed_gate(spark, lake_copy):
    cfg, lake = lake_copy
    validate(spark, cfg, "gold")
    unchanged = gate.validate(spark, cfg, suite("gold.daily_product_trends"))
    assert unchanged.status == "passed" and unchanged.rows == 0 and "nothing to read" in unchanged.batch
    day = lake.read("gold.daily_product_trends").selectExpr("min(date) AS d").first().d
    inject(spark, lake, "gold", "daily_product_trends", date=f"DATE'{day}'")  # one more file, in one date
    out = gate.validate(spark, cfg, suite("gold.daily_product_trends"))
    in_day = lake.read("gold.daily_product_trends").where(f"date = DATE'{day}'").count()
    assert out.rows == in_day < lake.read("gold.daily_product_trends").count()  # that date only
    assert f"date IN (DATE'{day}')" in out.batch and out.version == lake.version("gold.daily_product_trends")
    assert out.status == "failed" and [o.expectation.type for o in out.critical_failures] == [
        "expect_compound_columns_to_be_unique"]


def test_a_key_already_in_another_partition_fails_the_touched_gate(spark, lake_copy):
    cfg, lake = lake_copy
    validate(spark, cfg, "silver")
    first = lake.read("silver.sessions").orderBy("session_date").first()
    other = lake.read("silver.sessions").selectExpr("max(session_date) AS d").first().d
    assert other != first.session_date
    # the same session id written into another date: each partition alone has unique ids
    inject(spark, lake, "silver", "sessions", session_date=f"DATE'{other}'")
    out = gate.validate(spark, cfg, suite("silver.sessions"))
    assert f"session_date IN (DATE'{other}')" in out.batch
    assert [o.expectation.label for o in out.critical_failures] == ["expect_column_values_to_be_unique(column=session_id)"]
    assert out.critical_failures[0].unexpected_count >= 1


def test_a_touched_gate_checks_keys_within_the_late_window_and_the_weekly_gate_everywhere(spark, lake_copy):
    """A key is checked against the partitions within RAPPORT_LATE_DAYS of the batch's, where a run can write a
    twin; one further away (no job writes it there) is the weekly whole-table gate's to find."""
    cfg, lake = lake_copy
    validate(spark, cfg, "silver")
    dates = lake.read("silver.sessions").selectExpr("min(session_date) AS lo", "max(session_date) AS hi").first()
    far = dates.hi + timedelta(days=cfg.late_days + 1 + (dates.hi - dates.lo).days)
    inject(spark, lake, "silver", "sessions", session_date=f"DATE'{far}'")  # a twin beyond every stored date's reach
    out = gate.validate(spark, cfg, suite("silver.sessions"))
    lo, hi = far - timedelta(days=cfg.late_days), far + timedelta(days=cfg.late_days)
    assert f"keys checked against session_date BETWEEN DATE'{lo}' AND DATE'{hi}'" in out.batch
    assert out.status == "passed" and out.rows == 1
    with pytest.raises(QualityGateError, match="expect_column_values_to_be_unique"):
        gate.run_full(spark, cfg, Window())
    # a twin within the window is the daily gate's: the same check fails once the late window reaches it
    near = dataclasses.replace(cfg, late_days=(far - dates.lo).days)
    assert gate.validate(spark, near, suite("silver.sessions")).status == "failed"


def test_near_partitions_are_ranges_of_dates():
    assert batch.near("silver.sessions", frozenset({(date(2026, 11, 2),), (date(2026, 11, 5),)}), 1) == \
        "session_date BETWEEN DATE'2026-11-01' AND DATE'2026-11-06'"
    assert batch.near("silver.sessions", frozenset({(date(2026, 11, 2),), (date(2026, 11, 9),), (None,)}), 2) == \
        "session_date BETWEEN DATE'2026-10-31' AND DATE'2026-11-04' OR session_date BETWEEN DATE'2026-11-07' AND " \
        "DATE'2026-11-11' OR session_date IS NULL"
    assert batch.near("silver.identity_map", frozenset({("x",)}), 7) is None  # not partitioned by a date


def test_the_whole_table_gate_finds_what_no_daily_gate_reads_again(spark, lake_copy, tmp_path):
    cfg, lake = lake_copy
    suites = tmp_path / "suites"
    suites.mkdir()
    lenient = "table: gold.daily_product_trends\nscope: touched\nexpectations:\n" \
              "  - {type: expect_column_values_to_be_between, column: views, min_value: 0, severity: critical}\n"
    (suites / "gold_daily_product_trends.yaml").write_text(lenient)
    assert validate(spark, cfg, "gold", suites_dir=suites).passed
    # a stricter rule arrives later: no partition changed, so the daily gate has nothing to read …
    (suites / "gold_daily_product_trends.yaml").write_text(lenient.replace("min_value: 0", "min_value: 1000000"))
    assert validate(spark, cfg, "gold", suites_dir=suites).passed
    # … and the weekly gate reads the whole table and fails, recording the failure
    with pytest.raises(QualityGateError, match="weekly whole-table gate failed"):
        gate.run_full(spark, cfg, Window(), suites_dir=suites)
    verdict = lake.read("ops.quality_gates").orderBy(F.desc("checked_at")).first()
    assert verdict.status == "failed" and verdict.batch.startswith("whole table")


def test_a_lake_from_before_table_versions_gets_the_columns(spark, lake_copy):
    from deltalake import DeltaTable, write_deltalake

    cfg, lake = lake_copy
    validate(spark, cfg, "gold")
    path = lake.path("ops.quality_gates")
    old = DeltaTable(path).to_pyarrow_table().drop_columns(["table_version", "batch"])
    shutil.rmtree(path)
    write_deltalake(path, old)  # the table as an earlier release wrote it
    assert gate.last_passed_version(lake, "gold.interactions") is None  # no version known: whole table
    assert validate(spark, cfg, "gold").passed
    assert {"table_version", "batch"} <= set(lake.read("ops.quality_gates").columns)
    assert gate.last_passed_version(lake, "gold.interactions") == lake.version("gold.interactions")


def test_touched_partitions_come_from_the_log():
    assert batch.partitions_sql(("date",), {(date(2026, 11, 2),), (None,)}) == \
        "date IN (DATE'2026-11-02') OR date IS NULL"
    assert batch.partitions_sql(("b",), set()) == "FALSE"
    assert batch.partitions_sql(("a", "b"), {("x", 1)}) == "(a <=> 'x' AND b <=> 1)"


def test_great_expectations_keeps_a_bounded_history_and_every_link_opens(spark, lake_copy, monkeypatch):
    """Its store is re-listed on every page it renders: it keeps the newest results per suite (ops.quality_results
    keeps them all), and the overview's links still open."""
    import re

    cfg, lake = lake_copy
    monkeypatch.setattr(docs, "KEEP_RESULTS", 2)
    for _ in range(3):
        validate(spark, cfg, "gold")
    assert docs.render_pending(cfg) >= 3 * len(load_suites("gold"))  # passed gates store; pages come after
    assert docs.pending(cfg) == []
    site = docs.docs_index(cfg).parent
    store = docs.context(cfg).root_directory
    for s in load_suites("gold"):
        name = s.table.replace(".", "_")
        assert len(list((site / "validations" / name).glob("*/*"))) == 2
        assert len(list((Path(store) / "uncommitted" / "validations" / name).glob("*/*"))) == 2
    assert lake.read("ops.quality_gates").where("layer = 'gold'").count() >= 3 * len(load_suites("gold"))
    for link in re.findall(r'href="([^"]+)"', docs.docs_index(cfg).read_text()):
        assert (site / link).exists(), link
