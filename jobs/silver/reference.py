"""Silver reference data: the latest landed extract of each reference data set, PII hashed.

``crm_customers`` keeps the CRM id, hashed email/phone and the hashed linked social
accounts (platform id and handle, hashed exactly as ``social_interactions`` hashes its
actors so they join). Each table is replaced by the newest snapshot; rows without their
key are quarantined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.lake import Lake
from jobs.silver.common import first_failure, hmac_sql, quarantine
from schemas import reference as schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TABLES = {"customers": "crm_customers", "products": "products", "campaigns": "campaigns", "campaign_posts": "campaign_posts"}
KEYS = {"customers": ("customer_id",), "products": ("product_id",), "campaigns": ("campaign_id",),
        "campaign_posts": ("platform", "post_id")}


def conform(name: str, parsed: "DataFrame", pii_key: str) -> "DataFrame":
    """Typed rows of one reference data set, PII hashed. Pure."""
    from pyspark.sql import functions as F

    if name == "customers":
        id_hash = hmac_sql("concat(lower(a.platform), ':', a.platform_user_id)", pii_key)
        handle_hash = hmac_sql("concat(lower(a.platform), ':', regexp_replace(a.handle, '^@', ''))", pii_key)
        accounts = (f"transform(j.social_accounts, a -> named_struct('platform', lower(a.platform), "
                    f"'actor_id_hash', {id_hash}, 'actor_handle_hash', {handle_hash}))")
        return parsed.select(
            F.expr("j.customer_id").alias("customer_id"),
            F.expr(hmac_sql("j.email", pii_key)).alias("email_hash"),
            F.expr(hmac_sql("j.phone", pii_key)).alias("phone_hash"),
            F.expr("j.country").alias("country"),
            F.expr("j.loyalty_tier").alias("loyalty_tier"),
            F.expr("try_cast(j.created_at AS TIMESTAMP)").alias("created_at"),
            F.expr(accounts).alias("social_accounts"),
        )
    if name == "campaigns":
        return parsed.select("j.*").withColumn("start_date", F.expr("try_cast(start_date AS DATE)")).withColumn(
            "end_date", F.expr("try_cast(end_date AS DATE)"))
    if name == "campaign_posts":
        return parsed.select("j.*").withColumn("platform", F.lower("platform")).withColumn(
            "published_at", F.expr("try_cast(published_at AS TIMESTAMP)"))
    return parsed.select("j.*")


def run(spark: "SparkSession", lake: Lake, name: str, pii_key: str, run_id: str, now) -> int:
    """Replace ``silver/<table>`` with the newest landed snapshot; returns its row count (0 if none landed)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    path = lake.path("bronze", name)
    if not lake.exists(path):
        return 0
    bronze = lake.read(spark, path)
    latest = bronze.select(F.max(F.concat_ws(" ", "landing_dt", F.lpad(F.col("landing_hour").cast("string"), 2, "0")))
                           .alias("m")).first().m
    snap = bronze.where(F.concat_ws(" ", "landing_dt", F.lpad(F.col("landing_hour").cast("string"), 2, "0")) == latest)
    parsed = snap.withColumn("j", F.from_json("value", schema.SCHEMAS[name]))
    missing = " OR ".join(f"coalesce(trim(cast(j.{k} AS STRING)), '') = ''" for k in KEYS[name])
    reason, detail = first_failure([("missing_ids", missing, f"'{'/'.join(KEYS[name])} is missing'")])
    parsed = parsed.withColumn("reason", reason).withColumn("detail", detail)
    quarantine(spark, lake, name, parsed.where("reason IS NOT NULL"), run_id, now)
    valid = parsed.where("reason IS NULL")
    w = Window.partitionBy(*[F.col(f"j.{k}") for k in KEYS[name]]).orderBy("source_file", "line_number")
    valid = valid.withColumn("_n", F.row_number().over(w)).where("_n = 1")
    conform(name, valid, pii_key).write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(
        lake.path("silver", TABLES[name]))
    return lake.read(spark, lake.path("silver", TABLES[name])).count()
