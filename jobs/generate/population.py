"""Who acts in the generated world: persons with devices and social accounts, and the catalogue.

Persons come in kinds that stress identity stitching the way real traffic does:
registered web customers (CRM + site login, several devices, some social accounts),
anonymous prospects, social-only people (reachable only through social networks),
store-only loyalty customers, and bots. Activity weights are log-normal with mean 1,
so a few customers are heavy and most are light.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from schemas.social import PLATFORMS

KINDS = ("registered", "prospect", "social_only", "store_only", "bot")
KIND_WEIGHTS = (0.52, 0.25, 0.15, 0.06, 0.02)
ACTIVITY_SIGMA = 1.2  # log-normal spread of activity; mean is kept at 1

FIRST = ("ava", "liam", "mia", "noah", "zoe", "omar", "lena", "ivan", "sara", "yuki", "ines", "tom", "nia",
         "luca", "emma", "raj", "chloe", "diego", "hana", "ben", "ella", "kofi", "maya", "leo", "aisha", "jon")
LAST = ("smith", "garcia", "chen", "kowalski", "okafor", "silva", "nguyen", "muller", "rossi", "tanaka",
        "haddad", "johnson", "dubois", "novak", "kim", "patel", "lopez", "brown", "costa", "jensen")
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "proton.me", "hotmail.com")
COUNTRIES = (("US", "USD"), ("US", "USD"), ("US", "USD"), ("GB", "GBP"), ("DE", "EUR"), ("FR", "EUR"), ("CA", "CAD"))

USER_AGENTS = {
    "desktop": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0 Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:144.0) Gecko/20100101 Firefox/144.0",
    ),
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0 Mobile Safari/537.36",
    ),
    "tablet": ("Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",),
    "app": ("RapportShop/7.4.1 (iPhone; iOS 18.1; Scale/3.00)", "RapportShop/7.4.0 (Android 15; Pixel 9)"),
    "bot": (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    ),
}
DEVICE_KINDS = ("desktop", "mobile", "tablet", "app")
DEVICE_WEIGHTS = (0.35, 0.4, 0.07, 0.18)

# category -> what one product of it is called
CATEGORIES = {"shoes": "Sneaker", "dresses": "Dress", "denim": "Jeans", "outerwear": "Jacket", "bags": "Tote",
              "beauty": "Serum", "home": "Candle", "accessories": "Scarf", "activewear": "Legging", "kids": "Kids Tee"}
ADJECTIVES = ("classic", "organic", "vintage", "cloud", "urban", "coastal", "everyday", "studio", "alpine", "linen")
STORES = (1001, 1002, 1003, 1004, 1005)  # brick-and-mortar location ids (Shopify POS)


def uid(rng: random.Random) -> str:
    """A random UUID4-shaped string from the shard's stream (deterministic for a seed)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


@dataclass
class Device:
    anonymous_id: str
    kind: str
    user_agent: str
    ip: str
    clock_skew: float  # seconds the device clock is off
    identified: bool = False  # has logged in on this device before


@dataclass
class SocialAccount:
    platform: str
    user_id: str
    handle: str
    linked_in_crm: bool


@dataclass
class Person:
    key: str
    kind: str
    weight: float
    country: str
    currency: str
    first: str = ""
    last: str = ""
    customer_id: str | None = None
    user_id: str | None = None
    email: str | None = None
    phone: str | None = None
    signup: str | None = None
    shopify_customer_id: int | None = None
    devices: list[Device] = field(default_factory=list)
    social: list[SocialAccount] = field(default_factory=list)
    purchased: list[str] = field(default_factory=list)  # product ids, for reviews


def _ip(rng: random.Random) -> str:
    return f"{rng.randint(23, 222)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _platform_user_id(rng: random.Random, platform: str, handle: str) -> str:
    if platform == "yelp":
        return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(22))
    if platform == "foursquare":
        return f"{rng.getrandbits(96):024x}"
    if platform == "snapchat":
        return handle.lstrip("@")  # Snapchat exposes the username, not a numeric id
    digits = {"facebook": 15, "instagram": 17, "pinterest": 18, "x": 19, "tiktok": 19}[platform]
    return str(rng.randint(10 ** (digits - 1), 10**digits - 1))


def make_device(rng: random.Random, kind: str | None = None) -> Device:
    kind = kind or rng.choices(DEVICE_KINDS, DEVICE_WEIGHTS)[0]
    skew = rng.gauss(0, 1.5)
    if rng.random() < 0.04:  # a device whose clock is badly off
        skew = rng.choice((-1, 1)) * rng.uniform(300, 6 * 3600)
    return Device(uid(rng), kind, rng.choice(USER_AGENTS[kind]), _ip(rng), skew)


