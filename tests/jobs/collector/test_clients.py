"""The real tracking libraries, pointed at the collector: segment-analytics-python (``host``), rudder-sdk-python
(``dataPlaneUrl``, gzip on) and snowplow-tracker (an ``Emitter``). Every event they were told was accepted is in
silver after ingest and refine, and on the right customer's timeline after curate."""

from __future__ import annotations

import json

import pytest

from tests.jobs.collector.conftest import WRITE_KEY

pytestmark = pytest.mark.integration
USERS = [f"shopper-{i}" for i in range(6)]
PRODUCTS = [f"P{i:06d}" for i in range(1, 9)]
ROUNDS = 10  # per user and library: 10 x 6 users x 7 calls ~ 400 events per Segment-speaking library


def segment_like(client, library: str) -> dict[str, list[str]]:
    """Every call type, per user: anonymous browsing, then alias and identify, then signed-in browsing.
    Returns message ids: all of them, and per user the product views."""
    sent: dict[str, list[str]] = {"all": []}
    for u in USERS:
        device = f"{library}-device-{u}"
        views = sent.setdefault(u, [])
        for r in range(ROUNDS):
            p = PRODUCTS[(r + len(u)) % len(PRODUCTS)]
            calls = [
                client.page(anonymous_id=device, name="Product", properties={"path": f"/p/{p}", "url": f"https://shop.example/p/{p}"}),
                client.track(anonymous_id=device, event="Product Viewed", properties={"product_id": p, "price": 19.5}),
                client.screen(user_id=u, name="Cart"),
                client.alias(previous_id=device, user_id=u),
                client.identify(u, {"email": f"{u}@example.com"}),
                client.group(u, "household-1"),
                client.track(user_id=u, anonymous_id=device, event="Product Viewed", properties={"product_id": p}),
            ]
            for ok, msg in calls:
                assert ok
                sent["all"].append(msg["messageId"])
                if msg.get("event") == "Product Viewed":
                    views.append(msg["messageId"])
    client.flush()
    return sent


def test_every_acknowledged_event_reaches_silver_and_the_right_timeline(collector, spark, tmp_path):
    from rudderstack.analytics import Client as Rudder
    from segment.analytics import Client as Segment
    from snowplow_tracker import Emitter, PageView, SelfDescribing, SelfDescribingJson, StructuredEvent, Subject, Tracker

    failures = []
    seg = Segment(WRITE_KEY, host=collector.url, on_error=lambda e, batch: failures.append(e), max_retries=3,
                  upload_size=100)
    rud = Rudder(WRITE_KEY, host=collector.url, on_error=lambda e, batch: failures.append(e), max_retries=3,
                 upload_size=100, gzip=True)
    sent = {"segment": segment_like(seg, "segment"), "rudderstack": segment_like(rud, "rudderstack")}
    seg.shutdown()
    rud.shutdown()

    acked: list[str] = []
    host, port = collector.url.removeprefix("http://").rsplit(":", 1)
    emitter = Emitter(host, protocol="http", port=int(port), method="post", batch_size=25,
                      on_success=lambda events: acked.extend(e["eid"] for e in events),
                      on_failure=lambda n, events: failures.append(n))
    plow: dict[str, list[str]] = {"all": []}
    for u in USERS:
        # a server-side tracker forwards the shopper's browser (else the request's python-requests agent is a bot)
        subject = (Subject().set_user_id(u).set_domain_user_id(f"snowplow-device-{u}")
                   .set_useragent("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"))
        tracker = Tracker("rapport-test", emitters=emitter, subject=subject, app_id="shop")
        views = plow.setdefault(u, [])
        for r in range(ROUNDS * 2):
            p = PRODUCTS[r % len(PRODUCTS)]
            ids = [
                tracker.track(PageView(page_url=f"https://shop.example/p/{p}", page_title="Product")),
                tracker.track(StructuredEvent(category="product", action="Product Viewed", label=p, value=12.0)),
                tracker.track(SelfDescribing(SelfDescribingJson("iglu:com.acme/product_view/jsonschema/1-0-0",
                                                                {"product_id": p, "price": 12.0}))),
            ]
            plow["all"] += ids
            views += ids[1:]
    emitter.flush()
    sent["snowplow"] = plow
    assert failures == []
    assert sorted(acked) == sorted(plow["all"])
    collector.stop()  # closes the files for ingest

    from jobs.config import Config
    from jobs.lake import Lake
    from jobs.runs.window import Window
    from tests.lakes import PII_KEY, curate, ingest_and_refine

    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(collector.landing), pii_key=PII_KEY)
    reports = ingest_and_refine(spark, cfg, gates=True)
    assert reports["clickstream"].balanced and reports["clickstream"].quarantined == {}
    curate(spark, cfg, full=True)
    lake = Lake(cfg, spark)
    in_silver = {r.message_id for r in lake.read("silver.clickstream_events").select("message_id").collect()}
    every = [m for lib in sent.values() for m in lib["all"]]
    assert len(every) > 1000 and set(every) <= in_silver and len(in_silver) == len(set(every))
    keys = {r.identifier: r.customer_key for r in lake.read("silver.identity_map").where("id_type = 'user'").collect()}
    timeline = lake.read("gold.customer_timeline").where("source_table = 'clickstream_events'")
    on = {}
    for r in timeline.select("customer_key", "source_key").collect():
        on.setdefault(r.customer_key, set()).add(r.source_key)
    for lib, by_user in sent.items():
        for u in USERS:
            key = keys[f"user:{u}"]
            assert set(by_user[u]) <= on[key], (lib, u)  # anonymous views too: the alias tied the device to them
    visits = lake.read("gold.customer_timeline").where("event_type = 'visit'").select("customer_key").distinct().count()
    assert visits == len(USERS)
    snow = lake.read("silver.clickstream_events").where("library = 'snowplow'")
    assert snow.where("type = 'page'").count() == len(USERS) * ROUNDS * 2
    assert json.loads(json.dumps(sorted({r.device_class for r in snow.collect()}))) == ["desktop"]
