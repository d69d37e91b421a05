"""Hand-made source records (Segment events, social interactions, Shopify webhooks) and a way to land them."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

T0 = datetime(2026, 11, 1, 10, tzinfo=timezone.utc)
_seq = iter(range(1, 10**6))


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def seg(anon, user=None, at=T0, kind="track", event="Product Viewed", traits=None, props=None) -> dict:
    return {"type": kind, "messageId": f"m-{next(_seq)}", "anonymousId": anon, "userId": user, "event": event,
            "properties": props or {}, "traits": traits, "context": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64)",
                                                                     "ip": "203.0.113.9"},
            "timestamp": iso(at), "sentAt": iso(at), "receivedAt": iso(at)}


def social(platform, actor_id, handle, at=T0) -> dict:
    return {"platform": platform, "event_id": f"e-{next(_seq)}", "interaction": "like",
            "actor": {"id": actor_id, "handle": handle}, "target": {"type": "account", "id": "brand"},
            "occurred_at": iso(at), "collected_at": iso(at)}


def order(order_id, email, at=T0, source="web", location=None) -> dict:
    return {"topic": "orders/create", "webhook_id": f"w-{next(_seq)}", "triggered_at": iso(at), "received_at": iso(at),
            "order": {"id": order_id, "email": email, "created_at": iso(at), "updated_at": iso(at), "currency": "USD",
                      "total_price": "10.00", "subtotal_price": "10.00", "total_tax": "0.00", "total_discounts": "0.00",
                      "financial_status": "paid", "source_name": source, "location_id": location,
                      "fulfillment_status": "fulfilled" if source == "pos" else None,
                      "line_items": [{"id": 1, "product_id": "P1", "quantity": 1, "price": "10.00"}]}}


def land(root, source: str, hour: datetime, records: list[dict]) -> None:
    path = root / source / f"dt={hour:%Y-%m-%d}" / f"hour={hour:%H}" / "part-00000.json.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
