"""A landing zone with a hostile or careless user's files beside a small generated one, run once through the chain."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobs.config import Config
from jobs.generate import Params, generate
from tests.handmade import iso, order, seg, social
from tests.lakes import PII_KEY

HOUR = datetime(2026, 11, 2, 5, tzinfo=timezone.utc)
EMAIL, PHONE, HANDLE, IP = "jane.hidden@example.org", "+44 20 7946 0958", "jane_hides", "198.51.100.77"
SECRETS = (EMAIL, "jane.hidden", PHONE, "7946 0958", HANDLE, IP)


def gz(lines: list[str | bytes]) -> bytes:
    return gzip.compress(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines), mtime=0)


def put(root: Path, rel: str, body: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def event(n: int, **overrides) -> dict:
    e = seg(f"hostile-device-{n}", None, HOUR + timedelta(minutes=n), props={"product_id": "P000001"})
    e["messageId"] = f"hostile-{n}"
    e.update(overrides)
    return e


def pii_everywhere() -> list[dict]:
    """Events hiding the secrets in every free-text field a tracker sends."""
    t = HOUR + timedelta(minutes=30)
    base = seg("pii-device", f"user-{EMAIL}", t, event="Products Searched",
               props={"query": f"{EMAIL} {PHONE}", "coupon": f"@{HANDLE}", "category": EMAIL})
    base["messageId"] = "pii-1"
    base["context"] = {"ip": f"{IP}:8080", "userAgent": f"Mozilla/5.0 ({EMAIL}; {IP})",
                       "page": {"path": f"/account/{EMAIL}", "title": f"Orders of {EMAIL}, call {PHONE}",
                                "url": f"https://shop.example/account?email={EMAIL}&utm_source=ig",
                                "referrer": f"https://mail.example/?to={EMAIL}&utm_campaign=spring"},
                       "campaign": {"name": f"spring {EMAIL}", "source": "instagram", "content": f"@{HANDLE}"}}
    visit = json.loads(json.dumps(base))
    visit.update(messageId="pii-2", type="page", event=None, name=f"Hello {EMAIL}")
    ip6 = json.loads(json.dumps(base))
    ip6.update(messageId="pii-3")
    ip6["context"]["ip"] = "[2001:db8:85a3::8a2e:370:7334]:443"
    as_user = seg(EMAIL, EMAIL, t, event="Product Viewed", props={"product_id": EMAIL})
    as_user["messageId"] = EMAIL  # a site that uses the email as every id
    return [base, visit, ip6, as_user]


@pytest.fixture(scope="session")
def hostile(spark, tmp_path_factory):
    """(config, the pipeline's stage results, landing path) for the generated + hostile landing zone."""
    from jobs.pipeline.runner import run_pipeline
    from jobs.runs.window import Window

    root = tmp_path_factory.mktemp("hostile")
    landing = root / "landing"
    generate(Params(customers=300, days=2, start=date(2026, 11, 1), seed=21), landing, workers=1, progress=False)
    hour = "dt=2026-11-02/hour=05"
    far, epoch = datetime(9999, 12, 31, 23, 59, 59), datetime(1970, 1, 1, 0, 0, 1)
    put(landing, f"clickstream/{hour}/hostile-times.json.gz", gz([
        json.dumps(event(1, timestamp=iso(far), sentAt=iso(far), receivedAt=iso(far))),
        json.dumps(event(2, timestamp=iso(epoch), sentAt=iso(epoch), receivedAt=iso(epoch))),
        json.dumps(event(3, timestamp="1970-01-01T00:00:05.000Z", sentAt="1970-01-01T00:00:10.000Z")),  # a reset device clock: corrected, kept
    ]))
    put(landing, f"clickstream/{hour}/hostile-shapes.json.gz", gz([
        "\ufeff" + json.dumps(event(10)),  # a byte-order mark at the start of the file
        json.dumps(event(11, properties="x")),
        "[" * 5000 + "]" * 5000, "NaN", json.dumps([event(12)]), '{"price": Infinity}',
        b'{"type": "track", "messageId": "caf\xe9"}',
        json.dumps(event(13)),
    ]))
    bad_urls = ("https://P91%40/p?utm_source=ig", "https://?utm_source=a", "http://[::1/x?sku=1")
    urls = []
    for i, url in enumerate(bad_urls):  # hosts that are not hosts: parse_url failed the whole refine on them
        e = event(30 + i)
        e["context"]["page"] = {"url": url, "referrer": url, "path": "/p"}
        urls.append(json.dumps(e))
    put(landing, f"clickstream/{hour}/hostile-urls.json.gz", gz(urls))
    bad_order = order(4_242_424_242_425, "urls@example.org", HOUR)
    bad_order["order"].update(landing_site="//?utm_campaign=x", referring_site=bad_urls[0])
    put(landing, f"orders/{hour}/hostile-urls.json.gz", gz([json.dumps(bad_order)]))
    put(landing, f"clickstream/{hour}/plain-text.json.gz", "".join(json.dumps(event(20 + i)) + "\n" for i in range(5)).encode())
    put(landing, f"clickstream/{hour}/pii.json.gz", gz([json.dumps(e) for e in pii_everywhere()]))
    put(landing, f"social/{hour}/pii.json.gz", gz([json.dumps({
        **social("instagram", f"id-{EMAIL}", f"@{HANDLE}", HOUR), "event_id": "pii-social",
        "interaction": "comment", "text": f"write me at {EMAIL} or {PHONE}",
        "target": {"type": "post", "id": EMAIL, "product_id": "P000001"}})]))
    o = order(4_242_424_242_424, EMAIL, HOUR)
    o["order"].update(name=f"#{EMAIL}", phone=PHONE, cancel_reason=f"customer {EMAIL} asked",
                      discount_codes=[{"code": f"@{HANDLE}"}], note=EMAIL)
    o["order"]["line_items"][0]["title"] = f"Engraved: {EMAIL}"
    put(landing, f"orders/{hour}/pii.json.gz", gz([json.dumps(o)]))
    # paths that are not read, and must be listed rather than skipped in silence
    for rel in ("clickstream/dt=2026-13-45/hour=01/a.json.gz", "clickstream/dt=2026-11-02/hour=25/b.json.gz",
                "clikstream/dt=2026-11-02/hour=05/misspelled.json.gz", "orders/2026-11-02/outside.json.gz",
                f"social/{hour}/_hidden.json.gz", f"social/{hour}/.DS_Store"):
        put(landing, rel, gz([json.dumps(event(99))]))
    put(landing, f"orders/{hour}/export.json.gz.inprogress", gz([json.dumps(o)]))
    cfg = Config(lake_root=str(root / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    results = run_pipeline(spark, cfg, Window(), stages=("ingest", "refine", "curate"))
    return cfg, results, landing
