"""Property: whatever the lines hold (any type in any field, extreme numbers and dates, any unicode, huge strings,
deep nesting, bytes that are not UTF-8), ingest and refine succeed and every window reconciles:
landed = silver + quarantined + duplicates."""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.config import Config
from jobs.lake import Lake
from jobs.pipeline.runner import run_stage
from jobs.runs.window import Window
from tests.lakes import PII_KEY

pytestmark = pytest.mark.integration
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
HOURS = itertools.count()

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40)
           | st.text(min_size=5_000, max_size=20_000).map(lambda s: s * 5))  # huge strings
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                               max_size=4), max_leaves=12)
times = (st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(timezone.utc))
         .map(lambda t: t.isoformat().replace("+00:00", "Z")) | st.text(max_size=30) | anything)
deep = st.integers(min_value=60, max_value=3000).map(lambda n: {"x": json.loads("[" * n + "]" * n)} if n < 900
                                                    else "[" * n + "]" * n)
ids = st.text(min_size=1, max_size=24) | st.integers() | anything


def field(s):
    """Mostly the right kind of value, sometimes anything at all."""
    return st.one_of(s, anything, deep)


segment = st.fixed_dictionaries({
    "type": field(st.sampled_from(["page", "track", "identify", "screen"])), "messageId": field(ids),
    "anonymousId": field(ids), "userId": field(ids), "event": field(st.text(max_size=30)),
    "properties": field(st.fixed_dictionaries({"product_id": ids, "price": anything, "quantity": anything,
                                               "query": st.text(max_size=60)})),
    "context": field(st.fixed_dictionaries({"ip": anything, "userAgent": st.text(max_size=60),
                                            "page": st.fixed_dictionaries({"path": st.text(max_size=60)})})),
    "timestamp": times, "sentAt": times, "receivedAt": times})
social_event = st.fixed_dictionaries({
    "platform": field(st.sampled_from(["instagram", "x", "tiktok", "myspace"])), "event_id": field(ids),
    "interaction": field(st.sampled_from(["like", "comment", "reply", "poke"])),
    "actor": field(st.fixed_dictionaries({"id": ids, "handle": st.text(max_size=20)})),
    "target": field(st.fixed_dictionaries({"type": st.text(max_size=8), "id": ids})), "rating": anything,
    "text": st.text(max_size=200), "occurred_at": times, "collected_at": times})
shopify = st.fixed_dictionaries({
    "id": field(st.integers(min_value=-(2**70), max_value=2**70)), "updated_at": times, "created_at": times,
    "total_price": anything, "email": st.text(max_size=40), "source_name": anything,
    "line_items": field(st.lists(st.fixed_dictionaries({"quantity": anything, "price": anything, "product_id": ids}),
                                 max_size=3))})
orders_event = shopify | st.fixed_dictionaries({"topic": anything, "webhook_id": field(ids), "received_at": times,
                                                "order": field(shopify)})


def encoded(value) -> st.SearchStrategy[bytes]:
    text = json.dumps(value, allow_nan=True, ensure_ascii=False)
    return st.sampled_from([text.encode("utf-8", "surrogatepass"), text.encode("utf-8", "surrogatepass") + b"\xff",
                            text.encode("utf-16"), text[: len(text) // 2].encode("utf-8", "surrogatepass")])


def lines(strategy) -> st.SearchStrategy[list[bytes]]:
    return st.lists(strategy.flatmap(encoded), min_size=1, max_size=12)


batch = st.fixed_dictionaries({"clickstream": lines(segment), "social": lines(social_event), "orders": lines(orders_event)})


@pytest.fixture(scope="module")
def lake_of(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("properties")
    return Config(lake_root=str(root / "lake"), landing_root=str(root / "landing"), pii_key=PII_KEY)


def check(spark, cfg: Config, data: dict[str, list[bytes]]) -> None:
    from pathlib import Path

    hour = START + timedelta(hours=next(HOURS))
    for source, body in data.items():
        path = Path(cfg.landing_root) / source / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}" / "part-0.json.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(b"\n".join(line.replace(b"\n", b" ") for line in body) + b"\n", mtime=0))
    window = Window(hour, hour + timedelta(hours=1))
    run_stage(spark, cfg, "ingest", window, gate=False, checks=False)
    refined = run_stage(spark, cfg, "refine", window, gate=False, checks=False).reports
    audit = {r.source: r for r in Lake(cfg, spark).read("ops.audit").where(
        f"window_start = '{window.start_text}'").collect()}
    for source in data:
        r = refined[f"refine.{source}"]
        assert r.balanced and r.landed == r.silver_rows + sum(r.quarantined.values()) + r.duplicates, (source, r)
        assert audit[source].balanced
    run_stage(spark, cfg, "curate", window, gate=False, checks=False)  # and gold is not wedged by anything in it


@pytest.mark.slow
@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=batch)
def test_any_lines_reconcile(spark, lake_of, data):
    check(spark, lake_of, data)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=batch)
def test_any_lines_reconcile_long(spark, lake_of, data):
    check(spark, lake_of, data)
