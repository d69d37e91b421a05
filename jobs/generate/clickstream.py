"""Web and app sessions as Segment-spec events.

A session lands on a page (from a campaign link, search, email or directly), may
log in (by email or a social login), browses products through the e-commerce
funnel (search, list, view, cart, checkout, order) and sometimes shares a product,
wishlists it or reviews something bought earlier. Device clocks can be off
(``timestamp``/``sentAt`` carry the skew, ``receivedAt`` does not), and app batches
sent after days offline arrive late.
"""

from __future__ import annotations

from jobs.generate.context import DAY, ShardContext, iso
from jobs.generate.orders import place_order
from jobs.generate.population import Device, Person, uid

SITE = "https://shop.rapport.example"
JUNK_USER_IDS = ("0", "-1", "null", "undefined", "anonymous", "")
SEARCH_TERMS = ("white sneakers", "linen dress", "rain jacket", "gift ideas", "tote bag", "yoga pants", "sale")
REVIEW_BODIES = ("Love it!", "Runs small.", "Great quality for the price.", "Not what I expected.", "Perfect gift.")
LIBRARY = {"web": {"name": "analytics.js", "version": "5.2.0"}, "app": {"name": "analytics-ios", "version": "4.6.1"}}


class Session:
    """Builds one session's events in time order; ``t`` advances as the visitor acts."""

    def __init__(self, ctx: ShardContext, person: Person, device: Device, t: float, utm: dict | None, referrer: str | None):
        self.ctx, self.person, self.device, self.t = ctx, person, device, t
        self.utm, self.referrer = utm, referrer
        self.user_id = person.user_id if device.identified else None
        self.app = device.kind == "app"
        rng = ctx.rng
        r = rng.random()
        if self.app and r < 0.03:
            self.send_delay = rng.uniform(1.2 * DAY, 4 * DAY)  # app was offline: the batch lands days late
        else:
            self.send_delay = rng.uniform(5, 30) if self.app else rng.uniform(0.2, 3)
        self.page_ctx: dict | None = None

    def _event(self, kind: str, properties: dict, event: str | None = None, name: str | None = None,
               traits: dict | None = None) -> None:
        ctx, rng, t, dev = self.ctx, self.ctx.rng, self.t, self.device
        user_id = self.user_id
        if user_id is None and rng.random() < 0.002:
            user_id = rng.choice(JUNK_USER_IDS)  # what buggy trackers send for "no user"
            ctx.info["junk_user_ids"] += 1
        record: dict = {"type": kind, "messageId": uid(rng), "anonymousId": dev.anonymous_id, "userId": user_id}
        if event is not None:
            record["event"] = event
        if name is not None:
            record["name"] = name
        record["properties"] = properties
        if traits is not None:
            record["traits"] = traits
        context: dict = {"userAgent": dev.user_agent, "ip": dev.ip, "locale": "en-US",
                         "library": LIBRARY["app" if self.app else "web"]}
        if self.page_ctx is not None and not self.app:
            context["page"] = self.page_ctx
        if self.app:
            context["app"] = {"name": "RapportShop", "version": "7.4.1", "build": "741"}
            context["device"] = {"id": dev.anonymous_id, "type": "ios" if "iPhone" in dev.user_agent else "android"}
        if self.utm is not None:
            context["campaign"] = self.utm
        record["context"] = context
        latency = rng.uniform(0.03, 0.8)
        record["timestamp"] = iso(t + dev.clock_skew)
        record["sentAt"] = iso(t + self.send_delay + dev.clock_skew)
        record["receivedAt"] = iso(t + self.send_delay + latency)
        if dev.kind == "bot":
            ctx.info["bot_events"] += 1
        ctx.emit("clickstream", record, t, t + self.send_delay + latency)
        self.t = t + rng.expovariate(1 / 35.0) + 1.0

    def page(self, path: str, title: str, search: str = "") -> None:
        url = f"{SITE}{path}{search}"
        self.page_ctx = {"path": path, "url": url, "title": title, "referrer": self.referrer or "", "search": search}
        self._event("page", {"path": path, "url": url, "title": title, "referrer": self.referrer or "", "search": search},
                    name=title)
        self.referrer = url

    def track(self, event: str, properties: dict) -> None:
        self._event("track", properties, event=event)

    def login(self) -> None:
        person, rng = self.person, self.ctx.rng
        social = person.social[0] if person.social and rng.random() < 0.4 else None
        props = {"method": social.platform if social else "email"}
        if social is not None:
            props["provider_user_id"] = social.user_id
        self.user_id = person.user_id
        self.track("Signed In", props)
        traits = {"email": person.email} if rng.random() < 0.7 else {}
        self._event("identify", {}, traits=traits)
        if self.device.kind != "kiosk":
            self.device.identified = True


def product_props(p: dict, quantity: int | None = None) -> dict:
    props = {"product_id": p["product_id"], "sku": p["sku"], "name": p["title"], "category": p["category"],
             "price": p["price"], "currency": "USD", "url": f"{SITE}/products/{p['slug']}"}
    if quantity is not None:
        props["quantity"] = quantity
    return props


