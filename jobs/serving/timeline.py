"""One customer's timeline by customer key or email, the argument taken as data, never as SQL text."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.gold import timeline as gold_timeline
from jobs.silver import identity_history as history

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

KEY = re.compile(r"^ck_[0-9a-f]{16}$")
EMAIL = re.compile(r"^[^@\s]{1,200}@[^@\s]{1,200}\.[^@\s]{2,63}$")


class NotACustomer(ValueError):
    """The argument is neither a customer key nor an email, or names nobody."""


def customer_key(spark: "SparkSession", cfg: Config, who: str, as_of: "datetime | None" = None) -> str:
    """The customer key a key or an email names (the email matched by its keyed hash), now or as known at ``as_of``."""
    from pyspark.sql import functions as F

    from jobs.pii.keyring import hmac_sql

    who = who.strip()
    if KEY.match(who):
        return who
    if not EMAIL.match(who):
        raise NotACustomer(f"{who!r} is neither a customer key (ck_ followed by 16 hex digits) nor an email address")
    lake = Lake(cfg, spark)
    email = spark.createDataFrame([(who,)], "e string")  # the email as data, hashed by the engine
    hashed = email.select(F.expr(hmac_sql("e", cfg.pii_keys())).alias("h")).first().h
    ids = lake.read_or_empty("silver.identity_map") if as_of is None else history.as_of(lake, as_of)
    row = ids.where(F.col("identifier") == F.lit(f"email:{hashed}")).select("customer_key").first()
    if row is None:
        raise NotACustomer(f"no customer has the email {who} (it is matched by its hash, case-insensitive)")
    return row.customer_key


def profile_and_events(spark: "SparkSession", cfg: Config, key: str,
                       as_of: "datetime | None" = None) -> tuple[object, "DataFrame"]:
    """The customer's relationship row and their timeline rows in order, now or as known at ``as_of``."""
    from pyspark.sql import functions as F

    lake = Lake(cfg, spark)
    versions = {} if as_of is None else gold_as_of(lake, as_of)
    when = "" if as_of is None else f" as of {as_of.isoformat()}"
    relationship = (lake.read("gold.customer_relationship", version=versions["gold.customer_relationship"])
                    if versions else lake.read_or_empty("gold.customer_relationship"))
    profile = relationship.where(F.col("customer_key") == F.lit(key)).first()
    if profile is None:
        raise NotACustomer(f"no customer {key!r} in gold.customer_relationship{when}")
    return profile, timeline(lake, as_of, key, versions).orderBy("seq")


def timeline(lake: Lake, as_of: "datetime | None" = None, key: str | None = None,
             versions: dict[str, int] | None = None) -> "DataFrame":
    """``gold.customer_timeline`` now, or as known at ``as_of``: identity as of then (``silver.identity_versions``)
    applied to the interactions the last curate known by then left (``gold_as_of``). With ``key``, one customer's:
    their identifiers are looked up first, then only their interactions are read and numbered."""
    if as_of is None:
        return gold_timeline.read(lake, key)
    versions = gold_as_of(lake, as_of) if versions is None else versions
    return gold_timeline.read(lake, key, identity=history.as_of(lake, as_of),
                              stored=lake.read("gold.interactions", version=versions["gold.interactions"]))


class NotKnownThen(NotACustomer):
    """Gold as of the time asked cannot be read: nothing was curated by then, or its files were vacuumed."""


def gold_as_of(lake: Lake, at: "datetime") -> dict[str, int]:
    """The versions of the gold tables as the last successful curate known by ``at`` left them (``ops.runs``)."""
    import json

    from pyspark.sql import functions as F

    runs = lake.read_or_empty("ops.runs").where("step = 'curate' AND status = 'succeeded'").orderBy(
        F.desc("finished_at")).select("counts").collect()  # one row per curate run: a listing
    best: tuple[str, dict] | None = None
    for r in runs:
        counts = json.loads(r.counts or "{}")
        known, versions = counts.get("known_at"), counts.get("written_versions") or {}
        if (known and "gold.interactions" in versions and datetime.fromisoformat(known) <= at
                and (best is None or known > best[0])):
            best = (known, versions)
    if best is None:
        raise NotKnownThen(f"nothing was curated as of {at.isoformat()} (or only by a release before --as-of)")
    versions = best[1]
    try:
        for name, version in versions.items():
            lake.read(name, version=version).limit(1).count()
    except Exception:
        raise NotKnownThen(
            f"gold as of {at.isoformat()} (curated as of {best[0]}) is no longer readable: its files were vacuumed "
            "(maintenance keeps 7 days of versions; an erasure removes older ones at once). Identity as of then is still "
            "known: "
            "rapport identity explain … --as-of") from None
    return versions
