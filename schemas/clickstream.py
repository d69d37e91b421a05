"""Clickstream events in the Segment / RudderStack spec (page, screen, track, identify, alias, group).

Real exports from those tools land the same way as Rapport's generated data.
``timestamp`` is the device clock at the event, ``sentAt`` the device clock when
the batch was sent, ``receivedAt`` the collector's clock on arrival. In Segment's and
RudderStack's archives the device time is ``originalTimestamp`` and ``timestamp`` is already
corrected; refine takes ``originalTimestamp`` as the device time when it is there.
"""

from pyspark.sql.types import ArrayType, DoubleType, LongType, StringType, StructField, StructType

from schemas.vocabulary import EVENT_TYPES

SOURCE = "clickstream"
# the Segment spec's calls: screen is an app's page view; alias links a previous id to a user; group is kept
TYPES = EVENT_TYPES

# Segment e-commerce spec v2 event names, plus the social and account events Rapport tracks.
TRACK_EVENTS = (
    "Products Searched",
    "Product List Viewed",
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Cart Viewed",
    "Checkout Started",
    "Order Completed",
    "Product Shared",
    "Product Added to Wishlist",
    "Product Reviewed",
    "Signed Up",
    "Signed In",
)


def _s(name: str, dtype=None) -> StructField:
    return StructField(name, dtype or StringType(), True)


PAGE = StructType([_s("path"), _s("url"), _s("title"), _s("referrer"), _s("search")])
CAMPAIGN = StructType([_s("name"), _s("source"), _s("medium"), _s("content"), _s("term")])

PROPERTIES = StructType(
    [
        _s("path"), _s("url"), _s("title"), _s("referrer"), _s("search"),
        _s("product_id"), _s("sku"), _s("name"), _s("category"), _s("price", DoubleType()),
        _s("quantity", LongType()), _s("currency"), _s("order_id"), _s("total", DoubleType()),
        _s("revenue", DoubleType()), _s("coupon"), _s("query"), _s("share_via"), _s("share_message"),
        _s("rating", LongType()), _s("review_body"), _s("method"), _s("provider_user_id"), _s("list_id"), _s("cart_id"),
        _s("products", ArrayType(StructType([_s("product_id"), _s("quantity", LongType()), _s("price", DoubleType())]))),
    ]
)

TRAITS = StructType([_s("email"), _s("phone"), _s("first_name"), _s("last_name"), _s("created_at")])

CONTEXT = StructType(
    [
        _s("page", PAGE), _s("userAgent"), _s("ip"), _s("locale"), _s("timezone"),
        _s("campaign", CAMPAIGN),
        _s("library", StructType([_s("name"), _s("version")])),
        _s("app", StructType([_s("name"), _s("version"), _s("build")])),
        _s("device", StructType([_s("id"), _s("type"), _s("manufacturer"), _s("model")])),
    ]
)

EVENT = StructType(
    [
        _s("type"), _s("messageId"), _s("anonymousId"), _s("userId"), _s("previousId"), _s("groupId"), _s("event"),
        _s("name"),
        _s("properties", PROPERTIES), _s("traits", TRAITS), _s("context", CONTEXT),
        _s("timestamp"), _s("originalTimestamp"), _s("sentAt"), _s("receivedAt"),
    ]
)
