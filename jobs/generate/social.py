"""Social interactions with the retailer's posts, products, stores and brand accounts.

Each platform speaks its own vocabulary (``schemas.social.INTERACTIONS``) and its own
id formats. Campaign posts draw interactions only on platforms where the campaign
was actually published. The collector polls APIs, so interactions arrive minutes
later, and a backfill after an API outage brings some days late.
"""

from __future__ import annotations

from jobs.generate.context import DAY, ShardContext, iso
from jobs.generate.population import STORES, Person, uid
from schemas.social import INTERACTIONS

BRAND_HANDLES = {"facebook": "RapportShop", "instagram": "@rapport.shop", "pinterest": "rapportshop", "x": "@RapportShop",
                 "yelp": "rapport-shop", "foursquare": "rapport-shop", "snapchat": "rapportshop", "tiktok": "@rapport.shop"}
PHRASES = ("obsessed with this", "where can I buy?", "need this in blue", "best purchase this year", "meh",
           "shipping took forever", "so cute!!", "does it run true to size?", "love the new collection")
TEXT_TYPES = frozenset({"comment", "mention", "review"})
# How often each native interaction happens, relative to the platform's first (most common) one.
_DECAY = 0.6


def _event_id(ctx: ShardContext, platform: str) -> str:
    rng = ctx.rng
    if platform == "facebook":
        return f"{rng.randint(10**14, 10**15 - 1)}_{rng.randint(10**15, 10**16 - 1)}"
    if platform == "yelp":
        return uid(rng).replace("-", "")[:22]
    if platform == "foursquare":
        return f"{rng.getrandbits(96):024x}"
    if platform == "snapchat":
        return uid(rng)
    return str(rng.randint(10**17, 10**19 - 1))


def interaction(ctx: ShardContext, person: Person, t: float, campaigns: list[dict]) -> None:
    rng = ctx.rng
    account = rng.choice(person.social)
    platform = account.platform
    natives = list(INTERACTIONS[platform])
    native = rng.choices(natives, [_DECAY**i for i in range(len(natives))])[0]
    conformed = INTERACTIONS[platform][native]

    posts = [p for c in campaigns for p in ctx.catalogue.posts_for(c["campaign_id"]) if p["platform"] == platform]
    if conformed == "check_in" or (conformed == "review" and platform in ("yelp", "foursquare")):
        store = rng.choice(STORES)
        target = {"type": "venue", "id": f"venue-{store}", "url": f"https://{platform}.example/venue/{store}"}
    elif conformed == "follow" or (conformed == "review" and platform == "facebook"):
        target = {"type": "account", "id": BRAND_HANDLES[platform], "url": f"https://{platform}.example/{BRAND_HANDLES[platform]}"}
    elif posts and rng.random() < 0.65:
        post = rng.choice(posts)
        target = {"type": "post", "id": post["post_id"], "url": post["url"]}
    else:
        product = ctx.pick_product(campaigns[0]["product_ids"] if campaigns else None)
        target = {"type": "product", "id": f"{platform}-pin-{product['product_id']}", "url": f"https://{platform}.example/p/{product['slug']}",
                  "product_id": product["product_id"]}

    text = None
    if conformed in TEXT_TYPES:
        text = rng.choice(PHRASES)
        if conformed == "mention":
            text = f"{BRAND_HANDLES[platform]} {text}"
    rating = rng.choices((1, 2, 3, 4, 5), (0.06, 0.08, 0.14, 0.3, 0.42))[0] if conformed == "review" else None

    arrival = t + rng.uniform(60, 3600)
    if rng.random() < 0.01:
        arrival = t + rng.uniform(1.2 * DAY, 5 * DAY)  # backfill after an API outage
    record = {
        "platform": platform,
        "event_id": _event_id(ctx, platform),
        "interaction": native,
        "actor": {"id": account.user_id, "handle": account.handle, "display_name": f"{person.first.title()} {person.last[0].upper()}."},
        "target": target,
        "text": text,
        "rating": rating,
        "occurred_at": iso(t),
        "collected_at": iso(arrival),
    }
    ctx.emit("social", record, t, arrival)
