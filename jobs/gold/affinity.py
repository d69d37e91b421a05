"""``gold.product_signals``: what the interactions export is scored from, kept as curate writes interactions.

One row per identifier × product (``kind`` signal: the rows with a product whose event type weighs) and per
identifier × order (``kind`` purchase: the order's purchase row, whose products are the order's kept lines when the
export reads it), with the rows' undecayed score ``Σ weight · 2^(days from scored_from / half-life)``, their count
and their latest time. Keyed by the identifier the rows came through, like ``gold.interactions``: a merge, a split
or an unmerge changes no row here, the export applies the identity in force when it reads. So the export costs
what the customers' product pairs are, never the interactions' history:

    weight(customer, product, as_of) = round(Σ score · 2^(-(as_of - scored_from) / half-life), 6)

which is ``Σ weight · 0.5^(age / half-life)`` over the customer's signals (``jobs.export.datasets.interactions``).

- Each row's score is rounded to 12 decimals and summed as a decimal: sums are exact, so a table kept day by day
  equals one built at once, whatever the order rows came in.
- ``scored_from`` is the start of the era of the newest interaction (eras of ``ERA_HALF_LIVES`` half-lives from
  ``EPOCH``), so scores stay below ``2^ERA_HALF_LIVES`` per row; a new era, or other weights or half-life
  (``scored_with``), rebuilds the table from ``gold.interactions``.
- The table is a log of changes (``schemas.affinity.current`` reads it): a day's curate appends, per pair, what
  its added and removed rows change (``keep``), so the work is the day's; every ``COMPACT_AFTER`` generations it is
  rewritten as what it reads. A pair whose latest row went with nothing as late added is appended as a reset.
- A row scores at most ``2^ERA_HALF_LIVES`` times its weight (at most ``jobs.config.MAX_WEIGHT``): far inside
  ``decimal(38,12)``.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import TYPE_CHECKING

from jobs.gold.timeline import dates_sql
from jobs.lake import Lake
from schemas.affinity import SCORE, TABLE, Scoring, current, described, scored_as
from schemas.vocabulary import PURCHASE_EVENTS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)
KEY = ("identifier", "kind", "item")
COMPACT_AFTER = 8  # generations (a build, then appends) before the table is rewritten as one


def entries(rows: "DataFrame", scoring: Scoring, scored_from: date, sign: str | None = None) -> "DataFrame":
    """(identifier, kind, item, _score, _sign, occurred_at) for every signal of ``rows`` (interaction rows);
    ``_sign`` is 1, or the value of the expression ``sign`` (-1 for a removed row). Pure."""
    from pyspark.sql import functions as F

    weighed = {s: float(w) for s, w in scoring.weights.items() if w > 0}
    events = [s for s in weighed if s != "purchase"]
    unit = F.pow(F.lit(2.0), F.datediff("occurred_date", F.lit(scored_from)) / F.lit(float(scoring.half_life_days)))
    signed = F.lit(1) if sign is None else F.expr(sign)
    parts = []
    if events:
        weight = F.expr("CASE " + " ".join(f"WHEN event_type = '{s}' THEN {weighed[s]!r}" for s in events) + " END")
        parts.append(rows.where(F.col("product_id").isNotNull() & F.col("event_type").isin(*events)).select(
            "identifier", F.lit("signal").alias("kind"), F.col("product_id").alias("item"),
            (weight * unit).cast(SCORE).alias("_score"), signed.alias("_sign"), "occurred_at"))
    if "purchase" in weighed:
        parts.append(rows.where(F.col("order_id").isNotNull() & F.col("event_type").isin(*PURCHASE_EVENTS)).select(
            "identifier", F.lit("purchase").alias("kind"), F.col("order_id").alias("item"),
            (F.lit(weighed["purchase"]) * unit).cast(SCORE).alias("_score"), signed.alias("_sign"), "occurred_at"))
    if not parts:  # nothing weighs: no signal at all
        return rows.limit(0).select("identifier", F.lit("signal").alias("kind"), F.col("product_id").alias("item"),
                                    F.lit(0).cast(SCORE).alias("_score"), F.lit(1).alias("_sign"), "occurred_at")
    return parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])


def aggregate(found: "DataFrame", scoring: Scoring, scored_from: date, generation: int,
              reset: bool = False) -> "DataFrame":
    """``entries`` of whole histories → the table's rows, written as ``generation``. Pure."""
    from pyspark.sql import functions as F

    return _stamped(found.groupBy(*KEY).agg(F.sum("_score").cast(SCORE).alias("score"),
                                            F.count(F.lit(1)).alias("signals"), F.max("occurred_at").alias("last_at")),
                    scoring, scored_from, generation, reset)


def _stamped(pairs: "DataFrame", scoring: Scoring, scored_from: date, generation: int, reset: bool) -> "DataFrame":
    """Pairs (KEY, score, signals, last_at) as the table stores them, written as ``generation``. Pure."""
    from pyspark.sql import functions as F

    return pairs.select(*KEY, "score", "signals", "last_at", F.lit(generation).cast("bigint").alias("generation"),
                        F.lit(reset).alias("reset"), F.lit(scored_from).alias("scored_from"),
                        F.lit(scoring.settings).alias("scored_with"))


def build(lake: Lake, scoring: Scoring, newest: date | None) -> None:
    """The table from every stored interaction, in one generation."""
    scored_from = scoring.scored_from(newest)
    lake.rewrite(TABLE, aggregate(entries(lake.read("gold.interactions"), scoring, scored_from), scoring,
                                  scored_from, _generation(lake)))


