"""Shopify-style order webhooks: an order's life as a series of deliveries.

Each state change (created, paid, fulfilled, cancelled, refunded) is delivered as a
webhook carrying the whole order as of ``updated_at``. Deliveries are mostly quick,
sometimes delayed by hours (so updates of one order can arrive out of order) and
rarely days late. Changes after the generated window have not happened yet.
"""

from __future__ import annotations

from jobs.generate.context import DAY, ShardContext, iso
from jobs.generate.population import Person, uid

SHOP = "rapport-demo.myshopify.com"
API_VERSION = "2025-10"
TAX_RATE = 0.08


def _money(x: float) -> str:
    return f"{x:.2f}"


def place_order(
    ctx: ShardContext,
    person: Person,
    t: float,
    source_name: str,
    items: list[tuple[dict, int]],
    coupon: str | None = None,
    landing_site: str | None = None,
    referring_site: str | None = None,
    location_id: int | None = None,
    with_email: bool = True,
) -> dict:
    """Create an order at ``t`` and land its lifecycle; return the order as created."""
    rng = ctx.rng
    ctx.order_seq += 1
    number = 1000 + ctx.shard * 10_000_000 + ctx.order_seq
    order_id = 5_000_000_000_000 + ctx.shard * 10_000_000 + ctx.order_seq
    subtotal = sum(p["price"] * q for p, q in items)
    discount = round(subtotal * rng.choice((0.1, 0.15, 0.2)), 2) if coupon else 0.0
    tax = round((subtotal - discount) * TAX_RATE, 2)
    email = person.email if with_email else None
    line_items = [
        {"id": order_id * 10 + i, "product_id": p["product_id"], "variant_id": 40_000_000_000 + int(p["product_id"][1:]),
         "sku": p["sku"], "title": p["title"], "quantity": q, "price": _money(p["price"])}
        for i, (p, q) in enumerate(items)
    ]
    store = source_name == "pos"
    order = {
        "id": order_id,
        "name": f"#{number}",
        "order_number": number,
        "email": email,
        "phone": person.phone if with_email and rng.random() < 0.3 else None,
        "created_at": iso(t),
        "updated_at": iso(t),
        "processed_at": iso(t),
        "cancelled_at": None,
        "cancel_reason": None,
        "currency": person.currency,
        "total_price": _money(subtotal - discount + tax),
        "subtotal_price": _money(subtotal),
        "total_tax": _money(tax),
        "total_discounts": _money(discount),
        "financial_status": "paid" if store or rng.random() < 0.93 else "pending",
        "fulfillment_status": "fulfilled" if store else None,
        "source_name": source_name,
        "location_id": location_id,
        "landing_site": landing_site,
        "referring_site": referring_site,
        "discount_codes": [{"code": coupon, "amount": _money(discount), "type": "percentage"}] if coupon else [],
        "customer": {"id": person.shopify_customer_id, "email": email} if email else None,
        "line_items": line_items,
    }
    _deliver(ctx, "orders/create", order, t)
    _lifecycle(ctx, order, t, store)
    if with_email:
        person.purchased.extend(p["product_id"] for p, _ in items)
    ctx.info["orders_created"] += 1
    return order


def _lifecycle(ctx: ShardContext, order: dict, t: float, store: bool) -> None:
    rng = ctx.rng
    state = order
    if state["financial_status"] == "pending":
        t += rng.uniform(300, 3600)
        state = _update(ctx, "orders/paid", state, t, financial_status="paid")
        if state is None:
            return
    if not store and rng.random() < 0.25:
        # Shopify fires orders/updated minutes after checkout (payment capture, risk check, tags)
        t += rng.uniform(60, 1800)
        state = _update(ctx, "orders/updated", state, t)
        if state is None:
            return
    if not store and rng.random() < 0.03:
        t += rng.uniform(3600, 20 * 3600)
        _update(ctx, "orders/cancelled", state, t, cancelled_at=iso(t), cancel_reason="customer",
                financial_status="refunded" if state["financial_status"] == "paid" else "voided")
        return
    if not store:
        t += rng.uniform(1 * DAY, 3 * DAY)
        state = _update(ctx, "orders/fulfilled", state, t, fulfillment_status="fulfilled")
        if state is None:
            return
    if rng.random() < (0.02 if store else 0.04):
        t += rng.uniform(3 * DAY, 15 * DAY)
        _update(ctx, "orders/updated", state, t, financial_status="refunded")


def _update(ctx: ShardContext, topic: str, state: dict, t: float, **changes) -> dict | None:
    if t >= ctx.end_ts:
        return None  # has not happened within the generated window
    new = {**state, **changes, "updated_at": iso(t)}
    _deliver(ctx, topic, new, t)
    return new


def _deliver(ctx: ShardContext, topic: str, order: dict, t: float) -> None:
    rng = ctx.rng
    r = rng.random()
    if r < 0.005:
        delay = rng.uniform(1.2 * DAY, 3 * DAY)  # redelivered after an outage
    elif r < 0.085:
        delay = rng.uniform(600, 3 * 3600)  # delayed: later updates may overtake it
    else:
        delay = rng.expovariate(1 / 4.0)
    arrival = t + delay
    envelope = {
        "topic": topic,
        "webhook_id": uid(rng),
        "triggered_at": iso(t),
        "received_at": iso(arrival),
        "shop_domain": SHOP,
        "api_version": API_VERSION,
        "order": order,
    }
    ctx.emit("orders", envelope, t, arrival)
