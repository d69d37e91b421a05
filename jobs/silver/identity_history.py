"""Identity as history: who each identifier belonged to over time, and every merge, split, block and shared identifier.

Contract
- ``silver.identity_versions`` is ``identity_map`` with validity intervals (SCD2), written once: a run that changes an
  identifier's customer (or whether it is shared) appends a row valid from the run's *known time*; the interval ends
  where the identifier's next row begins (``intervals``). Nothing stored is updated, so a run writes what it changed
  and the table grows with the changes, not with the runs.
- The known time is data time, not the clock: the end of the landing window the run read (or the newest evidence it
  read, for an open window). So "as of T" means "as Rapport knew it from everything that had landed by T", and a lake
  built day by day answers it as a lake built from the files landed by T does. A person's change (an unmerge, an
  unblock) is known from the clock's now. Known times only go forward: a run never stamps a time before the last one.
- ``silver.identity_events`` records merges, splits, shared identifiers, blocks and unblocks, each once.
- ``silver.identity_edges`` says of every link whether it still joins (``valid_to``, ``end_reason``): a link stops
  joining when one of its ends is found shared, or a person blocks it (``silver.identity_blocks``).
- A lake from before identity history starts each identifier's history at its first arrival with its key then.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from jobs.lake import Lake, sql_literal

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

EDGE_HISTORY = {"evidence_table": "string", "evidence_key": "string", "run_id": "string", "valid_to": "timestamp",
                "end_reason": "string"}
TICK = timedelta(seconds=1)


def migrate(lake: Lake) -> None:
    """Give an edges table of an earlier release the history columns (NULL: evidence unknown), once."""
    from pyspark.sql import functions as F

    if not lake.exists("silver.identity_edges"):
        return
    edges = lake.read("silver.identity_edges")
    missing = [c for c in EDGE_HISTORY if c not in edges.columns]
    if missing:
        lake.rewrite("silver.identity_edges", edges.select(
            *edges.columns, *[F.lit(None).cast(EDGE_HISTORY[c]).alias(c) for c in missing]))


def last_known(lake: Lake) -> datetime | None:
    """The newest known time in the history (from the Delta log's statistics when they are there)."""
    if not lake.exists("silver.identity_versions"):
        return None
    newest = lake.newest("silver.identity_versions", "valid_from")
    if newest is None:
        newest = lake.read("silver.identity_versions").agg({"valid_from": "max"}).first()[0]
    return newest.replace(tzinfo=timezone.utc) if newest is not None and newest.tzinfo is None else newest


def known_time(lake: Lake, candidate: datetime | None) -> datetime:
    """The known time of a change: ``candidate`` (a window's end, the newest evidence, or now), moved past the
    last known time so intervals never overlap or run backwards."""
    moment = (candidate or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    last = last_known(lake)
    if last is not None and moment <= last:
        moment = last + TICK
    return moment


def event_id(*parts: object) -> str:
    """The id ``write_events`` gives an event of a run (run id, action, key, other key, identifier)."""
    return hashlib.sha256("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


def active_blocks(lake: Lake, at: datetime | None = None) -> "DataFrame | None":
    """(a, b, reason) of the blocks that hold now (or at ``at``); None when there are none."""
    if not lake.exists("silver.identity_blocks"):
        return None
    blocks = lake.read("silver.identity_blocks")
    if at is None:
        blocks = blocks.where("unblocked_at IS NULL")
    else:
        blocks = blocks.where(f"blocked_at <= {sql_literal(at)} AND (unblocked_at IS NULL OR unblocked_at > {sql_literal(at)})")
    return blocks.select("a", "b", "reason")


def without_blocked(edges: "DataFrame", blocks: "DataFrame | None") -> "DataFrame":
    """The links no block covers (a block covers a pair whichever way round and by whatever link type). Pure."""
    if blocks is None:
        return edges
    pair = blocks.selectExpr("a AS _ba", "b AS _bb")
    return edges.join(pair, _covers(edges, pair), "left_anti")


def _covers(edges: "DataFrame", pair: "DataFrame") -> "Column":
    """A block (``_ba``, ``_bb``) covers a link either way round."""
    return ((edges.a == pair._ba) & (edges.b == pair._bb)) | ((edges.a == pair._bb) & (edges.b == pair._ba))


def record(lake: Lake, previous: "DataFrame | None", current: "DataFrame", scope: "DataFrame | None",
           edges: "DataFrame", shared: "DataFrame", blocks: "DataFrame | None", known: datetime, run_id: str,
           change: str | None = None, why: str | None = None) -> dict[str, int]:
    """Record what this run changed: a version row per identifier whose customer (or shared flag) changed, the
    events, and the links that stopped or started joining.

    ``previous``/``current`` are identity maps; ``scope`` the identifiers recomputed (None: all). ``change``/``why``
    name a person's change (an unmerge …); splits without one are explained by what the run found."""
    diff = _record_versions(lake, previous, current, scope, known, run_id, change)
    merges, splits = _record_events(lake, previous, diff, edges, scope, known, run_id, change, why)
    # a link's state changes only with its ends' (new, shared or not, blocked or lifted): all are in ``scope``
    scoped = edges if scope is None else touching(edges, scope)
    return {"merges": merges, "splits": splits, "links_ended": _record_link_ends(lake, scoped, shared, blocks, known, run_id)}


def touching(edges: "DataFrame", identifiers: "DataFrame") -> "DataFrame":
    """The links (``a``, ``b``) with an end among ``identifiers`` (a frame with an ``identifier`` column), each once.
    Pure."""
    ids = identifiers.select("identifier")
    by_a = edges.join(ids.withColumnRenamed("identifier", "a"), "a", "left_semi")
    by_b = (edges.join(ids.withColumnRenamed("identifier", "b"), "b", "left_semi")
            .join(ids.withColumnRenamed("identifier", "a"), "a", "left_anti"))
    return by_a.unionByName(by_b)


def _record_versions(lake: Lake, previous: "DataFrame | None", current: "DataFrame", scope: "DataFrame | None",
                     known: datetime, run_id: str, change: str | None) -> "DataFrame":
    """Append a version row for every identifier whose customer or shared flag changed; the changes, each with its
    old and new key and flag and whether its old key is still used (``_kept``)."""
    from pyspark.sql import functions as F

    t = F.lit(known).cast("timestamp")
    cur = current.select("identifier", F.col("customer_key").alias("new_key"), F.col("is_shared").alias("new_shared"))
    if previous is None:
        diff = cur.select("identifier", F.lit(None).cast("string").alias("old_key"),
                          F.lit(None).cast("boolean").alias("old_shared"), "new_key", "new_shared")
    else:
        prev = previous.select("identifier", F.col("customer_key").alias("old_key"), F.col("is_shared").alias("old_shared"),
                               "first_seen")
        if scope is not None:
            prev, cur = prev.join(scope, "identifier", "left_semi"), cur.join(scope, "identifier", "left_semi")
        diff = (prev.join(cur, "identifier", "full_outer")
                .where("old_key IS NULL OR new_key IS NULL OR old_key <> new_key OR old_shared <> new_shared"))
        if not lake.exists("silver.identity_versions"):  # a lake from before identity history: seed it
            lake.append("silver.identity_versions", previous.select(
                "identifier", "customer_key", "is_shared", F.col("first_seen").alias("valid_from"),
                F.lit("new").alias("change"), F.lit(run_id).alias("run_id")))
        diff = diff.drop("first_seen")
    diff = lake.checkpoint(diff, run_id, "identity-diff")
    keys_now = current.select(F.col("customer_key").alias("old_key")).distinct().withColumn("_kept", F.lit(True))
    diff = diff.join(keys_now, "old_key", "left")
    kind = (F.when(F.col("old_key").isNull(), "new")
            .when(F.col("new_key").isNull(), "gone")
            .when(F.col("old_shared") != F.col("new_shared"), F.when(F.col("new_shared"), "shared").otherwise("unshared"))
            .when(F.col("_kept").isNull(), "merge")
            .otherwise(F.lit(change or "split")))
    # written once: an interval ends where the identifier's next row begins, so nothing stored is ever updated
    opened = diff.select("identifier", F.col("new_key").alias("customer_key"),
                         F.coalesce("new_shared", F.lit(False)).alias("is_shared"), t.alias("valid_from"),
                         kind.alias("change"), F.lit(run_id).alias("run_id"))
    if diff.count():
        lake.append_new("silver.identity_versions", opened, scope=f"valid_from = {sql_literal(known)}")
    else:
        lake.ensure("silver.identity_versions")

    return diff


def _record_events(lake: Lake, previous: "DataFrame | None", diff: "DataFrame", edges: "DataFrame",
                   scope: "DataFrame | None", known: datetime, run_id: str, change: str | None,
                   why: str | None) -> tuple[int, int]:
    """Merges, splits and shared flips out of the changes; (merges, splits)."""
    from pyspark.sql import functions as F

    # events: merges (a key retired into another), splits (part of a key moved to another while it stays), shared
    moved = diff.where("old_key IS NOT NULL AND new_key IS NOT NULL AND old_key <> new_key")
    joined = moved.groupBy("old_key", "new_key", "_kept").agg(F.count("*").alias("identifiers"))
    if previous is not None:
        old_of = previous.select(F.col("identifier").alias("a"), F.col("customer_key").alias("ka"))
        if scope is not None:  # a merge or split joins or parts recomputed identifiers only
            old_of = old_of.join(scope.withColumnRenamed("identifier", "a"), "a", "left_semi")
        crossing = (edges.join(old_of, "a").join(old_of.withColumnRenamed("a", "b").withColumnRenamed("ka", "kb"), "b")
                    .where("ka <> kb").groupBy(F.col("ka").alias("old_key"))
                    .agg(F.concat_ws(",", F.sort_array(F.collect_set("via"))).alias("via")))
        joined = joined.join(crossing, "old_key", "left")
    else:
        joined = joined.withColumn("via", F.lit(None).cast("string"))
    split_why = F.lit(f"unmerged: {why}" if change == "unmerge" and why else why or "a link no longer joins them "
                      "(an identifier found shared, or a link blocked)")
    events = joined.select(
        F.when(F.col("_kept").isNull(), "merge").otherwise("split").alias("action"),
        F.when(F.col("_kept").isNull(), F.col("new_key")).otherwise(F.col("old_key")).alias("customer_key"),
        F.when(F.col("_kept").isNull(), F.col("old_key")).otherwise(F.col("new_key")).alias("other_key"),
        F.lit(None).cast("string").alias("identifier"),
        F.when(F.col("_kept").isNull(), F.coalesce("via", F.lit("shared identifier no longer used"))).otherwise(split_why)
        .alias("why"), "identifiers")
    flips = diff.where("old_key IS NOT NULL AND new_key IS NOT NULL AND old_shared <> new_shared").select(
        F.when(F.col("new_shared"), "shared").otherwise("unshared").alias("action"), F.col("old_key").alias("customer_key"),
        F.lit(None).cast("string").alias("other_key"), "identifier",
        F.when(F.col("new_shared"), "it links more accounts of one kind than RAPPORT_IDENTITY_MAX_LINKS allows; "
               "it joins nobody from now on").otherwise("it no longer links too many accounts").alias("why"),
        F.lit(1).cast("bigint").alias("identifiers"))
    events = events.unionByName(flips)
    events = lake.checkpoint(events, run_id, "identity-events")
    per_action = {r.action: r.n for r in events.groupBy("action").agg(F.count("*").alias("n")).collect()}  # 4 rows
    write_events(lake, events, known, run_id)
    return per_action.get("merge", 0), per_action.get("split", 0)



def end_reasons(edges: "DataFrame", shared: "DataFrame", blocks: "DataFrame | None") -> "DataFrame":
    """``edges`` with ``reason``: why each link does not join people now (its pair blocked, or an end shared), NULL
    while it does. Pure."""
    from pyspark.sql import functions as F

    ends = shared.select("identifier").withColumn("_s", F.lit(True))
    state = (edges.join(ends.withColumnRenamed("identifier", "a").withColumnRenamed("_s", "_sa"), "a", "left")
             .join(ends.withColumnRenamed("identifier", "b").withColumnRenamed("_s", "_sb"), "b", "left"))
    if blocks is not None:
        pair = blocks.selectExpr("a AS _ba", "b AS _bb", "reason AS _br")
        state = state.join(pair, _covers(state, pair), "left")
    else:
        state = state.withColumn("_br", F.lit(None).cast("string"))
    reason = (F.when(F.col("_br").isNotNull(), F.concat(F.lit("blocked: "), "_br"))
              .when(F.col("_sa").isNotNull(), F.concat(F.lit("shared identifier "), "a"))
              .when(F.col("_sb").isNotNull(), F.concat(F.lit("shared identifier "), "b")))
    return state.withColumn("reason", reason).drop("_sa", "_sb", "_ba", "_bb", "_br")


def _record_link_ends(lake: Lake, edges: "DataFrame", shared: "DataFrame", blocks: "DataFrame | None",
                      known: datetime, run_id: str) -> int:
    """Links whose end became shared or whose pair was blocked stop joining at ``known``; lifted ones join again. (A
    link that arrives with an end already shared, or between a blocked pair, is stored ended: ``identity``.)"""
    from pyspark.sql import functions as F

    t = F.lit(known).cast("timestamp")
    # links that stopped (or started again) joining
    state = end_reasons(edges, shared, blocks).select("a", "b", "via", "valid_to", "reason")
    flipped = state.where("(reason IS NULL) <> (valid_to IS NULL)").select(
        "a", "b", "via", F.when(F.col("reason").isNotNull(), t).alias("valid_to"), F.col("reason").alias("end_reason"))
    flipped = lake.checkpoint(flipped, run_id, "edge-ends")
    ended = flipped.count()
    if ended:
        lake.refresh("silver.identity_edges", flipped, on=("a", "b", "via"), columns=("valid_to", "end_reason"))
    return ended



def write_events(lake: Lake, events: "DataFrame", known: datetime, run_id: str) -> None:
    """Append events (action, customer_key, other_key, identifier, why, identifiers), each once per run."""
    from pyspark.sql import functions as F

    parts = [F.lit(run_id), *[F.coalesce(F.col(c), F.lit("")) for c in ("action", "customer_key", "other_key", "identifier")]]
    lake.append_new("silver.identity_events", events.select(
        F.substring(F.sha2(F.concat_ws("|", *parts), 256), 1, 32).alias("event_id"), "action", "customer_key",
        "other_key", "identifier", "why", "identifiers", F.lit(known).cast("timestamp").alias("known_at"),
        F.lit(run_id).alias("run_id"), F.current_timestamp().alias("recorded_at")))


def write_event(lake: Lake, action: str, customer_key: str, identifier: str, why: str, identifiers: int,
                known: datetime, run_id: str) -> None:
    """Append one event a person caused (a block, an unblock)."""
    row = lake.frame("silver.identity_events", [(None, action, customer_key, None, identifier, why, identifiers,
                                                 known, run_id, known)])
    write_events(lake, row.select("action", "customer_key", "other_key", "identifier", "why", "identifiers"),
                 known, run_id)


# ---- reading


def intervals(lake: Lake) -> "DataFrame":
    """``silver.identity_versions`` with ``valid_to``: the start of the identifier's next row (NULL while current).
    The same as SQL: ``lead(valid_from) OVER (PARTITION BY identifier ORDER BY valid_from)``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    return lake.read_or_empty("silver.identity_versions").withColumn(
        "valid_to", F.lead("valid_from").over(Window.partitionBy("identifier").orderBy("valid_from")))


def as_of(lake: Lake, at: datetime) -> "DataFrame":
    """(identifier, customer_key, is_shared): the identity as it was known at ``at``: each identifier's latest row
    from then or before (none for one not seen yet, or erased)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    latest = Window.partitionBy("identifier").orderBy(F.desc("valid_from"))
    return (lake.read_or_empty("silver.identity_versions").where(f"valid_from <= {sql_literal(at)}")
            .withColumn("_n", F.row_number().over(latest)).where("_n = 1 AND customer_key IS NOT NULL")
            .select("identifier", "customer_key", "is_shared"))


def history(lake: Lake, customer_key: str) -> list:
    """Every merge, split, block, unblock and shared identifier that touched a customer, in the order known."""
    from pyspark.sql import functions as F

    key = F.lit(customer_key)
    return (lake.read_or_empty("silver.identity_events")
            .where((F.col("customer_key") == key) | (F.col("other_key") == key))
            .orderBy("known_at", "recorded_at", "action").collect())


def blocks(lake: Lake, lifted: bool = False) -> list:
    """The blocks that hold (and, with ``lifted``, those lifted), newest first."""
    rows = lake.read_or_empty("silver.identity_blocks")
    if not lifted:
        rows = rows.where("unblocked_at IS NULL")
    return rows.orderBy(rows.blocked_at.desc()).collect()
