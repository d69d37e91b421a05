"""Social interactions collected from the networks' APIs and webhooks.

Each platform reports interactions in its own words; ``INTERACTIONS`` maps every
platform's native interaction name to Rapport's conformed type. A platform or an
interaction name not listed here is quarantined, never guessed.
"""

from pyspark.sql.types import LongType, StringType, StructField, StructType

SOURCE = "social"

CONFORMED_TYPES = (
    "like", "comment", "share", "pin", "repin", "mention", "review", "check_in", "follow", "story_view",
)

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

# What an interaction points at: a retailer's post, a product page, a store (venue) or the brand account.
TARGET_TYPES = ("post", "product", "venue", "account")


def _s(name: str, dtype=None) -> StructField:
    return StructField(name, dtype or StringType(), True)


EVENT = StructType(
    [
        _s("platform"), _s("event_id"), _s("interaction"),
        _s("actor", StructType([_s("id"), _s("handle"), _s("display_name")])),
        _s("target", StructType([_s("type"), _s("id"), _s("url"), _s("product_id")])),
        _s("text"), _s("rating", LongType()), _s("occurred_at"), _s("collected_at"),
    ]
)
