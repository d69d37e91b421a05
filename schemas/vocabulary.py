"""The business vocabulary, defined once: platforms, interaction types, order channels and states, what a
purchase and a kept order are. Plain Python (no Spark), so DAG files, the generator and the jobs share it.
"""

# ---- social platforms: each platform's own interaction names, mapped to Rapport's conformed types.
# A platform or an interaction name not listed here is quarantined, never guessed.
CONFORMED_TYPES = ("like", "comment", "share", "pin", "repin", "mention", "review", "check_in", "follow", "story_view")
INTERACTIONS: dict[str, dict[str, str]] = {
    "facebook": {
        "like": "like", "reaction": "like", "comment": "comment", "share": "share",
        "recommendation": "review", "checkin": "check_in", "page_like": "follow", "mention": "mention",
    },
    "instagram": {
        "like": "like", "comment": "comment", "share": "share", "mention": "mention",
        "story_mention": "mention", "story_view": "story_view", "follow": "follow",
    },
    "pinterest": {"pin": "pin", "repin": "repin", "comment": "comment", "reaction": "like", "follow": "follow"},
    "x": {"like": "like", "reply": "comment", "repost": "share", "quote": "share", "mention": "mention", "follow": "follow"},
    "yelp": {"review": "review", "check_in": "check_in", "tip": "comment"},
    "foursquare": {"checkin": "check_in", "tip": "comment", "like": "like"},
    "snapchat": {"story_view": "story_view", "share": "share", "subscribe": "follow", "mention": "mention"},
    "tiktok": {"like": "like", "comment": "comment", "share": "share", "follow": "follow", "mention": "mention"},
}
PLATFORMS = tuple(INTERACTIONS)
TARGET_TYPES = ("post", "product", "venue", "account")  # a retailer's post, a product page, a store, the brand

# ---- orders (Shopify)
ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/fulfilled", "orders/cancelled")
# Shopify's financial_status values (the REST Order resource); an order's status in silver is one of these, or
# fulfilled or cancelled (jobs.silver.orders)
FINANCIAL_STATUSES = ("pending", "authorized", "partially_paid", "paid", "partially_refunded", "refunded", "voided",
                      "expired")
ORDER_STATUSES = FINANCIAL_STATUSES + ("fulfilled", "cancelled")
FULFILLMENT_STATUSES = ("fulfilled", "partial")  # null while unfulfilled
CURRENCIES = ("USD", "EUR", "GBP", "CAD")  # what the generator uses; any ISO 4217 code is valid
CURRENCY_PATTERN = "^[A-Z]{3}$"
MAX_AMOUNT = 1_000_000_000  # no price or total beyond this is real
ORDER_CHANNELS = {"web": "web", "iphone": "app", "android": "app", "pos": "store"}  # Shopify source_name -> channel
# An order counts (revenue, RFM, purchases in exports) unless it ended in one of these states.
UNKEPT_STATUSES = ("cancelled", "refunded")


def kept_order_sql(status_column: str = "status") -> str:
    """SQL condition: the order was kept (not cancelled or refunded)."""
    return f"{status_column} NOT IN ({', '.join(repr(s) for s in UNKEPT_STATUSES)})"


# ---- the timeline's event types
PURCHASE_EVENTS = ("order_placed", "store_purchase")  # an order's first state is the purchase itself
ADVOCACY_EVENTS = ("review", "share", "mention")
UGC_EVENTS = ("comment", "mention", "pin", "repin")
CHANNELS = ("web", "app", "social", "store")

# ---- clickstream
EVENT_TYPES = ("page", "screen", "track", "identify", "alias", "group")  # Segment's call types
DEVICE_CLASSES = ("desktop", "mobile", "tablet", "app", "bot")

# ---- identity: identifier types (accounts are strong: a person may have several devices, phones or orders)
STRONG_IDENTIFIERS = ("user", "email", "crm")
WEAK_IDENTIFIERS = ("anon", "phone", "handle", "social", "shop", "order")
IDENTIFIER_TYPES = STRONG_IDENTIFIERS + WEAK_IDENTIFIERS

# ---- gold: lifecycle stages (jobs.gold.relationship) and campaign consistency verdicts (jobs.gold.trends)
LIFECYCLE_STAGES = ("prospect", "engaged", "customer", "repeat", "advocate", "at_risk", "lapsed")
CONSISTENCY = ("consistent", "missing", "stale", "silent", "unscheduled")
