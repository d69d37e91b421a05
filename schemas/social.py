"""Social interactions collected from the networks' APIs and webhooks.

Each platform reports interactions in its own words; ``schemas.vocabulary.INTERACTIONS``
maps every platform's native name to Rapport's conformed type.
"""

from pyspark.sql.types import LongType, StringType, StructField, StructType

from schemas.vocabulary import CONFORMED_TYPES, INTERACTIONS, PLATFORMS, TARGET_TYPES

__all__ = ["CONFORMED_TYPES", "EVENT", "INTERACTIONS", "PLATFORMS", "SOURCE", "TARGET_TYPES"]

SOURCE = "social"


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
