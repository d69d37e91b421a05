"""Identity stitching: every identifier → one stable ``customer_key`` (``silver/identity_map``).

Contract
- Nodes are identifiers ``type:value``: ``anon`` (anonymousId), ``user`` (site user id),
  ``email``/``phone`` (HMAC hashes), ``crm`` (CRM customer id), ``social``/``handle``
  (hashed platform id / handle), ``shop`` (Shopify customer id) and ``order``. Edges
  come from identify/login events, social logins, checkouts (anonymousId/userId ↔
  order ↔ email), CRM linked accounts and social profiles. Both accumulate in
  ``silver/identity_edges`` and ``silver/identity_nodes`` with their earliest arrival.
- Links are followed transitively (connected components by label propagation).
- A component's key comes from its anchor: the earliest existing anchor in it, else
  its earliest-arriving identifier. So adding data never renumbers a customer; when
  two customers merge the older key survives, and the merge is recorded with when
  and why in ``silver/identity_merges``.
- False merges are guarded against: junk values never become identifiers, and a weak
  identifier (device, phone, handle, order …) linked to more than ``max_links`` accounts
  of one kind (users, emails or CRM ids; default 1) — a shared kiosk, a family device —
  is not used for merging and is listed in ``silver/identity_shared``.
- Bots are left out.
- Incremental: a run recomputes only the components its new links and identifiers (or an identifier that
  became shared) touch; every other identifier keeps its row, which is what a full run would give it (its
  component's label is its prior anchor). If a usable link leaves the affected set, everything is recomputed.
  When nothing stopped joining anything (the usual day: new visitors, logins, orders), each touched customer is
  one node and labels propagate over the new links only (``contracted_components``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from jobs.runs.window import Window
from jobs.silver import identity_history as history
from jobs.silver import identity_links
from jobs.sql_text import in_list
from jobs.storage import remove_tree
from schemas.vocabulary import STRONG_IDENTIFIERS, WEAK_IDENTIFIERS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
STRONG, WEAK = STRONG_IDENTIFIERS, WEAK_IDENTIFIERS  # accounts; devices, phones, orders … (schemas/vocabulary.py)
DEFAULT_MAX_LINKS = 1
MAX_ROUNDS = 30


def _upsert_min(lake: Lake, df: "DataFrame", name: str, keys: tuple[str, ...]) -> None:
    """Insert new rows; for known keys keep the earliest ``first_seen``."""
    grouped = df.groupBy(*keys).agg({"first_seen": "min"}).withColumnRenamed("min(first_seen)", "first_seen")
    lake.merge(name, grouped, when="s.first_seen < t.first_seen", update=("first_seen",), rarely=True)


def _upsert_edges(lake: Lake, edges: "DataFrame", run_id: str, shared: "DataFrame", blocks: "DataFrame | None",
                  known: datetime) -> None:
    """Insert new links with their first evidence; for known ones keep the earliest evidence. A new link with an end
    already shared, or between a blocked pair, is inserted ended at ``known`` with its reason, as the run would end
    it afterwards (``identity_history``): the links table is not rewritten for it."""
    from pyspark.sql import functions as F

    order = F.expr(_evidence_order("first_seen", "evidence_table", "evidence_key"))
    first = edges.withColumn("_order", order).groupBy("a", "b", "via").agg(F.struct(
        *[F.min_by(c, "_order").alias(c) for c in ("first_seen", "evidence_table", "evidence_key")]).alias("m"))
    first = history.end_reasons(first, shared, blocks)
    lake.merge("silver.identity_edges", first.select(
        "a", "b", "via", "m.first_seen", "m.evidence_table", "m.evidence_key", F.lit(run_id).alias("run_id"),
        F.when(F.col("reason").isNotNull(), F.lit(known).cast("timestamp")).alias("valid_to"),
        F.col("reason").alias("end_reason")),
        when="s.first_seen < t.first_seen", update=("first_seen", "evidence_table", "evidence_key"), rarely=True)


def _evidence_order(time: str, table: str, key: str) -> str:
    """SQL: a text that sorts as (time, table, key) do, each null after every value: a link's first evidence is
    the row with the least. The least of a struct took 2.8-3.1 s over the 721,870 links of 1.1M events, the row with
    the least text 0.7 s, with the same evidence for every link. A time is in the years silver keeps (1900-2200):
    its microseconds from 1900 are positive, in 19 digits; a table name ends with chr(0), below any character."""
    return (f"concat(CASE WHEN {time} IS NULL THEN '1' ELSE concat('0', lpad(CAST(unix_micros({time}) + "
            f"{_MICROS_BEFORE_1970} AS STRING), 19, '0')) END, "
            f"CASE WHEN {table} IS NULL THEN '1' ELSE concat('0', {table}, chr(0)) END, "
            f"CASE WHEN {key} IS NULL THEN '1' ELSE concat('0', {key}) END)")


_MICROS_BEFORE_1970 = 2208988800 * 10**6  # from 1900-01-01 to 1970-01-01: unix_micros of 1900 is minus this


def shared_identifiers(edges: "DataFrame", max_links: int) -> "DataFrame":
    """Weak identifiers (a device, a phone …) linked to more than ``max_links`` distinct accounts of one kind
    (users, emails or CRM ids): a kiosk or a family device; and a handle linked to more than ``max_links``
    platform accounts (a handle renamed and taken by someone else). Pure."""
    from pyspark.sql import functions as F

    kind = "substring_index({}, ':', 1)"
    both = edges.selectExpr("a AS identifier", "b AS other").unionByName(edges.selectExpr("b AS identifier", "a AS other"))
    weak, strong = in_list(WEAK), in_list(STRONG)
    # a handle names one account per platform: one that links two platform accounts was renamed and reused
    per_kind = (both.where(f"({kind.format('identifier')} IN ({weak}) AND {kind.format('other')} IN ({strong})) OR "
                           f"({kind.format('identifier')} = 'handle' AND {kind.format('other')} = 'social')")
                .groupBy("identifier", F.expr(kind.format("other")).alias("kind"))
                .agg(F.countDistinct("other").alias("linked")))
    return (per_kind.groupBy("identifier").agg(F.max("linked").alias("linked"))
            .where(f"linked > {max_links}"))


def components(nodes: "DataFrame", edges: "DataFrame", checkpoint) -> "DataFrame":
    """(identifier, label): label is the smallest ``rank`` in the identifier's connected component.

    ``nodes`` has (identifier, rank) with ranks unique; label propagation runs until nothing changes.
    """
    from pyspark.sql import functions as F

    pairs = edges.selectExpr("a AS src", "b AS dst").unionByName(edges.selectExpr("b AS src", "a AS dst"))
    pairs = checkpoint(pairs, "pairs")
    labels = checkpoint(nodes.selectExpr("identifier", "rank AS label"), "labels-0")
    for round_ in range(1, MAX_ROUNDS + 1):
        offered = pairs.join(labels, pairs.src == labels.identifier).select(
            F.col("dst").alias("identifier"), "label", F.lit(None).cast("string").alias("_was"))
        # whether a label moved is found in the same aggregation (the identifier's own label beside the least
        # offered), and counted from the round's staged files: a join of each round with the one before cost as
        # much as a round (0.1 of 0.45 s at 1.1M events, 8 rounds)
        new = (labels.select("identifier", "label", F.col("label").alias("_was")).unionByName(offered)
               .groupBy("identifier").agg(F.min("label").alias("label"), F.min("_was").alias("_was"))
               .select("identifier", "label", F.expr("coalesce(label <> _was, false)").alias("_moved")))
        new = checkpoint(new, f"labels-{round_}")
        changed = new.where("_moved").count()
        labels = new.select("identifier", "label")
        if changed == 0:
            return labels
    raise RuntimeError(f"identity components did not settle in {MAX_ROUNDS} rounds; check for a link chain that long")


def contracted_components(nodes: "DataFrame", edges: "DataFrame", previous: "DataFrame", checkpoint) -> "DataFrame":
    """``components`` of a graph that only grew since ``previous`` (the identity map before): links and identifiers
    were added, none stopped joining. Every previous customer's identifiers are then still joined, so each customer
    is one node (with the least rank of its identifiers) and each identifier new to the map another; labels
    propagate over the links between those nodes only, which are few and short (the new links), instead of through
    every identifier of a long-lived customer. Each identifier takes its node's label: the least rank of the
    component it is in, as ``components`` gives over the whole graph."""
    from pyspark.sql import functions as F

    node = F.coalesce(F.concat(F.lit("k|"), F.col("customer_key")), F.concat(F.lit("i|"), F.col("identifier")))
    members = checkpoint(nodes.join(previous.select("identifier", "customer_key"), "identifier", "left")
                         .select("identifier", "rank", node.alias("node")), "members")
    ends = members.select("identifier", "node")
    links = (edges.join(ends.select(F.col("identifier").alias("a"), F.col("node").alias("_na")), "a")
             .join(ends.select(F.col("identifier").alias("b"), F.col("node").alias("_nb")), "b")
             .where("_na <> _nb").select(F.col("_na").alias("a"), F.col("_nb").alias("b")).distinct())
    labels = components(members.groupBy(F.col("node").alias("identifier")).agg(F.min("rank").alias("rank")), links,
                        checkpoint)
    return members.join(labels.withColumnRenamed("identifier", "node"), "node").select("identifier", "label")


KEY_LENGTH = 19  # ck_ and 16 hex digits
NO_KEY = "~" * KEY_LENGTH  # in the rank of an identifier that was no anchor (sorts after every key)
RANK_PREFIX = 18 + KEY_LENGTH + 1  # "0|" or "1|", 15 digits of milliseconds, "|", a key or NO_KEY, "|": the identifier


def key_of(label_sql: str) -> str:
    """The customer key of a component from its label: the anchor's own key when it was an anchor before (keys stay
    whatever happens to the identifier's hash), else made from the anchor identifier that ends the rank."""
    prior = f"substr({label_sql}, 19, {KEY_LENGTH})"
    return (f"CASE WHEN {prior} <> '{NO_KEY}' THEN {prior} "
            f"ELSE concat('ck_', substr(sha2(substr({label_sql}, {RANK_PREFIX + 1}), 256), 1, 16)) END")


