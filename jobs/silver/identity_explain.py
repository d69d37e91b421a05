"""Why is this one customer: the links that join an identifier (or every identifier of a key) to the key's anchor,
each with its type, when it became valid and the first row that showed it — now, or as known at a past time.

The argument is data, never SQL text: a customer key, an email (matched by its keyed hash, computed by the engine)
or an identifier as ``silver.identity_map`` names it (``user:U1``, ``anon:…``, ``email:<hash>``).
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake, sql_literal
from jobs.silver import identity_history as history

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

KEY = re.compile(r"^ck_[0-9a-f]{16}$")
EMAIL = re.compile(r"^[^@\s:]{1,200}@[^@\s]{1,200}\.[^@\s]{2,63}$")
IDENTIFIER = re.compile(r"^(anon|user|email|phone|crm|social|handle|shop|order):.+$")


class UnknownIdentity(ValueError):
    """The argument names no identifier or customer (now, or at the time asked)."""


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    via: str
    valid_from: datetime
    evidence_table: str | None
    evidence_key: str | None

    def other(self, end: str) -> str:
        return self.b if end == self.a else self.a


@dataclass
class Explanation:
    customer_key: str
    anchor: str
    identifiers: list[str]
    as_of: datetime | None = None
    asked: str | None = None  # the identifier asked about (None: the key)
    shared: bool = False  # the identifier asked about is shared: it belongs to nobody's timeline
    parent: dict[str, Link] = field(default_factory=dict)  # identifier -> the link towards the anchor
    links: list[Link] = field(default_factory=list)  # every joining link among the identifiers

    def path(self, identifier: str) -> list[Link]:
        """The links from ``identifier`` to the anchor, in order."""
        out, at = [], identifier
        while at != self.anchor and at in self.parent:
            link = self.parent[at]
            out.append(link)
            at = link.other(at)
        return out


def resolve(spark: "SparkSession", cfg: Config, who: str) -> str:
    """An identifier or customer key from what a person typed (an email is hashed by the engine)."""
    from pyspark.sql import functions as F

    from jobs.pii.keyring import hmac_sql

    who = who.strip()
    if KEY.match(who) or IDENTIFIER.match(who):
        return who
    if EMAIL.match(who):
        email = spark.createDataFrame([(who,)], "e string")
        return "email:" + email.select(F.expr(hmac_sql("e", cfg.pii_keys())).alias("h")).first().h
    raise UnknownIdentity(f"{who!r} is not a customer key (ck_ and 16 hex digits), an email or an identifier "
                          "(type:value, as silver.identity_map names it)")


def _map(lake: Lake, as_of: datetime | None) -> "DataFrame":
    if as_of is None:
        return lake.read_or_empty("silver.identity_map").select("identifier", "customer_key", "is_shared", "is_anchor")
    return history.as_of(lake, as_of)


def explain(spark: "SparkSession", cfg: Config, who: str, as_of: datetime | None = None) -> Explanation:
    """The customer ``who`` belongs to (now, or as known at ``as_of``) and how every identifier joins its anchor."""
    from pyspark.sql import functions as F

    lake = Lake(cfg, spark)
    asked = resolve(spark, cfg, who)
    ids = _map(lake, as_of)
    when = "" if as_of is None else f" as of {as_of.isoformat()}"
    if KEY.match(asked):
        key, identifier, shared = asked, None, False
    else:
        row = ids.where(F.col("identifier") == F.lit(asked)).select("customer_key", "is_shared").first()
        if row is None:
            raise UnknownIdentity(f"no identifier {asked}{when}")
        key, identifier, shared = row.customer_key, asked, row.is_shared
    component = ids.where(F.col("customer_key") == F.lit(key)).collect()  # one customer's identifiers: a listing
    if not component:
        raise UnknownIdentity(f"no customer {key}{when}")
    members = {r.identifier for r in component}
    members_df = spark.createDataFrame([(i,) for i in sorted(members)], "identifier string")
    edges = lake.read_or_empty("silver.identity_edges")
    edges = (edges.join(members_df.withColumnRenamed("identifier", "a"), "a", "left_semi")
             .join(members_df.withColumnRenamed("identifier", "b"), "b", "left_semi"))
    if as_of is None:
        edges = edges.where("valid_to IS NULL")
    else:  # valid then: arrived, no block held, neither end shared
        edges = history.without_blocked(edges.where(f"first_seen <= {sql_literal(as_of)}"),
                                        history.active_blocks(lake, as_of))
        shared_then = sorted(r.identifier for r in component if r.is_shared)
        if shared_then:
            edges = edges.where(~F.col("a").isin(shared_then) & ~F.col("b").isin(shared_then))
    links = [Link(r.a, r.b, r.via, r.first_seen, r.evidence_table, r.evidence_key)  # one customer's links: a listing
             for r in edges.orderBy("first_seen", "a", "b", "via").collect()]
    anchor = _anchor(lake, component, key)
    return Explanation(key, anchor, sorted(members), as_of, identifier, bool(shared), _tree(anchor, links), links)


def _anchor(lake: Lake, component: list, key: str) -> str:
    """The identifier the key comes from: flagged in the map, else the one whose hash is the key, else the earliest."""
    flagged = [r.identifier for r in component if getattr(r, "is_anchor", False)]
    if flagged:
        return flagged[0]
    import hashlib

    for r in component:
        if "ck_" + hashlib.sha256(r.identifier.encode()).hexdigest()[:16] == key:
            return r.identifier
    names = sorted(r.identifier for r in component)
    nodes = lake.read("silver.identity_nodes")
    first = {r.identifier: r.first_seen for r in nodes.where(nodes.identifier.isin(names)).collect()}  # a listing
    return min(names, key=lambda i: (first.get(i) is None, first.get(i), i))


def _tree(anchor: str, links: list[Link]) -> dict[str, Link]:
    """Breadth first from the anchor over the links, earliest links first: each identifier's link towards it."""
    around: dict[str, list[Link]] = {}
    for link in links:
        around.setdefault(link.a, []).append(link)
        around.setdefault(link.b, []).append(link)
    parent: dict[str, Link] = {}
    queue, seen = deque([anchor]), {anchor}
    while queue:
        at = queue.popleft()
        for link in around.get(at, []):
            nxt = link.other(at)
            if nxt not in seen:
                seen.add(nxt)
                parent[nxt] = link
                queue.append(nxt)
    return parent


def cut(anchor: str, identifier: str, links: list[Link]) -> tuple[set[str], list[Link]]:
    """What leaves with ``identifier`` when it is split off: itself and what only it connects to the anchor; and
    the links between that part and the rest (the ones to block)."""
    kept = {anchor}
    queue = deque([anchor])
    around: dict[str, list[Link]] = {}
    for link in links:
        around.setdefault(link.a, []).append(link)
        around.setdefault(link.b, []).append(link)
    while queue:
        at = queue.popleft()
        for link in around.get(at, []):
            nxt = link.other(at)
            if nxt != identifier and nxt not in kept:
                kept.add(nxt)
                queue.append(nxt)
    ends = {link.a for link in links} | {link.b for link in links} | {identifier}
    leaving = ends - kept
    crossing = [link for link in links if (link.a in leaving) != (link.b in leaving)]
    return leaving, crossing
