"""A suppressed person's events are answered 200 and not landed (README, "Privacy and erasure")."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json

import httpx
import pytest

from tests.jobs.collector.conftest import WRITE_KEY, collector_env, start
from tests.lakes import PII_KEY

pytestmark = pytest.mark.integration


def test_the_collector_answers_200_and_drops_a_suppressed_persons_events(spark, tmp_path):
    from jobs.config import Config
    from jobs.lake import Lake

    lake_root = tmp_path / "lake"
    cfg = Config(lake_root=str(lake_root), pii_key=PII_KEY)
    email_hash = hmac.new(PII_KEY.encode(), b"gone@example.com", hashlib.sha256).hexdigest()
    lake = Lake(cfg, spark)
    lake.merge("ops.suppressions", lake.frame("ops.suppressions", [
        ("user:u-gone", "pr_1", True, None), (f"email:{email_hash}", "pr_1", True, None),
        ("anon:dev-back", "pr_2", False, None)]))  # unsuppressed: collected again
    landing = tmp_path / "landing"
    running = start(collector_env(landing, RAPPORT_LAKE_ROOT=str(lake_root), RAPPORT_PII_KEY=PII_KEY), landing)
    batch = [
        {"type": "track", "event": "Product Viewed", "userId": "u-gone", "messageId": "drop-1"},
        {"type": "identify", "anonymousId": "dev-9", "traits": {"email": " Gone@Example.com "}, "messageId": "drop-2"},
        {"type": "track", "event": "Product Viewed", "anonymousId": "dev-back", "messageId": "keep-1"},
        {"type": "track", "event": "Product Viewed", "userId": "u-here", "messageId": "keep-2"},
    ]
    try:
        r = httpx.post(f"{running.url}/v1/batch", json={"batch": batch, "writeKey": WRITE_KEY})
        assert r.status_code == 200 and r.json() == {"success": True}
        assert "rapport_collector_suppressed_events_total 2.0" in httpx.get(f"{running.url}/metrics").text
    finally:
        running.stop()
    ids = [json.loads(x)["messageId"] for p in running.landed("clickstream") for x in gzip.decompress(p.read_bytes()).splitlines()]
    assert sorted(ids) == ["keep-1", "keep-2"]
    assert "gone@example.com" not in running.log.lower()