@dataclass
class IdentityReport(Report):
    recomputed: int | None = None  # identifiers whose components were recomputed (None: all of them)
    contracted: bool = False  # over the touched customers as nodes and the new links (``contracted_components``)
    identifiers: int = 0
    customers: int = 0
    merges: int = 0
    splits: int = 0
    shared: int = 0
    known_at: str | None = None  # the known time of what this run changed (silver.identity_versions)


def run(spark: "SparkSession", cfg: Config, window: Window, *, run_id: str | None = None,
        recompute: list[str] | None = None, change: str | None = None, why: str | None = None) -> IdentityReport:
    """Fold the window's silver rows into the identity graph and rebuild ``silver.identity_map``.

    ``recompute``: identifiers whose components are recomputed even if no new link touches them (after a block
    is made or lifted), the change named ``change`` (unmerge, unblock) for ``why``; known from now."""
    lake = Lake(cfg, spark)
    report = IdentityReport("refine.identity", run_id or str(RunId.new("refine-identity")), window)
    try:
        _run(lake, window, report, cfg.identity_max_links, recompute, change, why)
    finally:
        remove_tree(cfg, lake.staging(report.run_id))
    return report


def _run(lake: Lake, window: Window, report: IdentityReport, max_links: int, recompute: list[str] | None = None,
         change: str | None = None, why: str | None = None) -> None:
    from pyspark.sql import functions as F

    history.migrate(lake)

    def checkpoint(df: "DataFrame", name: str) -> "DataFrame":
        return lake.checkpoint(df, report.run_id, name)

    # a person's change (recompute) reads no data: it recomputes the components it names
    new_edges, node_rows = ([], []) if recompute else identity_links.extract(lake, window)
    if not new_edges and not recompute:
        return
    edges = lake.frame("silver.identity_edges", []).select("a", "b", "via", "first_seen", "evidence_table",
                                                             "evidence_key")
    for e in new_edges:
        edges = edges.unionByName(e)
    edges = checkpoint(edges, "new-edges")
    ends = edges.selectExpr("a AS identifier", "first_seen").unionByName(edges.selectExpr("b AS identifier", "first_seen"))
    for n in node_rows:
        ends = ends.unionByName(n)
    previous = lake.read("silver.identity_map") if lake.exists("silver.identity_map") else None
    # what this run changes in the graph (before the upserts): links and identifiers new, or seen earlier than known
    changed = None if previous is None else _changed_identifiers(lake, edges, ends)
    if changed is not None and recompute:
        changed = changed.unionByName(lake.frame("silver.identity_nodes", [(i, None) for i in recompute]).select("identifier"))
    changed = None if changed is None else checkpoint(changed, "changed")
    if recompute:  # a person's change: known from now
        known = history.known_time(lake, None)
    else:  # known from the window's end, or the newest evidence the run read
        newest = ends.agg(F.max("first_seen").alias("m")).first().m if window.end is None else None
        known = history.known_time(lake, window.end or newest)
    report.known_at = known.isoformat()
    # shared identifiers over the links stored and those arriving (what the links table holds after the upsert)
    links = edges.select("a", "b")
    if lake.exists("silver.identity_edges"):
        links = lake.read("silver.identity_edges").select("a", "b").unionByName(links)
    shared = checkpoint(shared_identifiers(links, max_links), "shared")
    blocks = history.active_blocks(lake)
    if blocks is not None:
        blocks = checkpoint(blocks, "blocks")
    _upsert_edges(lake, edges, report.run_id, shared, blocks, known)
    _upsert_min(lake, ends, "silver.identity_nodes", ("identifier",))

    all_edges = lake.read("silver.identity_edges")
    usable = history.without_blocked(all_edges.join(shared.withColumnRenamed("identifier", "a"), "a", "left_anti")
                                     .join(shared.withColumnRenamed("identifier", "b"), "b", "left_anti"), blocks)
    nodes = lake.read("silver.identity_nodes")
    affected, grown = None, False
    if changed is not None:
        # an identifier that became shared (or stopped being) can split its component: it is changed too
        flips = (previous.where("is_shared").select("identifier").exceptAll(shared.select("identifier"))
                 .unionByName(shared.select("identifier").exceptAll(previous.where("is_shared").select("identifier"))))
        affected = checkpoint(_affected(previous, changed.unionByName(flips)), "affected")
        edges_in = usable.join(affected.withColumnRenamed("identifier", "a"), "a", "left_semi")
        # every usable link of an affected identifier stays among affected ones (components only grow when links
        # are added); if one does not, recompute everything rather than trust the shortcut
        if edges_in.join(affected.withColumnRenamed("identifier", "b"), "b", "left_anti").limit(1).count():
            log.warning("identity: a link leaves the affected components; recomputing every component")
            affected = None
        else:
            usable, nodes = edges_in, nodes.join(affected, "identifier", "left_semi")
            report.recomputed = affected.count()
            # nothing stopped joining anything (no identifier became or stopped being shared, no block on an
            # affected identifier, no person's change): the components only grew (``contracted_components``)
            grown = not recompute and not flips.limit(1).count() and (blocks is None or not blocks.join(
                affected, (blocks.a == affected.identifier) | (blocks.b == affected.identifier), "left_semi")
                .limit(1).count())
            report.contracted = grown
    anchors = (previous.where("is_anchor").select("identifier", F.col("customer_key").alias("_prior"))
               if previous is not None else None)
    ranked = (nodes.join(anchors, "identifier", "left") if anchors is not None
              else nodes.withColumn("_prior", F.lit(None).cast("string")))
    # rank: prior anchors first, then earliest arrival, then a prior anchor's key (stable whatever its identifier's
    # hash: a key rotation changes no tie), then the identifier itself, which closes the string
    ranked = ranked.select("identifier", "first_seen", F.concat(
        F.when(F.col("_prior").isNotNull(), "0").otherwise("1"), F.lit("|"),
        F.lpad(F.unix_millis("first_seen").cast("string"), 15, "0"), F.lit("|"),
        F.coalesce("_prior", F.lit(NO_KEY)), F.lit("|"), "identifier").alias("rank"))
    labels = (contracted_components(ranked.select("identifier", "rank"), usable, previous, checkpoint) if grown
              else components(ranked.select("identifier", "rank"), usable, checkpoint))
    identity = (ranked.join(labels, "identifier")
                .join(shared.select("identifier", F.lit(True).alias("_shared")), "identifier", "left")
                .select("identifier", F.expr("substring_index(identifier, ':', 1)").alias("id_type"),
                        F.expr(key_of("label")).alias("customer_key"), "first_seen",
                        (F.col("rank") == F.col("label")).alias("is_anchor"),
                        F.coalesce("_shared", F.lit(False)).alias("is_shared")))
    if affected is not None:  # the components nothing touched keep their rows: the same labels a full run gives
        identity = previous.join(affected, "identifier", "left_anti").unionByName(identity)
    identity = checkpoint(identity, "identity")
    lake.ensure("silver.identity_events")  # exists, even before the first merge
    lake.ensure("silver.identity_blocks")
    counts = history.record(lake, previous, identity, affected, all_edges, shared, blocks, known, report.run_id,
                            change, why)
    report.merges, report.splits = counts["merges"], counts["splits"]
    lake.snapshot("silver.identity_map", identity)
    lake.snapshot("silver.identity_shared", shared.withColumn("reported_at", F.lit(known).cast("timestamp")))
    counts = identity.selectExpr("count(*) AS n", "count(DISTINCT customer_key) AS k").first()
    report.identifiers, report.customers, report.shared = counts.n, counts.k, shared.count()


