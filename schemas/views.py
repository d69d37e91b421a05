"""The tables Rapport computes when they are read: declared in ``schemas/<layer>.yaml`` with ``write: view``, defined here.

``gold.customer_timeline`` is ``gold.interactions`` (each interaction stored once, keyed by the identifier it came
through) joined to the identity in force (``silver.identity_map``, or that map as of a past time), with ``seq`` and
the milestones computed over each customer's rows as they are read. A merge, split or unmerge therefore changes no
stored row: the next read sees the new customer. The definition is SQL expressions, so that the view registered for
analysts (``timeline_sql``) and the frames the jobs read (``timeline_frame``) are the same expressions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from schemas.vocabulary import ADVOCACY_EVENTS, PURCHASE_EVENTS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

BUCKETS = 64
REACTIVATION_DAYS = 90
ORDER = "occurred_at, channel, event_type, source_key"  # a customer's rows, in the order seq numbers them
INTERACTION_COLUMNS = ("occurred_at", "occurred_date", "channel", "platform", "event_type", "summary", "product_id",
                       "campaign", "order_id", "session_id", "identifier", "source_table", "source_key")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in values)


# what the milestones count: a row is one of them if the condition holds
COUNTED = {"visit": "event_type = 'visit'", "social": "channel = 'social'",
           "purchase": f"event_type IN ({_in(PURCHASE_EVENTS)})", "advocacy": f"event_type IN ({_in(ADVOCACY_EVENTS)})"}
_W = f"PARTITION BY customer_key ORDER BY {ORDER}"
# Two running counts travel in one bigint sum, the second above bit 31: each window function is an operator of its
# own that every row passes through (docs/sail-gaps.md, gap 18), so four counts in two sums save two passes
_PAIRS = (("visit", "social"), ("purchase", "advocacy"))
_HIGH = 31

# stage one: numbered and counted over each customer's rows in order
NUMBERED = (
    "*", f"row_number() OVER ({_W}) AS seq", f"lag(occurred_at) OVER ({_W}) AS _prev",
    *[f"sum(CASE WHEN {COUNTED[low]} THEN 1 ELSE 0 END + CASE WHEN {COUNTED[high]} THEN {1 << _HIGH} ELSE 0 END) "
      f"OVER ({_W} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS _{low}_{high}_n" for low, high in _PAIRS])


def _count(name: str) -> str:
    """The running count of ``name`` rows up to a row, out of the sum it shares (``NUMBERED``)."""
    low, high = next(pair for pair in _PAIRS if name in pair)
    packed = f"_{low}_{high}_n"
    return f"({packed} & {(1 << _HIGH) - 1})" if name == low else f"shiftright({packed}, {_HIGH})"


def _nth(name: str, n: int) -> str:
    return f"({COUNTED[name]}) AND {_count(name)} = {n}"


MILESTONES = (("first_visit", _nth("visit", 1)), ("first_social_touch", _nth("social", 1)),
              ("first_purchase", _nth("purchase", 1)), ("first_repeat_purchase", _nth("purchase", 2)),
              ("first_advocacy", _nth("advocacy", 1)),
              ("reactivation", f"_prev < occurred_at - INTERVAL {REACTIVATION_DAYS} DAYS"))
_MILESTONE = ("nullif(concat_ws(',', " + ", ".join(f"CASE WHEN {c} THEN '{m}' END" for m, c in MILESTONES) + "), '')")


def bucket_sql(key_sql: str) -> str:
    return f"pmod(xxhash64({key_sql}), {BUCKETS})"


# stage two: the declared columns
TIMELINE = (
    "customer_key", "seq", "occurred_at", "occurred_date", "channel", "platform", "event_type", "summary", "product_id",
    "campaign", "order_id", "session_id", f"{_MILESTONE} IS NOT NULL AS is_milestone", f"{_MILESTONE} AS milestone",
    "identifier", "source_table", "source_key", f"{bucket_sql('customer_key')} AS customer_bucket")


def timeline_sql(interactions: str, identity: str) -> str:
    """``gold.customer_timeline`` over two relations named in SQL (the stored tables, for the registered view)."""
    attributed = (f"SELECT m.customer_key, {', '.join(f'i.{c}' for c in INTERACTION_COLUMNS)} FROM {interactions} i "
                  f"JOIN {identity} m ON i.identifier = m.identifier AND NOT m.is_shared")
    return f"SELECT {', '.join(TIMELINE)} FROM (SELECT {', '.join(NUMBERED)} FROM ({attributed}) a) n"


def attributed_frame(interactions: "DataFrame", identity: "DataFrame") -> "DataFrame":
    """The interactions with the customer their identifier belongs to in ``identity`` (``identifier``,
    ``customer_key``, ``is_shared``); those of shared or unknown identifiers belong to nobody. Not numbered."""
    ids = identity.where("NOT is_shared").select("identifier", "customer_key")
    return interactions.select(*INTERACTION_COLUMNS).join(ids, "identifier")


def timeline_frame(interactions: "DataFrame", identity: "DataFrame") -> "DataFrame":
    """``gold.customer_timeline`` over two frames: the interactions and an identity map, either of them filtered
    (to some customers: each customer's rows must be all there, or seq is not theirs) or as of a past version."""
    return attributed_frame(interactions, identity).selectExpr(*NUMBERED).selectExpr(*TIMELINE)


@dataclass(frozen=True)
class View:
    inputs: tuple[str, ...]  # the tables it reads, in the order ``sql`` and ``frame`` take them
    sql: Callable[..., str]  # SQL over the inputs named in SQL
    frame: Callable[..., "DataFrame"]  # a frame over the inputs as frames


VIEWS = {"gold.customer_timeline": View(("gold.interactions", "silver.identity_map"), timeline_sql, timeline_frame)}
