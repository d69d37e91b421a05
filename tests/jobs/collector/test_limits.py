"""Bad auth, limits, malformed JSON, gzip bombs and bad gzip: refused with a JSON error naming the problem, and
nothing landed."""

from __future__ import annotations

import base64
import gzip
import json

import httpx
import pytest

from tests.jobs.collector.conftest import WRITE_KEY

pytestmark = pytest.mark.integration


def basic(key: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def event(i: int = 0, **extra) -> dict:
    return {"type": "track", "event": "Product Viewed", "anonymousId": "dev-1", "messageId": f"m-{i}",
            "timestamp": "2026-11-26T10:00:00Z", "properties": {"product_id": "P1"}, **extra}


def test_refusals_name_the_problem_and_land_nothing(collector):
    url = collector.url
    cases = [
        # (what, request kwargs, status, reason)
        ("no key", dict(json={"batch": [event()]}), 401, "no_write_key"),
        ("unknown key", dict(json={"batch": [event()], "writeKey": "nope"}), 401, "unknown_write_key"),
        ("bad basic", dict(json={"batch": [event()]}, headers={"Authorization": "Basic %%%"}), 401, "bad_auth"),
        ("not json", dict(content=b"{not json", headers=basic(WRITE_KEY)), 400, "malformed"),
        ("batch not a list", dict(json={"batch": {"a": 1}}, headers=basic(WRITE_KEY)), 400, "malformed"),
        ("event not an object", dict(json={"batch": [event(), 7]}, headers=basic(WRITE_KEY)), 400, "malformed"),
        ("too many events", dict(json={"batch": [event(i) for i in range(2501)]}, headers=basic(WRITE_KEY)), 400,
         "batch_too_large"),
        ("event too large", dict(json={"batch": [event(properties={"x": "a" * 40_000})]}, headers=basic(WRITE_KEY)),
         400, "event_too_large"),
        ("request too large", dict(content=b"[" + b" " * 600_000 + b"]", headers=basic(WRITE_KEY)), 413,
         "request_too_large"),
        ("gzip bomb", dict(content=gzip.compress(json.dumps({"batch": [event()], "pad": " " * 5_000_000}).encode()),
                           headers={**basic(WRITE_KEY), "Content-Encoding": "gzip"}), 413, "inflates_too_large"),
        ("bad gzip", dict(content=b"\x1f\x8b\x08\x00garbage", headers={**basic(WRITE_KEY), "Content-Encoding": "gzip"}),
         400, "bad_gzip"),
        ("cut gzip", dict(content=gzip.compress(json.dumps({"batch": [event()]}).encode())[:30],
                          headers={**basic(WRITE_KEY), "Content-Encoding": "gzip"}), 400, "bad_gzip"),
        ("other encoding", dict(content=b"{}", headers={**basic(WRITE_KEY), "Content-Encoding": "br"}), 415,
         "unsupported_encoding"),
        ("unknown path", dict(json={"batch": [event()]}, headers=basic(WRITE_KEY), path="/v1/bogus"), 404,
         "unknown_path"),
    ]
    with httpx.Client(base_url=url, timeout=30) as client:
        for what, kw, status, reason in cases:
            path = kw.pop("path", "/v1/batch")
            r = client.post(path, **kw)
            assert (r.status_code, r.json().get("reason")) == (status, reason), (what, r.text[:300])
            assert r.json()["error"], what
            assert WRITE_KEY not in r.text
        # a body sent without Content-Length (chunked) is cut off at the limit too
        r = client.post("/v1/batch", content=iter([b"{" + b" " * 100_000] * 7), headers=basic(WRITE_KEY))
        assert (r.status_code, r.json()["reason"]) == (413, "request_too_large")
        metrics = client.get("/metrics").text
    assert 'rapport_collector_rejected_requests_total{reason="inflates_too_large"} 1.0' in metrics
    collector.stop()
    assert "every file closed" in collector.log  # a graceful stop (uvicorn re-raises SIGTERM once it is done)
    assert collector.landed() == []  # nothing of any refused request reached the landing zone
    assert WRITE_KEY not in collector.log  # keys never logged


def test_the_limits_are_settings(tmp_path):
    from tests.jobs.collector.conftest import collector_env, start

    landing = tmp_path / "landing"
    running = start(collector_env(landing, RAPPORT_COLLECTOR_MAX_BATCH=3, RAPPORT_COLLECTOR_MAX_EVENT_KB=1), landing)
    try:
        with httpx.Client(base_url=running.url, timeout=30, headers=basic(WRITE_KEY)) as client:
            r = client.post("/v1/batch", json={"batch": [event(i) for i in range(4)]})
            assert r.status_code == 400 and "RAPPORT_COLLECTOR_MAX_BATCH" in r.json()["error"]
            r = client.post("/v1/track", json=event(properties={"x": "a" * 2000}))
            assert r.status_code == 400 and "RAPPORT_COLLECTOR_MAX_EVENT_KB" in r.json()["error"]
            assert client.post("/v1/batch", json={"batch": [event(i) for i in range(3)]}).status_code == 200
    finally:
        running.stop()
    lines = [json.loads(line) for p in running.landed("clickstream") for line in gzip.decompress(p.read_bytes()).splitlines()]
    assert sorted(e["messageId"] for e in lines) == ["m-0", "m-1", "m-2"]