def _generation(lake: Lake) -> int:
    """The next write's generation: the table's next version (no data read)."""
    version = lake.version(TABLE)
    return 0 if version is None else version + 1


def _their_days(lake: Lake, ids: "DataFrame", identity: "DataFrame") -> "list[date] | None":
    """The dates that hold every row of ``ids`` (identifiers): the ``history_dates`` of the customers they belong to
    (facts as this run left them), or None when one of them belongs to nobody (shared, or unknown). A listing."""
    from pyspark.sql import functions as F

    owners = ids.join(identity.where("NOT is_shared").select("identifier", "customer_key"), "identifier", "left")
    found = (owners.join(lake.read("gold.customer_facts").select("customer_key", "history_dates"), "customer_key",
                         "left").select(F.explode_outer("history_dates").alias("d")).distinct().collect())
    return None if any(r.d is None for r in found) else sorted(r.d for r in found)


def keep(lake: Lake, differ: "DataFrame | None", run_id: str, newest: date | None,
         identity: "DataFrame | None" = None) -> str:
    """Bring the table to the interactions stored now. ``differ``: the rows this run added and removed (``_side``),
    the stored table being of the interactions before; None when that is not known (rebuilt). Returns how:
    "built", "appended", "compacted" or "unchanged".

    A day appends what its rows changed, per pair: the score and count they add or take, and the latest added
    row's time. A pair whose latest row went, with nothing as late added, is appended as a reset
    (``schemas.affinity.current`` reads a pair from its newest reset on): empty when no row is left, the rows
    added when they are all it has (an order's purchase row that moved), else its rows read again, from the days
    its identifier's customer's facts name (``identity``: the map facts were computed with; without it, or for an
    identifier of nobody, from every day). After ``COMPACT_AFTER`` generations the table is rewritten as what it
    reads, in one."""
    from pyspark.sql import functions as F

    scoring = lake.cfg.export_scoring()
    scored_from = scoring.scored_from(newest)
    stored = lake.read(TABLE) if lake.exists(TABLE) else None
    if stored is not None and differ is not None:
        found = described(stored)
        if scored_as(found, scoring) != scored_from:
            log.info("curate: %s is empty, or was scored with other settings or in another era: rebuilt", TABLE)
            stored = None
    if stored is None or differ is None:
        build(lake, scoring, newest)
        return "built"
    added = F.col("_sign") > 0
    d = (entries(differ, scoring, scored_from, sign="CASE WHEN _side = 'added' THEN 1 ELSE -1 END")
         .groupBy(*KEY).agg(F.sum(F.col("_score") * F.col("_sign")).cast(SCORE).alias("score"),
                            F.sum("_sign").cast("bigint").alias("signals"),
                            F.max(F.when(added, F.col("occurred_at"))).alias("last_at"),
                            F.max(F.when(~added, F.col("occurred_at"))).alias("_removed"),
                            F.sum(F.when(added, F.col("_score"))).cast(SCORE).alias("_added_score"),
                            F.count(F.when(added, F.lit(1))).alias("_added")))
    d = lake.checkpoint(d, run_id, "signals-delta")
    if not d.limit(1).count():  # no row with a signal came or went
        return "unchanged"
    generation = _generation(lake)

    # a pair whose latest row went with nothing as late added: that time would stay among its rows (also when the
    # pair goes and comes back), so the pair is reset: to nothing when no row is left, to the rows added when they
    # are all it has, else to its rows read again
    now = current(stored.join(d.where("_removed IS NOT NULL").select("identifier").distinct(), "identifier",
                              "left_semi"))
    lost = lake.checkpoint(
        d.where("_removed IS NOT NULL").join(now.select(*KEY, F.col("signals").alias("_had"),
                                                        F.col("last_at").alias("_last")), list(KEY))
        .where("_last <= _removed AND (last_at IS NULL OR last_at < _last)")
        .select(*KEY, (F.col("_had") + F.col("signals")).alias("_left"), "_added", "_added_score", "last_at"),
        run_id, "signals-lost")
    rows = _stamped(d, scoring, scored_from, generation, False).join(lost, list(KEY), "left_anti")
    if lost.limit(1).count():  # a removed row was its pair's latest: rare
        known = lost.where("_left = _added").select(
            *KEY, F.coalesce("_added_score", F.lit(0).cast(SCORE)).alias("score"), F.col("_left").alias("signals"),
            "last_at")
        unknown = lost.where("_left <> _added").select(*KEY)
        rows = rows.unionByName(_stamped(known, scoring, scored_from, generation, True))
        if unknown.limit(1).count():
            log.info("curate: a product pair's latest signal went, older ones stay: its rows are read again")
            ids = unknown.select("identifier").distinct()
            days = None if identity is None else _their_days(lake, ids, identity)
            stored_rows = lake.read("gold.interactions")
            if days is not None:
                stored_rows = stored_rows.where(f"occurred_date {dates_sql(days)}" if days else "FALSE")
            again = aggregate(entries(stored_rows.join(ids, "identifier", "left_semi"), scoring, scored_from),
                              scoring, scored_from, generation, reset=True)
            rows = rows.unionByName(again.join(unknown, list(KEY), "left_semi"))
    if found.generations >= COMPACT_AFTER:
        lake.rewrite(TABLE, _stamped(current(stored.unionByName(rows)), scoring, scored_from, generation, False))
        return "compacted"
    lake.append(TABLE, rows)
    return "appended"
