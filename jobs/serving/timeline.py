"""One customer's timeline by customer key or email, the argument taken as data, never as SQL text."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

KEY = re.compile(r"^ck_[0-9a-f]{16}$")
EMAIL = re.compile(r"^[^@\s]{1,200}@[^@\s]{1,200}\.[^@\s]{2,63}$")


class NotACustomer(ValueError):
    """The argument is neither a customer key nor an email, or names nobody."""


def customer_key(spark: "SparkSession", cfg: Config, who: str) -> str:
    """The customer key a key or an email names (the email matched by its keyed hash)."""
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
    row = (lake.read_or_empty("silver.identity_map").where(F.col("identifier") == F.lit(f"email:{hashed}"))
           .select("customer_key").first())
    if row is None:
        raise NotACustomer(f"no customer has the email {who} (it is matched by its hash, case-insensitive)")
    return row.customer_key


def profile_and_events(spark: "SparkSession", cfg: Config, key: str) -> tuple[object, "DataFrame"]:
    """The customer's relationship row and their timeline rows in order."""
    from pyspark.sql import functions as F

    lake = Lake(cfg, spark)
    profile = lake.read_or_empty("gold.customer_relationship").where(F.col("customer_key") == F.lit(key)).first()
    if profile is None:
        raise NotACustomer(f"no customer {key!r} in gold.customer_relationship")
    events = lake.read("gold.customer_timeline").where(F.col("customer_key") == F.lit(key)).orderBy("seq")
    return profile, events
