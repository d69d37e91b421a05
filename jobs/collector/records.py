"""What a request lands: one JSON line per event (or per webhook element), as it came plus what the collector
knows (when it received it). Pure functions of the request's parsed body; the app checks sizes and keys.

Segment and RudderStack calls are landed as Segment's archives store them, so refine reads them like any
Segment file: ``receivedAt`` set by the collector, ``sentAt``/``timestamp``/``messageId`` kept, a batch's
``context`` and ``sentAt`` given to its events, a missing ``messageId`` filled (``rapport.messageIdFilled``),
the write key removed (it is a secret) and the site it names kept (``rapport.site``).

Snowplow events, Shopify deliveries and Meta, X and TikTok notifications are landed in envelopes that keep the
payload exactly and add ``received_at`` (docs/collector.md). A Meta delivery holds entries of changes and
an X delivery lists events by kind: each element becomes its own line with the delivery fields it needs, so a
line is one interaction and nothing of the delivery is lost.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

import orjson

SEGMENT_TYPES = ("track", "page", "screen", "identify", "group", "alias")
BATCH_PATHS = ("batch", "import", "b")


class Refused(Exception):
    """A request the collector will not land: the HTTP status, a short reason (a metrics label) and a message."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _line(record: Any, index: int, max_event: int) -> bytes:
    line = orjson.dumps(record) + b"\n"
    if len(line) > max_event:
        raise Refused(400, "event_too_large", f"event {index} is {len(line):,} bytes; the limit is "
                                              f"{max_event // 1024} KB (RAPPORT_COLLECTOR_MAX_EVENT_KB)")
    return line


def segment(body: Any, path: str, *, received_at: str, site: str, ip: str | None, max_event: int,
            max_batch: int, suppressed: Callable[[dict], bool] | None = None) -> tuple[list[bytes], int, int]:
    """Segment HTTP API calls -> (lines, how many messageIds were filled, how many events of suppressed people
    were dropped)."""
    if not isinstance(body, dict):
        raise Refused(400, "malformed", "the body is not a JSON object")
    if path in BATCH_PATHS:
        events = body.get("batch")
        if not isinstance(events, list):
            raise Refused(400, "malformed", "a batch request needs a \"batch\" list of events")
        if len(events) > max_batch:
            raise Refused(400, "batch_too_large", f"the batch has {len(events):,} events; the limit is {max_batch:,} "
                                                  "(RAPPORT_COLLECTOR_MAX_BATCH)")
        context, sent_at = body.get("context"), body.get("sentAt")
    else:
        events, context, sent_at = [dict(body, type=path)], None, None
    lines, filled, dropped = [], 0, 0
    for i, event in enumerate(events):
        if not isinstance(event, dict):
            raise Refused(400, "malformed", f"event {i} is not a JSON object")
        if suppressed is not None and suppressed(event):
            dropped += 1
            continue
        event.pop("writeKey", None)
        event["receivedAt"] = received_at
        if sent_at is not None and "sentAt" not in event:
            event["sentAt"] = sent_at
        if isinstance(context, dict):
            own = event.get("context")
            event["context"] = {**context, **own} if isinstance(own, dict) else {**context}
        if ip and isinstance(event.get("context", {}), dict) and not event.get("context", {}).get("ip"):
            event.setdefault("context", {})["ip"] = ip
        extra = {"site": site}
        if not event.get("messageId"):
            event["messageId"] = f"rapport-{uuid.uuid4()}"
            extra["messageIdFilled"] = True
            filled += 1
        event["rapport"] = extra
        lines.append(_line(event, i, max_event))
    return lines, filled, dropped


def snowplow(events: Iterable[Any], *, received_at: str, ip: str | None, user_agent: str | None,
             max_event: int, max_batch: int, suppressed: Callable[[dict], bool] | None = None) -> list[bytes]:
    """Snowplow tracker protocol events (name -> string) in an envelope: ``{"source": "snowplow", "received_at",
    "ip", "user_agent", "payload": {...}}``."""
    events = list(events)
    if len(events) > max_batch:
        raise Refused(400, "batch_too_large", f"the payload has {len(events):,} events; the limit is {max_batch:,} "
                                              "(RAPPORT_COLLECTOR_MAX_BATCH)")
    lines = []
    for i, event in enumerate(events):
        if not isinstance(event, dict) or not all(isinstance(v, str) for v in event.values()):
            raise Refused(400, "malformed", f"event {i} is not an object of strings (Snowplow's payload_data)")
        if suppressed is not None and suppressed({"anonymousId": event.get("duid"), "userId": event.get("uid")}):
            continue
        lines.append(_line({"source": "snowplow", "received_at": received_at, "ip": ip, "user_agent": user_agent,
                            "payload": event}, i, max_event))
    return lines


