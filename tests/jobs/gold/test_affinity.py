"""gold.product_signals kept from a day's added and removed interactions equals the table built from all of them."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.config import Config
from jobs.gold import affinity
from jobs.lake import Lake
from schemas.affinity import TABLE
from tests.lakes import table_rows

pytestmark = pytest.mark.integration
T = datetime(2026, 3, 1, tzinfo=timezone.utc)
SCHEMA = ("occurred_at timestamp, occurred_date date, channel string, platform string, event_type string, summary string, "
          "product_id string, campaign string, order_id string, session_id string, identifier string, "
          "source_table string, source_key string")


def interaction(key: str, identifier: str, event_type: str, product: str | None, order: str | None, at: datetime):
    return (at, at.date(), "web", None, event_type, "s", product, None, order, None, identifier,
            "order_status_history" if order else "clickstream_events", key)


def _lake(spark, rows: list[tuple]) -> Lake:
    lake = Lake(Config(lake_root=tempfile.mkdtemp(prefix="signals-")), spark)
    lake.replace_partitions("gold.interactions", lake.conform("gold.interactions", spark.createDataFrame(
        rows, SCHEMA) if rows else spark.createDataFrame([], SCHEMA)), None)
    return lake


def _newest(rows):
    return max(r[1] for r in rows) if rows else None


def kept_equals_built(spark, *states: list[tuple]) -> list[str]:
    """Keep a table built on the first state through each change to the next; after each, compare it with one
    built on that state (through what the table's reader reads). Returns how each change was kept."""
    from pyspark.sql import functions as F

    kept = _lake(spark, states[0])
    hows = []
    try:
        affinity.keep(kept, None, "build", _newest(states[0]))
        for before, after in zip(states, states[1:]):
            b, a = (spark.createDataFrame(x, SCHEMA) if x else spark.createDataFrame([], SCHEMA) for x in (before, after))
            differ = (a.subtract(b).withColumn("_side", F.lit("added"))
                      .unionByName(b.subtract(a).withColumn("_side", F.lit("removed"))))
            kept.replace_partitions("gold.interactions", kept.conform("gold.interactions", a), None)
            hows.append(affinity.keep(kept, differ, "day", _newest(after)))
            built = _lake(spark, after)
            try:
                affinity.keep(built, None, "build", _newest(after))
                assert table_rows(spark, kept.path(TABLE)) == table_rows(spark, built.path(TABLE))
            finally:
                shutil.rmtree(built.cfg.lake_root, ignore_errors=True)
        return hows
    finally:
        shutil.rmtree(kept.cfg.lake_root, ignore_errors=True)


def test_a_pair_whose_latest_row_went_reads_its_rows_again(spark):
    """A views P1 twice and buys order 7; the later view goes (a row rewritten elsewhere, say) and nothing as late
    comes: the pair's latest time is the earlier view's, read again. B's new view is only added."""
    a1 = interaction("m1", "user:A", "product_view", "P1", None, T)
    a2 = interaction("m2", "user:A", "product_view", "P1", None, T + timedelta(days=3))
    buy = interaction("7:open", "order:7", "order_placed", None, "7", T + timedelta(days=3, hours=1))
    b1 = interaction("m3", "user:B", "add_to_cart", "P2", None, T + timedelta(days=4))
    assert kept_equals_built(spark, [a1, a2, buy], [a1, buy, b1]) == ["appended"]
    # the purchase row moves to another time, a view is the pair's only row left
    moved = interaction("7:open", "order:7", "order_placed", None, "7", T + timedelta(days=2))
    assert kept_equals_built(spark, [a1, a2, buy], [a2, moved]) == ["appended"]
    # the pair's only row goes, then an earlier one comes: the time of the row that went is not the pair's
    early = interaction("m0", "user:A", "product_view", "P1", None, T - timedelta(days=1))
    assert kept_equals_built(spark, [a2, b1], [b1], [b1, early]) == ["appended", "appended"]


def test_the_changes_are_compacted_into_one_generation(spark):
    views = [interaction(f"m{i}", "user:A", "product_view", "P1", None, T + timedelta(days=i)) for i in range(10)]
    states = [views[:i + 1] for i in range(10)]
    hows = kept_equals_built(spark, *states)
    assert hows[:affinity.COMPACT_AFTER - 1] == ["appended"] * (affinity.COMPACT_AFTER - 1)
    assert hows[affinity.COMPACT_AFTER - 1] == "compacted" and hows[-1] == "appended"


def test_other_settings_rebuild_the_table(spark):
    rows = [interaction("m1", "user:A", "product_view", "P1", None, T)]
    lake = _lake(spark, rows)
    try:
        assert affinity.keep(lake, None, "build", T.date()) == "built"
        lake = Lake(Config(lake_root=lake.cfg.lake_root, export_half_life_days=7), spark)
        empty = lake.read("gold.interactions").limit(0).selectExpr("*", "'added' AS _side")
        assert affinity.keep(lake, empty, "day", T.date()) == "built"
        assert lake.read(TABLE).first().scored_with == lake.cfg.export_scoring().settings
        assert affinity.keep(lake, empty, "day", T.date()) == "unchanged"
    finally:
        shutil.rmtree(lake.cfg.lake_root, ignore_errors=True)


# few identifiers, products and days, so that pairs have several rows and a removed row is often their latest
ids = st.sampled_from(["user:A", "anon:X", "order:1"])
event = st.tuples(ids, st.sampled_from(["product_view", "add_to_cart", "order_placed", "visit"]),
                  st.sampled_from(["P1", "P2", None]), st.integers(0, 6), st.integers(0, 2))


def _rows(events, tag):
    out = []
    for i, (identifier, kind, product, day, hour) in enumerate(events):
        order = identifier.split(":")[1] if kind == "order_placed" and identifier.startswith("order:") else None
        out.append(interaction(f"{tag}{i}", identifier, kind, product, order, T + timedelta(days=day, hours=hour)))
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(first=st.lists(event, max_size=12), data=st.data(), added=st.lists(st.lists(event, max_size=5), min_size=1,
                                                                          max_size=3))
def test_any_changes_kept_equal_a_table_built_from_the_rows(spark, first, data, added):
    """Rows added, removed, and moved in time (a removed row's key coming back with other values), day after day."""
    states = [_rows(first, "k")]
    for new in added:
        old = states[-1]
        stay = data.draw(st.lists(st.sampled_from(old), unique=True) if old else st.just([]))
        kept_keys = {r[-1] for r in stay}  # added rows reuse the keys of ``old``: a removed one comes back rewritten
        states.append(stay + [r for r in _rows(new, "k") if r[-1] not in kept_keys])
    kept_equals_built(spark, *states)
