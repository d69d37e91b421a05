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
