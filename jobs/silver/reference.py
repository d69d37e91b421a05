"""Silver reference data: the latest landed extract of each reference data set, PII hashed.

``crm_customers`` keeps the CRM id (a keyed hash, unless ``RAPPORT_CRM_IDS=plain`` declares it non-personal), hashed email/phone and the hashed linked social
accounts (platform id and handle, hashed exactly as ``social_interactions`` hashes its
actors so they join). Each table is replaced by the newest snapshot; rows without their
key are quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from jobs.runs.window import Window
from jobs.pii.keyring import crm_id_sql, hmac_all_sql, hmac_sql
from jobs.silver import rules
from jobs.silver.common import first_failure, phone_sql, quarantine
from schemas.rules import RULES
from schemas import reference as schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TABLES = {"customers": "crm_customers", "products": "products", "campaigns": "campaigns", "campaign_posts": "campaign_posts"}
LINEAGE = ("value", "source_file", "line_number", "landing_dt", "landing_hour")
KEYS = {"customers": ("customer_id",), "products": ("product_id",), "campaigns": ("campaign_id",),
        "campaign_posts": ("platform", "post_id")}


def conform(name: str, parsed: "DataFrame", cfg: Config, keep: tuple[str, ...] = ()) -> "DataFrame":
    """Typed rows of one reference data set, PII hashed (CRM ids too, unless RAPPORT_CRM_IDS=plain), with the
    columns ``keep`` of ``parsed`` beside them. Pure."""
    from pyspark.sql import functions as F

    pii_key = cfg.pii_keys()
    if name == "customers":
        # hashed a whole array at a time (a lambda may not call the hash), then put beside each account
        parsed = parsed.withColumn("_ids", F.expr(hmac_all_sql(
            "j.social_accounts", "a", "concat(lower(a.platform), ':', a.platform_user_id)", pii_key))).withColumn(
            "_handles", F.expr(hmac_all_sql(
                "j.social_accounts", "a", "concat(lower(a.platform), ':', regexp_replace(a.handle, '^@', ''))", pii_key)))
        accounts = ("transform(j.social_accounts, (a, i) -> named_struct('platform', lower(a.platform), "
                    "'actor_id_hash', element_at(_ids, i + 1), 'actor_handle_hash', element_at(_handles, i + 1)))")
        return parsed.select(
            F.expr(crm_id_sql(cfg, "j.customer_id")).alias("customer_id"),
            F.expr(hmac_sql("j.email", pii_key)).alias("email_hash"),
            F.expr(hmac_sql(phone_sql("j.phone"), pii_key)).alias("phone_hash"),
            F.expr("j.country").alias("country"),
            F.expr("j.loyalty_tier").alias("loyalty_tier"),
            F.expr("try_cast(j.created_at AS TIMESTAMP)").alias("created_at"),
            F.expr(accounts).alias("social_accounts"),
            *keep,
        )
    if name == "campaigns":
        return parsed.select("j.*", *keep).withColumn("start_date", F.expr("try_cast(start_date AS DATE)")).withColumn(
            "end_date", F.expr("try_cast(end_date AS DATE)"))
    if name == "campaign_posts":
        return parsed.select("j.*", *keep).withColumn("platform", F.lower("platform")).withColumn(
            "published_at", F.expr("try_cast(published_at AS TIMESTAMP)"))
    return parsed.select("j.*", *keep)


@dataclass
class ReferenceReport(Report):
    rows: dict[str, int] = field(default_factory=dict)  # silver table -> rows of the newest extract


def run(spark: "SparkSession", cfg: Config, window: Window, *, run_id: str | None = None) -> ReferenceReport:
    """Replace each reference table with its newest landed extract (absent extracts are skipped)."""
    lake = Lake(cfg, spark)
    report = ReferenceReport("refine.reference", run_id or str(RunId.new("refine-reference")), window)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    cfg.require_pii_key()
    for name in TABLES:
        if not lake.exists(f"bronze.{name}"):
            continue
        landed = lake.read(f"bronze.{name}").where(window.sql()).limit(1).count()
        if landed or not lake.exists(f"silver.{TABLES[name]}"):  # a new extract, or none refined yet
            report.rows[TABLES[name]] = _refresh(lake, name, report.run_id, now)
    return report


def _refresh(lake: Lake, name: str, run_id: str, now: datetime) -> int:
    """Replace ``silver.<table>`` with the newest landed snapshot; returns its row count."""
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    bronze = lake.read(f"bronze.{name}")
    hour = F.concat_ws(" ", "landing_dt", F.lpad(F.col("landing_hour").cast("string"), 2, "0"))
    latest = bronze.select(F.max(hour).alias("m")).first().m
    if latest is None:
        return 0
    parsed = bronze.where(hour == latest).withColumn("j", F.from_json("value", schema.SCHEMAS[name]))
    missing = " OR ".join(f"coalesce(trim(cast(j.{k} AS STRING)), '') = ''" for k in KEYS[name])
    parsed, reason, detail = first_failure(parsed, [("missing_ids", missing, f"'{'/'.join(KEYS[name])} is missing'")])
    parsed = parsed.withColumn("reason", reason).withColumn("detail", detail).drop("_check_at")
    table = f"silver.{TABLES[name]}"
    rows = conform(name, parsed, lake.cfg, keep=(*LINEAGE, "reason", "detail"))
    if table in RULES:  # the extract's row rules (schemas/rules.py) beside the missing keys: one quarantine write
        rows = rules.apply(rows, table)
    quarantine(lake, name, rows.where("reason IS NOT NULL"), run_id, now)
    w = W.partitionBy(*KEYS[name]).orderBy("source_file", "line_number")  # the first copy of a key
    valid = rows.where("reason IS NULL").withColumn("_n", F.row_number().over(w)).where("_n = 1").drop("_n")
    lake.snapshot(table, valid.drop(*LINEAGE, "reason", "detail"))
    return lake.read(table).count()
