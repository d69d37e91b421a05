"""The sources Rapport reads, declared once: three event sources and four reference extracts.

Any subset may exist in a lake: a source that has never landed is empty, not an error.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # "events" (refined event by event) or "reference" (the newest extract replaces the last)
    landing: str  # default folder under the landing root
    silver: tuple[str, ...]  # silver tables built from it

    @property
    def bronze(self) -> str:
        return f"bronze.{self.name}"


SOURCES = (
    Source("clickstream", "events", "clickstream", ("silver.clickstream_events",)),
    Source("social", "events", "social", ("silver.social_interactions",)),
    Source("orders", "events", "orders", ("silver.order_status_history", "silver.orders", "silver.order_lines")),
    Source("customers", "reference", "reference/customers", ("silver.crm_customers",)),
    Source("products", "reference", "reference/products", ("silver.products",)),
    Source("campaigns", "reference", "reference/campaigns", ("silver.campaigns",)),
    Source("campaign_posts", "reference", "reference/campaign_posts", ("silver.campaign_posts",)),
)
EVENT_SOURCES = tuple(s.name for s in SOURCES if s.kind == "events")
REFERENCE_SOURCES = tuple(s.name for s in SOURCES if s.kind == "reference")
SOURCE_NAMES = tuple(s.name for s in SOURCES)
# how a source's landing folder is laid out (``jobs.bronze.landing``): Rapport's, Segment's or RudderStack's S3 layout
LAYOUTS = ("rapport", "segment-s3", "rudderstack-s3")


def source(name: str) -> Source:
    for s in SOURCES:
        if s.name == name:
            return s
    raise ValueError(f"unknown source {name!r}; sources are {', '.join(SOURCE_NAMES)}")