def shopify(body: bytes, headers: dict[str, str], *, received_at: str, max_event: int) -> bytes:
    """One delivery: the ``X-Shopify-*`` headers and the body, exactly as it came (whitespace outside strings
    aside: a JSON line holds no line break)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Refused(400, "malformed", "the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise Refused(400, "malformed", "the body is not a JSON object")
    head = {"source": "shopify", "topic": headers.get("x-shopify-topic"),
            "webhook_id": headers.get("x-shopify-webhook-id"), "event_id": headers.get("x-shopify-event-id"),
            "triggered_at": headers.get("x-shopify-triggered-at"), "received_at": received_at,
            "shop_domain": headers.get("x-shopify-shop-domain"), "api_version": headers.get("x-shopify-api-version")}
    line = orjson.dumps(head)[:-1] + b',"body":' + body.strip().replace(b"\r", b" ").replace(b"\n", b" ") + b"}\n"
    if len(line) > max_event:
        raise Refused(400, "event_too_large", f"the delivery is {len(line):,} bytes; the limit is "
                                              f"{max_event // 1024} KB (RAPPORT_COLLECTOR_MAX_EVENT_KB)")
    return line


def meta(body: Any, *, received_at: str, max_event: int) -> list[bytes]:
    """``{"object", "entry": [{"id", "time", "changes": [{"field", "value"}]}]}`` -> one line per change:
    ``{"source": "meta", "object", "entry_id", "entry_time", "received_at", "field", "value"}``; an entry without
    changes (Messenger's ``messaging``) is landed whole as ``entry``, for refine to say what it is."""
    if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
        raise Refused(400, "malformed", "a Meta notification is {\"object\", \"entry\": [...]}")
    records = []
    for entry in body["entry"]:
        if not isinstance(entry, dict):
            raise Refused(400, "malformed", "an entry is not a JSON object")
        base = {"source": "meta", "object": body.get("object"), "entry_id": entry.get("id"),
                "entry_time": entry.get("time"), "received_at": received_at}
        changes = entry.get("changes")
        if isinstance(changes, list) and changes:
            records += [{**base, "field": c.get("field"), "value": c.get("value")} if isinstance(c, dict)
                        else {**base, "change": c} for c in changes]
        else:
            records.append({**base, "entry": entry})
    return [_line(r, i, max_event) for i, r in enumerate(records)]


def x(body: Any, *, received_at: str, max_event: int) -> list[bytes]:
    """An Account Activity delivery ``{"for_user_id", "<kind>_events": [...], "users": {...}}`` -> one line per
    event: ``{"source": "x", "for_user_id", "received_at", "kind", "event", "users"}`` (the users it names)."""
    if not isinstance(body, dict):
        raise Refused(400, "malformed", "the body is not a JSON object")
    users = body.get("users") if isinstance(body.get("users"), dict) else None
    records = []
    for kind, events in body.items():
        if kind.endswith("_events") and isinstance(events, list):
            for event in events:
                named = None
                if users and isinstance(event, dict):
                    ids = {str(event.get("sender_id")), str((event.get("message_create") or {}).get("sender_id"))}
                    named = {k: v for k, v in users.items() if k in ids} or None
                records.append({"source": "x", "for_user_id": body.get("for_user_id"), "received_at": received_at,
                                "kind": kind, "event": event, "users": named})
    if not records:
        records.append({"source": "x", "for_user_id": body.get("for_user_id"), "received_at": received_at,
                        "kind": None, "event": body, "users": None})
    return [_line(r, i, max_event) for i, r in enumerate(records)]


def tiktok(body: Any, *, received_at: str, max_event: int) -> bytes:
    """``{"client_key", "event", "create_time", "user_openid", "content"}`` in ``{"source": "tiktok",
    "received_at", "event": {...}}``."""
    if not isinstance(body, dict):
        raise Refused(400, "malformed", "the body is not a JSON object")
    return _line({"source": "tiktok", "received_at": received_at, "event": body}, 0, max_event)
