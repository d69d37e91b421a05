"""Identity quality against the generator's truth (``<landing>/_truth/persons``): false merges and splits.

- **false-merge rate**: customer keys holding identifiers of more than one person, over keys holding any
  person's identifier;
- **split rate**: people whose identifiers are spread over several keys, over people with any identifier in the
  map; split further into *joinable* (an observed link, ``silver.identity_edges``, joins two of their keys:
  the shared-identifier guard kept them apart) and *unlinked* (no observed link joins them: two devices that
  never signed in, which no stitching can join).

The truth's identifiers are those a person can show: devices, user id, CRM id and email (hashed with the
lake's key). Shared identifiers (kiosks, family devices) belong to nobody and are left out. Everything runs on
the engine; a few counts come back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from jobs.lake import Lake
from jobs.pii.keyring import crm_id_sql, hmac_sql
from jobs.storage import remove_tree

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from jobs.config import Config


STAGING_RUN = "bench-identity"


def rates(spark: "SparkSession", cfg: "Config", landing: Path) -> dict:
    from pyspark.sql import functions as F

    lake = Lake(cfg, spark)
    truth = spark.read.json(str(Path(landing) / "_truth" / "persons")).where("person IS NOT NULL")
    ids = truth.select("person", F.explode(F.array_union(
        F.transform("anonymous_ids", lambda a: F.concat(F.lit("anon:"), a)),
        F.array(F.concat(F.lit("user:"), "user_id"), F.concat(F.lit("crm:"), F.expr(crm_id_sql(cfg, "customer_id"))),
                F.concat(F.lit("email:"), F.expr(hmac_sql("email", cfg.pii_keys())))))).alias("identifier")
    ).where("identifier IS NOT NULL")
    owned = ids.join(lake.read("silver.identity_map").where("NOT is_shared").select("identifier", "customer_key"),
                     "identifier")
    try:
        return _rates(lake, lake.checkpoint(owned, STAGING_RUN, "owned"))
    finally:
        remove_tree(cfg, lake.staging(STAGING_RUN))


def _rates(lake: Lake, owned) -> dict:
    from pyspark.sql import functions as F

    keys = owned.groupBy("customer_key").agg(F.countDistinct("person").alias("people"))
    people = owned.groupBy("person").agg(F.countDistinct("customer_key").alias("keys"))
    split = people.where("keys > 1").select("person")
    # a split is joinable when an observed link joins identifiers of the person that ended under different keys
    mine = owned.join(split, "person")
    edges = lake.read("silver.identity_edges").select("a", "b")
    a = mine.select("person", F.col("identifier").alias("a"), F.col("customer_key").alias("ka"))
    b = mine.select(F.col("person").alias("pb"), F.col("identifier").alias("b"), F.col("customer_key").alias("kb"))
    joinable = (edges.join(a, "a").join(b, "b").where("person = pb AND ka <> kb").select("person").distinct().count())
    k = keys.selectExpr("count(*) AS n", "count_if(people > 1) AS merged").first()
    p = people.selectExpr("count(*) AS n", "count_if(keys > 1) AS split").first()
    return {"keys": k.n, "false_merged_keys": k.merged, "false_merge_rate": round(k.merged / k.n, 5) if k.n else None,
            "people": p.n, "split_people": p.split, "split_rate": round(p.split / p.n, 5) if p.n else None,
            "split_joinable": joinable, "split_unlinked": p.split - joinable}
