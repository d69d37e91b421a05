"""Orders in the forms a retailer has them: the collector's webhook envelope, bare order objects (an Admin API
export), and a REST page ``{"orders": [...]}`` saved as one pretty-printed file. They give the same silver."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobs.config import Config
from jobs.lake import Lake
from jobs.pipeline.runner import run_stage
from jobs.runs.window import Window
from tests.lakes import PII_KEY

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)
BIG = 2**60 + 7  # beyond 2^53: a double would round it


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def shopify_order(order_id: int, n: int, state: str, at: datetime) -> dict:
    """An order object as the Admin API returns it (a few of its fields)."""
    return {"id": order_id, "name": f"#{1000 + n}", "email": f"buyer{n}@example.com", "phone": None,
            "created_at": iso(T0 + timedelta(minutes=n)), "updated_at": iso(at), "currency": "EUR",
            "total_price": f"{10 * n}.50", "subtotal_price": f"{10 * n}.50", "total_tax": "0.00",
            "total_discounts": "0.00", "financial_status": state, "fulfillment_status": None, "source_name": "web",
            "customer": {"id": 7_000_000_000 + n, "email": f"buyer{n}@example.com"},
            "line_items": [{"id": 90_000_000_000 + n, "product_id": "8123456789012", "sku": "SKU-1", "title": "Linen Dress",
                            "quantity": 1 + n % 3, "price": f"{10 * n}.50"}],
            "cancelled_at": None, "landing_site": "/?utm_campaign=spring", "referring_site": "https://www.instagram.com/"}


def orders() -> list[dict]:
    out = []
    for n, oid in enumerate((BIG, 5_100_000_001, 5_100_000_002), start=1):
        out.append(shopify_order(oid, n, "pending", T0 + timedelta(minutes=n)))
        out.append(shopify_order(oid, n, "paid", T0 + timedelta(minutes=n, hours=1)))
    return out


def land(root: Path, rel: str, body: bytes) -> None:
    path = root / "orders" / "dt=2026-11-02" / "hour=12" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(body, mtime=0))


def build(spark, tmp_path: Path, name: str, write) -> Config:
    """A lake of the orders one form writes, ingested and refined."""
    landing = tmp_path / name / "landing"
    write(landing)
    cfg = Config(lake_root=str(tmp_path / name / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    run_stage(spark, cfg, "ingest", Window(), only=["ingest.orders"])
    run_stage(spark, cfg, "refine", Window(), only=["refine.orders", "refine.identity"])
    return cfg

LINEAGE = {"source_file", "line_number", "landing_dt", "landing_hour", "ingested_at", "run_id", "fingerprint"}
DELIVERY = {"webhook_id", "topic", "received_at", "event_date"}  # what a delivery adds besides the order itself


def rows(spark, cfg: Config, table: str, drop=frozenset()) -> list[tuple]:
    df = Lake(cfg, spark).read(f"silver.{table}")
    cols = sorted(c for c in df.columns if c not in LINEAGE | set(drop))
    return sorted(tuple(str(r[c]) for c in cols) for r in df.select(*cols).collect())


def test_three_forms_of_the_same_orders_give_the_same_silver(spark, tmp_path):
    objects = orders()
    webhook = build(spark, tmp_path, "webhook", lambda root: land(root, "collector-1.json.gz", "".join(json.dumps({
        "source": "shopify", "topic": "orders/updated", "webhook_id": f"b6f1c2-{i}", "event_id": f"e-{i}",
        "triggered_at": o["updated_at"], "received_at": o["updated_at"], "shop_domain": "shop.myshopify.com",
        "api_version": "2025-10", "body": o}) + "\n" for i, o in enumerate(objects)).encode()))
    bare = build(spark, tmp_path, "bare", lambda root: land(root, "export.json.gz",
                                                      "".join(json.dumps(o) + "\n" for o in objects).encode()))
    page = build(spark, tmp_path, "page", lambda root: land(root, "orders-page-1.json.gz",
                                                      json.dumps({"orders": objects}, indent=2).encode()))
    for cfg in (webhook, bare, page):
        assert Lake(cfg, spark).read("silver.order_status_history").count() == len(objects)
    assert rows(spark, bare, "orders") == rows(spark, webhook, "orders") == rows(spark, page, "orders")
    assert rows(spark, bare, "order_lines") == rows(spark, webhook, "order_lines") == rows(spark, page, "order_lines")
    assert rows(spark, bare, "order_status_history", DELIVERY) == rows(spark, webhook, "order_status_history", DELIVERY) \
        == rows(spark, page, "order_status_history", DELIVERY)
    current = {r.order_id: r for r in Lake(page, spark).read("silver.orders").collect()}
    assert BIG in current and current[BIG].status == "paid"  # 64-bit id intact; the newer state won
    keys = {r.webhook_id for r in Lake(bare, spark).read("silver.order_status_history").collect()}
    assert f"{BIG}@2026-11-02T10:01:00.000Z" in keys  # no webhook id: the delivery is the order id at updated_at


@pytest.mark.slow
def test_re_landing_an_export_changes_nothing_and_a_newer_version_wins(spark, tmp_path):
    objects = orders()
    cfg = build(spark, tmp_path, "again", lambda root: land(root, "export.json.gz",
                                                      "".join(json.dumps(o) + "\n" for o in objects).encode()))
    lake = Lake(cfg, spark)
    before = rows(spark, cfg, "orders")
    newer = shopify_order(BIG, 1, "refunded", T0 + timedelta(hours=5))
    landing = Path(cfg.landing_root)
    path = landing / "orders" / "dt=2026-11-02" / "hour=13" / "export-2.json.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress("".join(json.dumps(o) + "\n" for o in objects + [newer]).encode(), mtime=0))
    for stage in ("ingest", "refine"):
        run_stage(spark, cfg, stage, Window(), only=["ingest.orders"] if stage == "ingest" else ["refine.orders"])
    audit = lake.read("ops.audit").where("source = 'orders'").first()
    assert audit.balanced and audit.duplicates == len(objects)  # the same export again: all duplicates
    after = {r.order_id: r.status for r in lake.read("silver.orders").collect()}
    assert after[BIG] == "refunded" and len(rows(spark, cfg, "orders")) == len(before)
