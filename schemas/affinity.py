"""How ``gold.product_signals`` scores rows (``jobs.gold.affinity`` keeps the table, ``jobs.export`` reads it): one
definition for both, so the export can tell whether the table was scored as it would score."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

TABLE = "gold.product_signals"
EPOCH = date(2000, 1, 1)
ERA_HALF_LIVES = 20  # a row scores at most 2^20 times its weight: decimals keep 12 places below it
SCORE = "decimal(38,12)"


@dataclass(frozen=True)
class Scoring:
    weights: Mapping[str, float]  # per signal; "purchase" for an order's kept products; 0 or absent: not a signal
    half_life_days: int

    @property
    def settings(self) -> str:
        """What ``scored_with`` records: a table scored otherwise is rebuilt, and not read by the export."""
        weighed = {s: float(w) for s, w in sorted(self.weights.items()) if w > 0}
        return json.dumps({"weights": weighed, "half_life_days": self.half_life_days}, sort_keys=True)

    def scored_from(self, newest: date | None) -> date:
        """The first day of the era ``newest`` is in (``EPOCH`` when nothing is stored)."""
        era = ERA_HALF_LIVES * self.half_life_days
        return EPOCH + timedelta(days=((newest - EPOCH).days // era) * era) if newest else EPOCH


def described(rows: "DataFrame"):
    """One row about the stored table: ``lo``/``hi`` of ``scored_from``, ``with_lo``/``with_hi`` of
    ``scored_with``, the newest ``last_at`` (``last``) and how many ``generations``. One aggregate query."""
    from pyspark.sql import functions as F

    return rows.agg(F.min("scored_from").alias("lo"), F.max("scored_from").alias("hi"),
                    F.min("scored_with").alias("with_lo"), F.max("scored_with").alias("with_hi"),
                    F.max("last_at").alias("last"), F.countDistinct("generation").alias("generations")).first()


def scored_as(found, scoring: Scoring) -> date | None:
    """The ``scored_from`` every row of a table ``described`` as ``found`` shares, when every row was scored with
    ``scoring``'s settings; None when not (or when the table is empty)."""
    if found.lo is None or found.lo != found.hi or {found.with_lo, found.with_hi} != {scoring.settings}:
        return None
    return found.lo


def current(rows: "DataFrame") -> "DataFrame":
    """The pairs as ``gold.product_signals`` holds them now (identifier, kind, item, score, signals, last_at): its
    rows summed per pair, from the pair's newest reset on; pairs without a row left dropped. Pure."""
    from pyspark.sql import functions as F

    key = ["identifier", "kind", "item"]
    resets = rows.where("reset").groupBy(*key).agg(F.max("generation").alias("_from"))
    live = rows.join(resets, key, "left").where("_from IS NULL OR generation >= _from")
    return (live.groupBy(*key)
            .agg(F.sum("score").cast(SCORE).alias("score"), F.sum("signals").cast("bigint").alias("signals"),
                 F.max("last_at").alias("last_at"))
            .where("signals > 0"))