def _changed_identifiers(lake: Lake, edges: "DataFrame", ends: "DataFrame") -> "DataFrame":
    """Identifiers at the ends of links that are new or arrived earlier than known, and identifiers new or seen
    earlier than known (a re-landed CRM extract changes nothing)."""
    from pyspark.sql import functions as F

    fresh_edges = (edges.groupBy("a", "b", "via").agg(F.min("first_seen").alias("first_seen"))
                   .join(lake.read("silver.identity_edges").select("a", "b", "via", F.col("first_seen").alias("known")),
                         ["a", "b", "via"], "left").where("known IS NULL OR first_seen < known"))
    fresh_nodes = (ends.groupBy("identifier").agg(F.min("first_seen").alias("first_seen"))
                   .join(lake.read("silver.identity_nodes").select("identifier", F.col("first_seen").alias("known")),
                         "identifier", "left").where("known IS NULL OR first_seen < known"))
    return (fresh_edges.selectExpr("a AS identifier").unionByName(fresh_edges.selectExpr("b AS identifier"))
            .unionByName(fresh_nodes.select("identifier")).distinct())


def _affected(previous: "DataFrame", changed: "DataFrame") -> "DataFrame":
    """Every identifier of a component a changed identifier was in, and the changed ones themselves: the part of
    the graph whose components can differ from the previous map's."""
    keys = previous.join(changed, "identifier", "left_semi").select("customer_key").distinct()
    return (previous.join(keys, "customer_key", "left_semi").select("identifier")
            .unionByName(changed.select("identifier")).distinct())