def make_person(rng: random.Random, index: int, start: date) -> Person:
    kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
    weight = math.exp(rng.gauss(-ACTIVITY_SIGMA**2 / 2, ACTIVITY_SIGMA))
    country, currency = rng.choice(COUNTRIES)
    p = Person(key=f"p{index:09d}", kind=kind, weight=weight, country=country, currency=currency)
    p.first, p.last = rng.choice(FIRST), rng.choice(LAST)
    if kind == "bot":
        p.weight = weight * 4
        p.devices = [make_device(rng, "bot")]
        return p
    if kind in ("registered", "store_only"):
        p.customer_id = f"C{index:09d}"
        p.email = f"{p.first}.{p.last}{index}@{rng.choice(DOMAINS)}"  # unique, as an email is
        p.phone = f"+1{rng.randint(200, 999)}{rng.randint(1000000, 9999999)}" if rng.random() < 0.6 else None
        p.signup = (start - timedelta(days=rng.randint(1, 1500))).isoformat()
        p.shopify_customer_id = 6_000_000_000_000 + index
    if kind == "registered":
        p.user_id = f"u_{rng.getrandbits(48):012x}"
    if kind in ("registered", "prospect"):
        p.devices = [make_device(rng) for _ in range(1 + (rng.random() < 0.45) + (rng.random() < 0.15))]
    n_social = {"registered": 0.9, "prospect": 0.7, "social_only": 2.2, "store_only": 0.2}[kind]
    count = min(len(PLATFORMS), int(n_social) + (rng.random() < n_social % 1))
    for platform in rng.sample(PLATFORMS, count):
        # unique per person (the index), as a platform makes it: reuse would be a real merge hazard, not noise
        handle = f"@{p.first}{rng.choice(('', '.', '_'))}{p.last[:rng.randint(1, len(p.last))]}{index}"
        linked = p.customer_id is not None and rng.random() < 0.5
        p.social.append(SocialAccount(platform, _platform_user_id(rng, platform, handle), handle, linked))
    return p


def crm_record(p: Person) -> dict:
    return {
        "customer_id": p.customer_id,
        "email": p.email,
        "phone": p.phone,
        "first_name": p.first.title(),
        "last_name": p.last.title(),
        "country": p.country,
        "loyalty_tier": "gold" if p.weight > 3 else ("silver" if p.weight > 1 else "bronze"),
        "created_at": f"{p.signup}T09:00:00.000Z",
        "social_accounts": [
            {"platform": a.platform, "platform_user_id": a.user_id, "handle": a.handle} for a in p.social if a.linked_in_crm
        ],
    }


def truth_record(p: Person) -> dict:
    """What the generator knows about a person, for measuring identity stitching."""
    return {
        "person": p.key,
        "kind": p.kind,
        "customer_id": p.customer_id,
        "user_id": p.user_id,
        "email": p.email,
        "phone": p.phone,
        "shopify_customer_id": p.shopify_customer_id,
        "anonymous_ids": [d.anonymous_id for d in p.devices],
        "social_accounts": [{"platform": a.platform, "platform_user_id": a.user_id, "handle": a.handle} for a in p.social],
    }


@dataclass
class Catalogue:
    """Products, campaigns and campaign posts: shared by every shard, derived from the seed alone."""

    products: list[dict]
    product_weights: list[float]
    campaigns: list[dict]
    posts: list[dict]

    def active_campaigns(self, day: date) -> list[dict]:
        d = day.isoformat()
        return [c for c in self.campaigns if c["start_date"] <= d <= c["end_date"]]

    def posts_for(self, campaign_id: str) -> list[dict]:
        return [p for p in self.posts if p["campaign_id"] == campaign_id]


def make_catalogue(seed: int, customers: int, start: date, days: int) -> Catalogue:
    rng = random.Random(f"{seed}:catalogue")
    n_products = max(60, min(3000, customers // 40))
    products = []
    for i in range(n_products):
        category = rng.choice(tuple(CATEGORIES))
        title = f"{rng.choice(ADJECTIVES).title()} {CATEGORIES[category]} {i}"
        products.append({
            "product_id": f"P{i:06d}",
            "sku": f"SKU-{category[:3].upper()}-{i:06d}",
            "title": title,
            "category": category,
            "price": round(math.exp(rng.gauss(3.6, 0.7)), 2),
            "currency": "USD",
            "slug": title.lower().replace(" ", "-"),
        })
    weights = [1.0 / (rank + 1) ** 0.9 for rank in range(n_products)]  # Zipf-like popularity
    rng.shuffle(weights)

    campaigns, posts = [], []
    first = start - timedelta(days=10)
    day, number = first, 0
    while day < start + timedelta(days=days):
        length = rng.randint(4, 10)
        name = f"{rng.choice(ADJECTIVES)}-{rng.choice(tuple(CATEGORIES))}-{day:%m%d}"
        cid = f"CMP{number:04d}"
        message_id = f"MSG-{number:04d}-v{rng.randint(1, 3)}"
        scheduled = sorted(rng.sample(PLATFORMS, rng.randint(4, 7)))
        focus = [p["product_id"] for p in rng.sample(products, min(len(products), rng.randint(3, 8)))]
        campaigns.append({
            "campaign_id": cid,
            "name": name.replace("-", " ").title(),
            "utm_campaign": name,
            "message_id": message_id,
            "message": f"{name.replace('-', ' ').title()}: new season, same you.",
            "start_date": day.isoformat(),
            "end_date": (day + timedelta(days=length - 1)).isoformat(),
            "platforms": scheduled,
            "product_ids": focus,
            "discount_code": f"{name.split('-')[1][:4].upper()}{rng.randint(10, 40)}",
        })
        for platform in scheduled:
            if rng.random() < 0.15:  # scheduled but never published: a consistency gap
                continue
            stale = rng.random() < 0.1  # published with an older version of the message
            posts.append({
                "platform": platform,
                "post_id": f"{platform[:2]}-{rng.getrandbits(60):015d}",
                "campaign_id": cid,
                "message_id": f"MSG-{number:04d}-v0" if stale else message_id,
                "published_at": f"{day.isoformat()}T{rng.randint(7, 11):02d}:00:00.000Z",
                "url": f"https://{platform}.example/{rng.getrandbits(40):x}",
            })
        number += 1
        day += timedelta(days=rng.randint(3, 6))
    return Catalogue(products, weights, campaigns, posts)
