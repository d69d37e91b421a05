"""A person corrects identity: unmerge (split an identifier off a customer and block the links that joined it) and
unblock. Each change is recorded (``silver.identity_blocks``, ``silver.identity_events``), the identity of the
customers it touches is recomputed as a run of ``refine.identity``, and curate rebuilds their gold rows, so the next
export publishes them. Nothing else is recomputed: the runs cost what the customers touched cost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.pipeline.runner import run_stage, run_step
from jobs.runs.lease import hold
from jobs.runs.run_id import RunId
from jobs.runs.window import Window
from jobs.silver import identity_history as history
from jobs.silver.identity_explain import UnknownIdentity, cut, explain

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


class IdentityChangeRefused(ValueError):
    """The change cannot be made as asked; the message says why and what to do."""


@dataclass
class Change:
    action: str
    customer_key: str
    blocks: list[str] = field(default_factory=list)  # block ids made or lifted
    identifiers: list[str] = field(default_factory=list)  # what left (unmerge) or was joined again (unblock)
    keys_after: dict[str, str] = field(default_factory=dict)  # identifier -> its customer key after
    curated: bool = False
    known_at: datetime | None = None


def _reason(reason: str) -> str:
    if not reason or not reason.strip():
        raise IdentityChangeRefused("say why (--reason): it is kept with the block and shown by identity history")
    return reason.strip()


def _after(spark: "SparkSession", cfg: Config, identifiers: list[str], change: str, why: str, run_id: RunId,
           curate: bool) -> tuple[dict[str, str], bool]:
    """Recompute the identity of ``identifiers``' components, then curate the customers that moved: their keys
    after, and whether curate ran (not when asked not to, nor on a lake never curated)."""
    from pyspark.sql import functions as F

    run_step(spark, cfg, "refine.identity", Window(), str(run_id.child("identity")), recompute=identifiers,
             change=change, why=why)
    lake = Lake(cfg, spark)
    keys = {r.identifier: r.customer_key for r in lake.read("silver.identity_map")
            .where(F.col("identifier").isin(identifiers)).collect()}
    curate = curate and lake.exists("gold.customer_timeline")
    if curate:
        # a window after everything landed: no new rows, only the identities that moved since the last curate
        hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        run_stage(spark, cfg, "curate", Window(hour, hour + timedelta(hours=1)), checks=False,
                  run_id=str(run_id.child("curate")))
    return keys, curate


def unmerge(spark: "SparkSession", cfg: Config, customer_key: str, identifier: str, reason: str, *,
            curate: bool = True) -> Change:
    """Split ``identifier`` (and what only it connects) off ``customer_key``; block the links that joined them.

    The part that stays keeps the key; the part that leaves gets a key of its own. Later runs do not merge them
    again through the blocked links (another, new link still would: a block is on a link, not on two people)."""
    reason = _reason(reason)
    lake = Lake(cfg, spark)
    run_id = RunId.new("identity-unmerge")
    with hold(cfg, f"identity unmerge {run_id}"):
        try:
            now = explain(spark, cfg, customer_key)
        except UnknownIdentity as exc:
            raise IdentityChangeRefused(str(exc)) from None
        if identifier not in now.identifiers:
            raise IdentityChangeRefused(f"{identifier} is not one of {customer_key}'s identifiers now "
                                        f"(rapport identity explain {customer_key} lists them)")
        if identifier == now.anchor:
            raise IdentityChangeRefused(
                f"{identifier} is the identifier {customer_key} is named after: the key stays with it. Unmerge the "
                f"other part instead (rapport identity explain {customer_key} shows how each identifier joins it)")
        leaving, crossing = cut(now.anchor, identifier, now.links)
        if not crossing:
            raise IdentityChangeRefused(f"no link joins {identifier} to the rest of {customer_key}")
        known = history.known_time(lake, None)
        rows = [(history.event_id(min(x.a, x.b), max(x.a, x.b), known), min(x.a, x.b), max(x.a, x.b), customer_key,
                 identifier, reason, known, str(run_id), None, None) for x in crossing]
        lake.merge("silver.identity_blocks", lake.frame("silver.identity_blocks", rows))
        history.write_event(lake, "block", customer_key, identifier, reason, len(crossing), known, str(run_id))
        log.info("unmerge %s from %s: %d identifiers leave, %d links blocked (%d links in the customer)",
                 identifier, customer_key, len(leaving), len(crossing), len(now.links))
        keys, curated = _after(spark, cfg, now.identifiers, "unmerge", reason, run_id, curate)
    return Change("unmerge", customer_key, [r[0] for r in rows], sorted(leaving), keys, curated, known)


def unblock(spark: "SparkSession", cfg: Config, block_id: str, reason: str, *, curate: bool = True) -> Change:
    """Lift a block: its link joins again from now, and the customers it separated are recomputed."""
    from pyspark.sql import functions as F

    reason = _reason(reason)
    lake = Lake(cfg, spark)
    run_id = RunId.new("identity-unblock")
    with hold(cfg, f"identity unblock {run_id}"):
        block = lake.read_or_empty("silver.identity_blocks").where(F.col("block_id") == F.lit(block_id)).first()
        if block is None:
            raise IdentityChangeRefused(f"no block {block_id} (rapport identity blocks lists them)")
        if block.unblocked_at is not None:
            raise IdentityChangeRefused(f"block {block_id} was lifted at {block.unblocked_at} already")
        known = history.known_time(lake, None)
        lake.merge("silver.identity_blocks", lake.read("silver.identity_blocks")
                   .where(F.col("block_id") == F.lit(block_id))
                   .withColumn("unblocked_at", F.lit(known).cast("timestamp"))
                   .withColumn("unblock_reason", F.lit(reason)))
        ids = lake.read("silver.identity_map")
        ends = ids.where(F.col("identifier").isin([block.a, block.b])).select("customer_key").distinct()
        members = sorted(r.identifier for r in  # the two customers' identifiers: a listing
                         ids.join(ends, "customer_key", "left_semi").select("identifier").collect())
        key = block.customer_key  # the customer unmerged: its history tells the block and its lifting
        history.write_event(lake, "unblock", key, block.identifier, reason, 1, known, str(run_id))
        keys, curated = _after(spark, cfg, members, "unblock", reason, run_id, curate)
    return Change("unblock", key, [block_id], members, keys, curated, known)
