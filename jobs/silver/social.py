"""Silver social: bronze platform events → ``silver/social_interactions``, one model for all platforms.

Contract
- Key: (``platform``, ``event_id``). Exact duplicates dropped; same key with other
  content quarantined as ``id_conflict``.
- ``interaction_type`` is the conformed vocabulary of ``schemas.social``; a platform or
  an interaction name not in that mapping is quarantined, never guessed.
- No raw PII: the actor's platform id and handle are HMAC-hashed; comment text is
  reduced to its length.
- ``campaign_id``/``message_id`` come from the campaign posts reference when the target
  is one of the retailer's campaign posts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.silver.common import FUTURE_TOLERANCE_SECONDS, first_failure, hmac_sql
from schemas import social as schema

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

TABLE = "social_interactions"
KEYS = ("platform", "event_id")


def _mapping_sql() -> str:
    pairs = ", ".join(f"'{p}:{native}', '{conformed}'" for p, m in schema.INTERACTIONS.items() for native, conformed in m.items())
    return f"map({pairs})"


def parse(bronze: "DataFrame", pii_key: str, late_days: int, posts: "DataFrame | None" = None) -> "DataFrame":
    """Typed, conformed columns plus ``reason``/``detail``, ``fingerprint`` and ``arrival_ts``. Pure."""
    from pyspark.sql import functions as F

    df = bronze.withColumn("j", F.from_json("value", schema.EVENT))
    occurred, collected = "try_cast(j.occurred_at AS TIMESTAMP)", "try_cast(j.collected_at AS TIMESTAMP)"
    platforms = ", ".join(f"'{p}'" for p in schema.PLATFORMS)
    conformed = f"element_at({_mapping_sql()}, concat(lower(j.platform), ':', lower(j.interaction)))"
    reason, detail = first_failure([
        ("missing_ids", "coalesce(trim(j.actor.id), '') = '' OR coalesce(trim(j.event_id), '') = ''",
         "CASE WHEN coalesce(trim(j.event_id), '') = '' THEN 'event_id is missing' ELSE 'actor.id is missing' END"),
        ("wrong_types", "get_json_object(value, '$.rating') IS NOT NULL AND j.rating IS NULL",
         "concat('rating is not a whole number: ', get_json_object(value, '$.rating'))"),
        ("bad_timestamp", f"{occurred} IS NULL OR {collected} IS NULL",
         "concat('unparseable or missing time: occurred_at=', coalesce(j.occurred_at, 'null'), ', collected_at=', "
         "coalesce(j.collected_at, 'null'))"),
        ("unknown_platform", f"lower(j.platform) NOT IN ({platforms}) OR j.platform IS NULL",
         "concat('platform ', coalesce(j.platform, 'null'), ' is not one Rapport knows; add it to schemas/social.py')"),
        ("unknown_interaction", f"{conformed} IS NULL",
         "concat('interaction ', coalesce(j.interaction, 'null'), ' is not known for ', j.platform)"),
        ("wrong_types", "j.rating IS NOT NULL AND (j.rating < 1 OR j.rating > 5)",
         "concat('rating ', cast(j.rating AS STRING), ' is outside 1..5')"),
        ("future_timestamp", f"{occurred} > {collected} + INTERVAL {FUTURE_TOLERANCE_SECONDS} SECONDS",
         "concat('occurred_at ', j.occurred_at, ' is after collection ', j.collected_at)"),
        ("too_late", f"{occurred} < {collected} - INTERVAL {late_days} DAYS",
         f"concat('collected more than {late_days} days after it happened (RAPPORT_LATE_DAYS)')"),
    ])
    out = df.select(
        "value", "source_file", "line_number", "landing_dt", "landing_hour", "ingested_at",
        reason.alias("reason"), detail.alias("detail"),
        F.expr("lower(j.platform)").alias("platform"),
        F.expr("j.event_id").alias("event_id"),
        F.expr("j.interaction").alias("interaction"),
        F.expr(conformed).alias("interaction_type"),
        F.expr(hmac_sql("concat(lower(j.platform), ':', j.actor.id)", pii_key)).alias("actor_id_hash"),
        F.expr(hmac_sql("concat(lower(j.platform), ':', regexp_replace(j.actor.handle, '^@', ''))", pii_key)).alias("actor_handle_hash"),
        F.expr("j.target.type").alias("target_type"),
        F.expr("j.target.id").alias("target_id"),
        F.expr("j.target.product_id").alias("product_id"),
        F.expr("length(j.text)").alias("text_length"),
        F.expr("j.rating").alias("rating"),
        F.expr(occurred).alias("occurred_at"),
        F.expr(f"to_date({occurred})").alias("event_date"),
        F.expr(collected).alias("collected_at"),
        F.expr(collected).alias("arrival_ts"),
        F.expr("sha2(value, 256)").alias("fingerprint"),
    )
    if posts is None:
        return out.withColumn("campaign_id", F.lit(None).cast("string")).withColumn("message_id", F.lit(None).cast("string"))
    p = posts.select(F.col("platform").alias("_pp"), F.col("post_id").alias("_pid"), "campaign_id", "message_id")
    joined = out.join(p, (out.platform == p._pp) & (out.target_id == p._pid) & (out.target_type == "post"), "left")
    return joined.drop("_pp", "_pid")
