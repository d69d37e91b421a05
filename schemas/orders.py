"""Orders as Shopify order objects (webhook bodies, Admin API exports) and Rapport's delivery envelope.

Every delivery carries the whole order as it was at ``updated_at``. Deliveries can
arrive out of order; the newest ``updated_at`` wins. Amounts are decimal strings, as
Shopify sends them; ids are 64-bit integers (they can exceed 2^53, so never a double).
"""

from pyspark.sql.types import ArrayType, LongType, StringType, StructField, StructType

from schemas.vocabulary import (
    CURRENCIES, FINANCIAL_STATUSES, FULFILLMENT_STATUSES, ORDER_CHANNELS as CHANNELS, ORDER_TOPICS as TOPICS,
)

__all__ = ["CHANNELS", "CURRENCIES", "EVENT", "FINANCIAL_STATUSES", "FULFILLMENT_STATUSES", "LINE_ITEM", "ORDER",
           "ROOT", "SOURCE", "TOPICS"]

SOURCE = "orders"


def _s(name: str, dtype=None) -> StructField:
    return StructField(name, dtype or StringType(), True)


LINE_ITEM = StructType(
    [_s("id", LongType()), _s("product_id"), _s("variant_id", LongType()), _s("sku"), _s("title"),
     _s("quantity", LongType()), _s("price")]
)
DISCOUNT_CODE = StructType([_s("code"), _s("amount"), _s("type")])

ORDER = StructType(
    [
        _s("id", LongType()), _s("name"), _s("order_number", LongType()), _s("email"), _s("phone"),
        _s("created_at"), _s("updated_at"), _s("processed_at"), _s("cancelled_at"), _s("cancel_reason"),
        _s("currency"), _s("total_price"), _s("subtotal_price"), _s("total_tax"), _s("total_discounts"),
        _s("financial_status"), _s("fulfillment_status"), _s("source_name"), _s("location_id", LongType()),
        _s("landing_site"), _s("referring_site"),
        _s("discount_codes", ArrayType(DISCOUNT_CODE)),
        _s("customer", StructType([_s("id", LongType()), _s("email")])),
        _s("line_items", ArrayType(LINE_ITEM)),
    ]
)

# Rapport's delivery envelope, as its collector lands a Shopify webhook: the headers, and the order object as it
# came in ``body``. The generator's older envelope carries it in ``order``.
ENVELOPE = [_s("source"), _s("topic"), _s("webhook_id"), _s("event_id"), _s("triggered_at"), _s("received_at"),
            _s("shop_domain"), _s("api_version"), _s("body", ORDER), _s("order", ORDER)]
EVENT = StructType(ENVELOPE)
# What a line may be: an envelope, or a bare order object (an Admin API export, a webhook body saved without its
# headers). Both sets of fields are read; refine takes ``body``, then ``order``, then the root.
ROOT = StructType([*ENVELOPE, *ORDER.fields])
