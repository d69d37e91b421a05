"""What makes a silver row valid, defined once.

Each silver table's row rules are data: a column, the quarantine reason a row that breaks the rule gets, and one
check (not null, a value set from ``schemas/vocabulary.py``, a pattern, a range, not before another column, not
after another column plus a tolerance). Refine applies them to every parsed row (``jobs.silver.rules``): a row that
breaks one is quarantined with that reason and its raw line, and never reaches silver. The quality suites derive
their row expectations from the same rules (``jobs.quality.suites``), so the gate checks exactly what parse
enforced (it fails only if the two ever disagree) and no suite copies a value set by hand. What no single row can
decide (volumes, quarantine rates, freshness, uniqueness across the table, references) stays in the suites' YAML.

Plain Python (no Spark): DAG files, the generator and the docs may read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas import vocabulary as v

FUTURE_TOLERANCE_SECONDS = 3600  # an event may claim to be at most this far ahead of its arrival


@dataclass(frozen=True)
class Rule:
    column: str  # the silver column (``line_items.quantity``: a field of each element of an array column)
    reason: str  # the quarantine reason of a row that breaks it
    not_null: bool = False
    values: tuple[str, ...] | None = None
    regex: str | None = None
    min: float | None = None
    max: float | None = None
    not_before: str | None = None  # another column this one may not be earlier than
    at_most_after: tuple[str, int] | None = None  # (column, seconds): not later than that column plus the tolerance

    @property
    def name(self) -> str:
        for kind in ("not_null", "values", "regex", "not_before", "at_most_after"):
            if getattr(self, kind):
                return f"{self.column}:{kind}"
        return f"{self.column}:range"


RULES: dict[str, tuple[Rule, ...]] = {
    "silver.clickstream_events": (
        Rule("message_id", "missing_ids", not_null=True),
        Rule("received_at", "bad_timestamp", not_null=True),
        Rule("event_time", "bad_timestamp", not_null=True),
        Rule("event_date", "bad_timestamp", not_null=True),
        Rule("type", "unknown_event_type", values=v.EVENT_TYPES),
        Rule("device_class", "wrong_types", values=v.DEVICE_CLASSES),
        Rule("price", "out_of_range", min=0, max=1e9),
        Rule("quantity", "out_of_range", min=0, max=1e6),
        Rule("revenue", "out_of_range", min=0, max=1e10),
        Rule("rating", "out_of_range", min=1, max=5),
        Rule("event_time", "future_timestamp", at_most_after=("received_at", FUTURE_TOLERANCE_SECONDS)),
        Rule("ip_truncated", "wrong_types", regex=r"^([0-9]+\.[0-9]+\.[0-9]+\.0|.*::)$"),
    ),
    "silver.social_interactions": (
        Rule("event_id", "missing_ids", not_null=True),
        Rule("actor_id_hash", "missing_ids", not_null=True),
        Rule("platform", "unknown_platform", values=v.PLATFORMS),
        Rule("interaction_type", "unknown_interaction", values=v.CONFORMED_TYPES),
        Rule("rating", "out_of_range", min=1, max=5),
        Rule("occurred_at", "bad_timestamp", not_null=True),
        Rule("event_date", "bad_timestamp", not_null=True),
        Rule("occurred_at", "future_timestamp", at_most_after=("collected_at", FUTURE_TOLERANCE_SECONDS)),
    ),
    "silver.order_status_history": (
        Rule("webhook_id", "missing_ids", not_null=True),
        Rule("order_id", "missing_ids", not_null=True),
        Rule("status", "unknown_value", values=v.ORDER_STATUSES),
        Rule("channel", "unknown_value", values=tuple(sorted(set(v.ORDER_CHANNELS.values())))),
        Rule("currency", "wrong_types", regex=v.CURRENCY_PATTERN),
        Rule("total_price", "out_of_range", min=0, max=v.MAX_AMOUNT),
        Rule("created_at", "bad_timestamp", not_null=True),
        Rule("updated_at", "bad_timestamp", not_before="created_at"),
        Rule("event_date", "bad_timestamp", not_null=True),
        Rule("updated_at", "future_timestamp", at_most_after=("received_at", FUTURE_TOLERANCE_SECONDS)),
        Rule("line_items.quantity", "out_of_range", min=1, max=1_000_000),
        Rule("line_items.price", "out_of_range", min=0, max=v.MAX_AMOUNT),
    ),
    # reference extracts: a row that breaks one is quarantined as the extract is refined; the rest replace the table
    "silver.products": (
        Rule("product_id", "missing_ids", not_null=True),
        Rule("price", "out_of_range", min=0, max=v.MAX_AMOUNT),
        Rule("currency", "wrong_types", regex=v.CURRENCY_PATTERN),
    ),
    "silver.campaigns": (
        Rule("campaign_id", "missing_ids", not_null=True),
        Rule("end_date", "bad_timestamp", not_before="start_date"),
    ),
    "silver.campaign_posts": (
        Rule("post_id", "missing_ids", not_null=True),
        Rule("platform", "unknown_platform", values=v.PLATFORMS),
    ),
}
# tables whose rows are the parsed rows of another (a delivery's latest state, its lines): they keep its rules
DERIVED = {"silver.orders": "silver.order_status_history", "silver.order_lines": "silver.order_status_history"}
EXPLODED = {"silver.order_lines": "line_items"}  # a row per element of this array column


def rules_of(table: str) -> tuple[Rule, ...]:
    """The row rules that hold for a silver table, by its own column names."""
    if table in RULES:
        return tuple(r for r in RULES[table] if "." not in r.column)
    source = DERIVED.get(table)
    if source is None:
        return ()
    array = EXPLODED.get(table)
    if array:
        return tuple(Rule(**{**r.__dict__, "column": r.column.split(".", 1)[1]}) for r in RULES[source]
                     if r.column.startswith(f"{array}."))
    return tuple(r for r in RULES[source] if "." not in r.column)


def expectation(rule: Rule) -> dict:
    """The Great Expectations (or Rapport) expectation that checks the rule over a table."""
    if rule.not_null:
        return {"type": "expect_column_values_to_not_be_null", "column": rule.column}
    if rule.values is not None:
        return {"type": "expect_column_values_to_be_in_set", "column": rule.column, "value_set": list(rule.values)}
    if rule.regex is not None:
        return {"type": "expect_column_values_to_match_regex", "column": rule.column, "regex": rule.regex}
    if rule.not_before is not None:
        return {"type": "expect_column_pair_values_a_to_be_greater_than_b", "column_A": rule.column,
                "column_B": rule.not_before, "or_equal": True}
    if rule.at_most_after is not None:
        return {"type": "no_future_events", "column": rule.column, "arrival": rule.at_most_after[0],
                "tolerance_minutes": rule.at_most_after[1] // 60}
    out = {"type": "expect_column_values_to_be_between", "column": rule.column}
    if rule.min is not None:
        out["min_value"] = rule.min
    if rule.max is not None:
        out["max_value"] = rule.max
    return out
