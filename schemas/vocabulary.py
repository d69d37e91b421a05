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
FINANCIAL_STATUSES = ("pending", "paid", "refunded", "partially_refunded", "voided")
FULFILLMENT_STATUSES = ("fulfilled", "partial")  # null while unfulfilled
CURRENCIES = ("USD", "EUR", "GBP", "CAD")
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
