"""Webhooks: each platform's signature against vectors computed here, independently; over HTTP, only verified
deliveries land; then refine makes orders and social interactions of them (a redelivery is one order)."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from jobs.collector import signatures
from tests.jobs.collector.conftest import SECRETS


def b64mac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def hexmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


@pytest.mark.unit
def test_signatures_match_independent_vectors_and_refuse_the_rest():
    body = b'{"id": 5100000001, "note": "caf\xc3\xa9"}'
    signatures.shopify("s3cret", body, b64mac("s3cret", body))
    signatures.meta("s3cret", body, "sha256=" + hexmac("s3cret", body))
    signatures.x("s3cret", body, "sha256=" + b64mac("s3cret", body))
    now = 1_795_000_000
    signatures.tiktok("s3cret", body, f"t={now},s={hexmac('s3cret', f'{now}.'.encode() + body)}", now + 10, 300)
    assert signatures.x_crc("s3cret", "challenge-123") == "sha256=" + b64mac("s3cret", b"challenge-123")
    bad = [
        (signatures.shopify, ("s3cret", body + b" ", b64mac("s3cret", body)), "does not match"),
        (signatures.shopify, ("s3cret", body, None), "missing"),
        (signatures.meta, ("s3cret", body, "sha1=" + hexmac("s3cret", body)), "not sha256"),
        (signatures.meta, ("other", body, "sha256=" + hexmac("s3cret", body)), "does not match"),
        (signatures.x, ("s3cret", body, "sha256=" + b64mac("s3cret", body + b"x")), "does not match"),
        (signatures.x, ("s3cret", body, ""), "missing"),
        (signatures.tiktok, ("s3cret", body, f"t={now},s={hexmac('s3cret', f'{now}.'.encode() + body)}", now + 301,
                             300), "old"),
        (signatures.tiktok, ("s3cret", body, f"t={now},s={hexmac('s3cret', body)}", now, 300), "does not match"),
        (signatures.tiktok, ("s3cret", body, "s=abc", now, 300), "not t="),
    ]
    for fn, args, why in bad:
        with pytest.raises(signatures.SignatureError, match=why):
            fn(*args)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def shopify_order(now: datetime) -> bytes:
    order = {"id": 5100000001, "admin_graphql_api_id": "gid://shopify/Order/5100000001", "name": "#1001",
             "email": "ada@example.com", "created_at": iso(now - timedelta(minutes=5)),
             "updated_at": iso(now - timedelta(minutes=1)), "currency": "USD", "total_price": "25.00",
             "subtotal_price": "25.00", "total_tax": "0.00", "total_discounts": "0.00", "financial_status": "paid",
             "fulfillment_status": None, "source_name": "web", "customer": {"id": 207119551},
             "line_items": [{"id": 1, "product_id": 632910392, "quantity": 1, "price": "25.00", "title": "Tote"}]}
    return json.dumps(order, indent=2).encode()  # pretty, with line breaks, as some senders do


def meta_body(now: datetime) -> bytes:
    t = int(now.timestamp())
    return json.dumps({"object": "page", "entry": [{"id": "page-1", "time": t, "changes": [
        {"field": "feed", "value": {"item": "comment", "verb": "add", "from": {"id": "fb-1", "name": "Ada"},
                                    "post_id": "page-1_post-1", "comment_id": "post-1_c-1", "created_time": t,
                                    "message": "love it"}},
        {"field": "feed", "value": {"item": "reaction", "verb": "add", "reaction_type": "like",
                                    "from": {"id": "fb-2", "name": "Bo"}, "post_id": "page-1_post-1",
                                    "created_time": t}}]}]}).encode()


def instagram_body(now: datetime) -> bytes:
    return json.dumps({"object": "instagram", "entry": [{"id": "ig-1", "time": int(now.timestamp()), "changes": [
        {"field": "comments", "value": {"from": {"id": "ig-u-1", "username": "ada.l"}, "media": {"id": "m-1"},
                                        "id": "ig-c-1", "text": "where can I buy this?"}},
        {"field": "mentions", "value": {"media_id": "m-2", "comment_id": "ig-c-2"}}]}]}).encode()


def x_body(now: datetime) -> bytes:
    ms = str(int(now.timestamp() * 1000))
    user = {"id_str": "x-u-1", "screen_name": "ada_l", "name": "Ada"}
    return json.dumps({"for_user_id": "brand-1", "favorite_events": [
        {"id": "fav-1", "created_at": "Thu Nov 26 10:00:00 +0000 2026", "timestamp_ms": ms,
         "favorited_status": {"id_str": "tw-1"}, "user": user}],
        "tweet_create_events": [{"id_str": "tw-2", "timestamp_ms": ms, "text": "@brand love it",
                                 "in_reply_to_status_id_str": "tw-1", "user": user}],
        "follow_events": [{"type": "follow", "created_timestamp": ms, "source": {"id": "x-u-2", "screen_name": "bo"},
                           "target": {"id": "brand-1", "screen_name": "brand"}}]}).encode()


def tiktok_body(now: datetime) -> bytes:
    return json.dumps({"client_key": "bwo2m45353a6k85", "event": "video.publish.completed",
                       "create_time": int(now.timestamp()), "user_openid": "act.example1",
                       "content": "{\"share_id\":\"video.6974245311675353080.VDCxrcMJ\"}"}).encode()


@pytest.mark.integration
def test_only_verified_deliveries_land_and_refine_makes_orders_and_interactions(collector, spark, tmp_path):
    from jobs.config import Config
    from jobs.lake import Lake
    from jobs.pipeline.runner import run_stage
    from jobs.runs.window import Window
    from tests.lakes import PII_KEY

    now = datetime.now(timezone.utc).replace(microsecond=0)
    order = shopify_order(now)
    shop_headers = {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "wh-1", "X-Shopify-Event-Id": "ev-1",
                    "X-Shopify-Triggered-At": iso(now), "X-Shopify-Shop-Domain": "shop.myshopify.com",
                    "X-Shopify-API-Version": "2025-10", "Content-Type": "application/json"}
    s = SECRETS
    with httpx.Client(base_url=collector.url, timeout=30) as c:
        good = {**shop_headers, "X-Shopify-Hmac-Sha256": b64mac(s["RAPPORT_SHOPIFY_WEBHOOK_SECRET"], order)}
        assert c.post("/webhooks/shopify", content=order, headers=good).status_code == 200
        assert c.post("/webhooks/shopify", content=order, headers=good).status_code == 200  # Shopify redelivers
        assert c.post("/webhooks/shopify", content=order + b" ", headers=good).status_code == 401
        assert c.post("/webhooks/shopify", content=order, headers=shop_headers).status_code == 401
        products = {**good, "X-Shopify-Topic": "products/update"}
        assert c.post("/webhooks/shopify", content=order, headers=products).json()["landed"] is False

        assert c.get("/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": "verify_me",
                                               "hub.challenge": "1158201444"}).text == "1158201444"
        assert c.get("/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": "wrong",
                                               "hub.challenge": "1"}).status_code == 403
        for body in (meta_body(now), instagram_body(now)):
            sig = "sha256=" + hexmac(s["RAPPORT_META_APP_SECRET"], body)
            assert c.post("/webhooks/meta", content=body, headers={"X-Hub-Signature-256": sig}).status_code == 200
            assert c.post("/webhooks/meta", content=body + b"\n",
                          headers={"X-Hub-Signature-256": sig}).status_code == 401

        crc = c.get("/webhooks/x", params={"crc_token": "tok-42"}).json()
        assert crc == {"response_token": "sha256=" + b64mac(s["RAPPORT_X_CONSUMER_SECRET"], b"tok-42")}
        body = x_body(now)
        sig = "sha256=" + b64mac(s["RAPPORT_X_CONSUMER_SECRET"], body)
        assert c.post("/webhooks/x", content=body, headers={"x-twitter-webhooks-signature": sig}).status_code == 200
        assert c.post("/webhooks/x", content=body, headers={"x-twitter-webhooks-signature": "sha256=AAAA"}).status_code == 401

        body, t = tiktok_body(now), int(time.time())
        sig = f"t={t},s={hexmac(s['RAPPORT_TIKTOK_CLIENT_SECRET'], f'{t}.'.encode() + body)}"
        assert c.post("/webhooks/tiktok", content=body, headers={"TikTok-Signature": sig}).status_code == 200
        stale = f"t={t - 900},s={hexmac(s['RAPPORT_TIKTOK_CLIENT_SECRET'], f'{t - 900}.'.encode() + body)}"
        r = c.post("/webhooks/tiktok", content=body, headers={"TikTok-Signature": stale})
        assert r.status_code == 401 and "old" in r.json()["error"]
        metrics = c.get("/metrics").text
    assert 'rapport_collector_rejected_requests_total{reason="bad_signature"} 6.0' in metrics
    collector.stop()

    def lines(source):
        return [json.loads(x) for p in collector.landed(source) for x in gzip.decompress(p.read_bytes()).splitlines()]

    orders, social = lines("orders"), lines("social")
    assert len(orders) == 2 and {o["webhook_id"] for o in orders} == {"wh-1"}
    assert orders[0]["body"] == json.loads(order)  # the body exactly as it came
    assert orders[0]["shop_domain"] == "shop.myshopify.com" and orders[0]["topic"] == "orders/create"
    assert sorted((r["source"], r.get("field") or r.get("kind")) for r in social) == sorted([
        ("meta", "feed"), ("meta", "feed"), ("meta", "comments"), ("meta", "mentions"), ("x", "favorite_events"),
        ("x", "tweet_create_events"), ("x", "follow_events"), ("tiktok", None)])

    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(collector.landing), pii_key=PII_KEY)
    assert run_stage(spark, cfg, "ingest", Window()).gate.passed  # the bronze gate passes on collector files
    reports = run_stage(spark, cfg, "refine", Window(), only=("refine.orders", "refine.social"), gate=False).reports
    assert reports["refine.orders"].balanced and reports["refine.social"].balanced
    lake = Lake(cfg, spark)
    assert [r.order_id for r in lake.read("silver.orders").collect()] == [5100000001]
    assert reports["refine.orders"].duplicates == 1  # the redelivery
    got = sorted((r.platform, r.interaction, r.interaction_type) for r in lake.read("silver.social_interactions").collect())
    assert got == sorted([("facebook", "comment", "comment"), ("facebook", "reaction", "like"),
                          ("instagram", "comment", "comment"), ("x", "like", "like"), ("x", "reply", "comment"),
                          ("x", "follow", "follow")])
    assert reports["refine.social"].quarantined == {"missing_ids": 1, "unknown_interaction": 1}  # IG mention, TikTok
