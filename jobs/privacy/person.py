"""Who a privacy request is about: the identifiers given, hashed, resolved through the identity graph.

A request names a person by email, phone, social handle (``PLATFORM:HANDLE``) or customer key. Emails,
phones and handles are hashed at once, by the engine, with the lake's key, exactly as silver hashes them;
the raw values go no further. From those, the identity map gives the customer key(s) and every identifier
linked to them: devices, user ids, handles, orders, the CRM id.

Shared identifiers (a store kiosk, a family computer) belong to nobody and are not erased with their last
user: they are listed as kept. The events on them that belong to the person (signed in as them) are
erased, because those are attributed to the person's user id, not to the device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake, in_list
from jobs.pii.keyring import hmac_sql
from jobs.silver.common import phone_sql
from schemas.vocabulary import PLATFORMS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class RequestError(ValueError):
    """A request that names nobody, or names them wrongly; the message says how to write it."""


@dataclass
class Person:
    keys: list[str] = field(default_factory=list)  # customer keys
    identifiers: list[str] = field(default_factory=list)  # type:value, as silver.identity_map names them
    shared: list[str] = field(default_factory=list)  # shared identifiers linked to them, kept

    def of_type(self, kind: str) -> list[str]:
        return sorted(i.split(":", 1)[1] for i in self.identifiers if i.startswith(f"{kind}:"))


def hash_identifiers(spark: "SparkSession", cfg: Config, emails=(), phones=(), socials=(), keys=()) -> list[str]:
    """Typed, hashed identifiers (email:<hmac>, phone:<hmac>, handle:<hmac>) and customer keys, hashed by the engine
    from values passed as data. The raw values are not kept."""
    from pyspark.sql import functions as F

    from jobs.pii.keychain import check_chain

    check_chain(cfg)
    key = cfg.pii_keys()
    rows = [("email", e, None) for e in emails] + [("phone", p, None) for p in phones]
    for s in socials:
        platform, sep, handle = s.partition(":")
        if not sep or platform.lower() not in PLATFORMS or not handle.strip():
            raise RequestError(f"--social {s!r}: write PLATFORM:HANDLE, with a platform among {', '.join(PLATFORMS)}")
        rows.append(("handle", handle.strip().lstrip("@"), platform.lower()))
    out = []
    for k in keys:
        if not k.startswith("ck_") or len(k) != 19:
            raise RequestError(f"--customer-key {k!r}: a customer key is ck_ followed by 16 hex digits")
        out.append(f"key:{k}")
    if rows:
        df = spark.createDataFrame(rows, "kind string, v string, platform string")
        hashed = df.select("kind", F.expr(f"""CASE kind
            WHEN 'email' THEN {hmac_sql('v', key)}
            WHEN 'phone' THEN {hmac_sql(phone_sql('v'), key)}
            ELSE {hmac_sql("concat(platform, ':', v)", key)} END""").alias("h"))
        out += [f"{r.kind}:{r.h}" for r in hashed.collect() if r.h]  # a handful of hashes
    if not out:
        raise RequestError("name the person: --email, --phone, --social PLATFORM:HANDLE or --customer-key")
    return sorted(set(out))


def resolve(spark: "SparkSession", cfg: Config, identifiers: list[str]) -> Person:
    """The customer(s) the identifiers name, their identifiers, and the shared identifiers linked to them."""
    from pyspark.sql import functions as F

    lake = Lake(cfg, spark)
    keys = {i[4:] for i in identifiers if i.startswith("key:")}
    given = [i for i in identifiers if not i.startswith("key:")]
    person = Person()
    if not lake.exists("silver.identity_map"):
        person.keys, person.identifiers = sorted(keys), sorted(given)
        return person
    im = lake.read("silver.identity_map")
    if given:  # listings: a person has tens of identifiers
        keys |= {r.customer_key for r in im.where(f"identifier IN ({in_list(given)}) AND NOT is_shared")
                 .select("customer_key").distinct().collect()}
    mine = im.where(F.col("customer_key").isin(sorted(keys)) & ~F.col("is_shared")) if keys else im.limit(0)
    ids = {r.identifier for r in mine.select("identifier").collect()} | set(given)  # theirs: tens
    person.keys, person.identifiers = sorted(keys), sorted(ids)
    if lake.exists("silver.identity_edges") and ids:
        # the shared identifiers linked to theirs, matched on the engine: only those few come back
        shared = im.where("is_shared").select("identifier")
        sa, sb = shared.withColumnRenamed("identifier", "sa"), shared.withColumnRenamed("identifier", "sb")
        mine_list = sorted(ids)
        linked = (lake.read("silver.identity_edges").where(F.col("a").isin(mine_list) | F.col("b").isin(mine_list))
                  .join(sa, F.col("a") == F.col("sa"), "left").join(sb, F.col("b") == F.col("sb"), "left")
                  .where((F.col("a").isin(mine_list) & F.col("sb").isNotNull())
                         | (F.col("b").isin(mine_list) & F.col("sa").isNotNull()))
                  .select(F.when(F.col("sa").isNotNull(), F.col("a")).otherwise(F.col("b")).alias("shared")))
        person.shared = sorted({r.shared for r in linked.distinct().collect()})
    return person