def web_session(ctx: ShardContext, person: Person, device: Device, t: float, campaign: dict | None) -> None:
    rng = ctx.rng
    utm, referrer, landing = None, None, ("/", "Home")
    r = rng.random()
    if campaign is not None and r < 0.4:
        platform = rng.choice(campaign["platforms"])
        utm = {"name": campaign["utm_campaign"], "source": platform, "medium": "social",
               "content": campaign["message_id"], "term": None}
        referrer = f"https://{'t.co' if platform == 'x' else platform + '.com'}/"
        landing = (f"/campaigns/{campaign['utm_campaign']}", campaign["name"])
    elif campaign is not None and r < 0.5:
        utm = {"name": campaign["utm_campaign"], "source": "newsletter", "medium": "email",
               "content": campaign["message_id"], "term": None}
    elif r < 0.75:
        referrer = "https://www.google.com/"
    s = Session(ctx, person, device, t, utm, referrer)
    search = ""
    if utm is not None:
        search = f"?utm_source={utm['source']}&utm_medium={utm['medium']}&utm_campaign={utm['name']}"
    s.page(landing[0], landing[1], search)

    if device.kind == "bot":
        for _ in range(rng.randint(4, 14)):
            p = ctx.pick_product()
            s.page(f"/products/{p['slug']}", p["title"])
        return
    if person.user_id and not device.identified and rng.random() < 0.35:
        s.login()

    focus = campaign["product_ids"] if campaign else None
    cart: list[tuple[dict, int]] = []
    views = 1
    while rng.random() < 0.55 and views < 12:
        views += 1
    for _ in range(views):
        if rng.random() < 0.2:
            s.track("Products Searched", {"query": rng.choice(SEARCH_TERMS)})
        p = ctx.pick_product(focus)
        s.page(f"/products/{p['slug']}", p["title"])
        s.track("Product Viewed", product_props(p))
        r = rng.random()
        if r < 0.2:
            q = 1 if rng.random() < 0.85 else 2
            cart.append((p, q))
            s.track("Product Added", product_props(p, q))
        elif r < 0.25:
            s.track("Product Added to Wishlist", product_props(p))
        if rng.random() < 0.04:
            via = person.social[0].platform if person.social else rng.choice(("facebook", "pinterest", "x"))
            s.track("Product Shared", {**product_props(p), "share_via": via, "share_message": "Look what I found"})

    if cart and rng.random() < 0.5:
        s.page("/cart", "Cart")
        s.track("Cart Viewed", {"cart_id": uid(rng), "products": [{"product_id": p["product_id"], "quantity": q,
                                                                    "price": p["price"]} for p, q in cart]})
        s.page("/checkout", "Checkout")
        s.track("Checkout Started", {"revenue": round(sum(p["price"] * q for p, q in cart), 2), "currency": "USD"})
        if rng.random() < 0.7 and s.t < ctx.end_ts:
            if person.email is None:
                # unique, as an email is (a random suffix alone gave two Chloe Lopezes one address at 100k events);
                # the draw stays so that every later random choice is what it was
                person.email = f"{person.first}.{person.last}{rng.randint(1, 9999)}.{int(person.key[1:])}@guestmail.example"
            coupon = campaign["discount_code"] if campaign and utm and rng.random() < 0.5 else None
            source = ("iphone" if "iPhone" in device.user_agent else "android") if s.app else "web"
            order = place_order(ctx, person, s.t, source, cart, coupon, landing_site=landing[0] + search,
                                referring_site=referrer)
            s.track("Order Completed", {
                "order_id": str(order["id"]), "total": float(order["total_price"]),
                "revenue": float(order["subtotal_price"]), "currency": order["currency"], "coupon": coupon,
                "products": [{"product_id": p["product_id"], "quantity": q, "price": p["price"]} for p, q in cart],
            })
    if person.purchased and rng.random() < 0.08:
        pid = rng.choice(person.purchased)
        p = ctx.catalogue.products[int(pid[1:])]
        s.page(f"/products/{p['slug']}/review", f"Review {p['title']}")
        rating = rng.choices((1, 2, 3, 4, 5), (0.05, 0.07, 0.13, 0.3, 0.45))[0]
        s.track("Product Reviewed", {**product_props(p), "rating": rating, "review_body": rng.choice(REVIEW_BODIES)})


def kiosk_visit(ctx: ShardContext, person: Person, t: float) -> None:
    """A customer logs in at an in-store kiosk: one device shared by many customers."""
    rng = ctx.rng
    kiosk = rng.choice(ctx.kiosks)
    s = Session(ctx, person, kiosk, t, None, None)
    s.page("/", "Home")
    s.login()
    for _ in range(rng.randint(1, 3)):
        p = ctx.pick_product()
        s.page(f"/products/{p['slug']}", p["title"])
        s.track("Product Viewed", product_props(p))
