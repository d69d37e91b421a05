"""Reference data: the CRM extract, the product catalogue, campaigns and their posts."""

from pyspark.sql.types import ArrayType, DoubleType, StringType, StructField, StructType

SOURCE = "reference"


def _s(name: str, dtype=None) -> StructField:
    return StructField(name, dtype or StringType(), True)


CUSTOMER = StructType(
    [
        _s("customer_id"), _s("email"), _s("phone"), _s("first_name"), _s("last_name"), _s("country"),
        _s("loyalty_tier"), _s("created_at"),
        _s("social_accounts", ArrayType(StructType([_s("platform"), _s("platform_user_id"), _s("handle")]))),
    ]
)
PRODUCT = StructType(
    [_s("product_id"), _s("sku"), _s("title"), _s("category"), _s("price", DoubleType()), _s("currency"), _s("slug")]
)
CAMPAIGN = StructType(
    [
        _s("campaign_id"), _s("name"), _s("utm_campaign"), _s("message_id"), _s("message"), _s("start_date"),
        _s("end_date"), _s("platforms", ArrayType(StringType())), _s("product_ids", ArrayType(StringType())),
        _s("discount_code"),
    ]
)
CAMPAIGN_POST = StructType(
    [_s("platform"), _s("post_id"), _s("campaign_id"), _s("message_id"), _s("published_at"), _s("url")]
)
SCHEMAS = {"customers": CUSTOMER, "products": PRODUCT, "campaigns": CAMPAIGN, "campaign_posts": CAMPAIGN_POST}
