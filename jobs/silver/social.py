"""Silver social: bronze platform events → ``silver.social_interactions``, one model for all platforms.

Contract
- Key: (``platform``, ``event_id``). Exact duplicates dropped; same key with other
  content quarantined as ``id_conflict``.
- ``interaction_type`` is the conformed vocabulary of ``schemas.vocabulary``; a platform or
  an interaction name not in that mapping is quarantined, never guessed.
- No raw PII: the actor's platform id and handle are HMAC-hashed; comment text is
  reduced to its length; ids that hold an email become a keyed pseudonym.
- Times are range-checked where they are parsed (``jobs.silver.common.time_checks``).
- Which campaign a post belongs to is decided in gold, from the newest campaign posts extract, so an
  extract that lands after the interactions still attributes them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.sql_text import sql_string
from jobs.pii.keyring import hmac_sql
from jobs.pii.keyring import pseudonym_sql as keyed_pseudonym_sql
from jobs.pii.scrub import pseudonym_sql
from jobs.silver import rules
from jobs.silver.common import first_failure, long_ids, not_object, time_checks
from jobs.silver.platforms import is_webhook_sql, social_json
from schemas import social as schema
from schemas.rules import FUTURE_TOLERANCE_SECONDS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.config import Config

TABLE = "social_interactions"
KEYS = ("platform", "event_id")
# the identifiers of a row, as silver.identity_map names them (what a suppression matches)
IDENTIFIERS = ("concat('social:', actor_id_hash)", "concat('handle:', actor_handle_hash)")


def _conformed_sql(key: str) -> str:
    """SQL: the conformed interaction type of ``key`` (``platform:interaction``), NULL for one not mapped. A simple
    CASE over the pairs: a literal map was built again for every row, and its look-ups cost 1.4-1.9 s of a 3.5 s
    parse of 165k lines."""
    pairs = " ".join(f"WHEN {sql_string(f'{p}:{native}')} THEN {sql_string(conformed)}"
                     for p, m in schema.INTERACTIONS.items() for native, conformed in m.items())
    return f"CASE {key} {pairs} END"


def parse(bronze: "DataFrame", cfg: "Config") -> "DataFrame":
    """Typed, conformed columns plus ``reason``/``detail``, ``fingerprint`` and ``arrival_ts``. Pure."""
    from pyspark.sql import functions as F

    pii_key, late_days, earliest = cfg.pii_keys(), cfg.late_days, cfg.earliest()
    # Meta, X and TikTok webhooks (through the collector) read as the social lines they are (jobs.silver.platforms)
    df = bronze.withColumn("v", social_json("value")).withColumn("j", F.from_json("v", schema.EVENT))
    occurred, collected = "try_cast(j.occurred_at AS TIMESTAMP)", "try_cast(j.collected_at AS TIMESTAMP)"
    platforms = ", ".join(f"'{p}'" for p in schema.PLATFORMS)
    key = "concat(lower(j.platform), ':', lower(j.interaction))"
    # computed once, in a column of its own: a check and an output read it
    df = df.withColumn("_conformed", F.expr(_conformed_sql(key)))
    conformed = "_conformed"
    df, reason, detail = first_failure(df, [
        ("missing_ids", "coalesce(trim(j.actor.id), '') = '' OR coalesce(trim(j.event_id), '') = ''",
         "CASE WHEN coalesce(trim(j.event_id), '') = '' THEN 'event_id is missing' ELSE 'actor.id is missing' END"),
        long_ids("j.event_id", "j.actor.id", "j.actor.handle", "j.target.id", "j.target.product_id"),
        not_object("actor", "v"), not_object("target", "v"),
        ("wrong_types", "get_json_object(v, '$.rating') IS NOT NULL AND j.rating IS NULL",
         "concat('rating is not a whole number: ', substr(get_json_object(v, '$.rating'), 1, 40))"),
        ("bad_timestamp", f"{occurred} IS NULL OR {collected} IS NULL",
         "concat('unparseable or missing time: occurred_at=', coalesce(substr(j.occurred_at, 1, 40), 'null'), "
         "', collected_at=', coalesce(substr(j.collected_at, 1, 40), 'null'))"),
        *time_checks("collected_at", collected, earliest, arrival=True),
        *time_checks("occurred_at", occurred, earliest, arrival=False),
        ("unknown_platform", f"lower(j.platform) NOT IN ({platforms}) OR j.platform IS NULL",
         "concat('platform ', coalesce(substr(j.platform, 1, 40), 'null'), ' is not one Rapport knows; add it to "
         "schemas/vocabulary.py')"),
        ("unknown_interaction", f"{conformed} IS NULL",
         "concat('interaction ', coalesce(substr(j.interaction, 1, 40), 'null'), ' is not known for ', j.platform)"),
        ("wrong_types", "j.rating IS NOT NULL AND (j.rating < 1 OR j.rating > 5)",
         "concat('rating ', cast(j.rating AS STRING), ' is outside 1..5')"),
        ("future_timestamp", f"{occurred} > {collected} + INTERVAL {FUTURE_TOLERANCE_SECONDS} SECONDS",
         "concat('occurred_at ', j.occurred_at, ' is after collection ', j.collected_at)"),
        ("too_late", f"{occurred} < {collected} - INTERVAL {late_days} DAYS",
         f"concat('collected more than {late_days} days after it happened (RAPPORT_LATE_DAYS)')"),
    ])

    def pseudonym(column_sql: str) -> str:
        return pseudonym_sql(column_sql, lambda c: keyed_pseudonym_sql(c, pii_key))

    parsed = df.select(
        "value", "source_file", "line_number", "landing_dt", "landing_hour", "ingested_at",
        reason.alias("reason"), detail.alias("detail"),
        F.expr("lower(j.platform)").alias("platform"),
        F.expr(pseudonym("j.event_id")).alias("event_id"),
        F.expr("substr(j.interaction, 1, 64)").alias("interaction"),
        F.expr(conformed).alias("interaction_type"),
        F.expr(hmac_sql("concat(lower(j.platform), ':', j.actor.id)", pii_key)).alias("actor_id_hash"),
        F.expr(hmac_sql("concat(lower(j.platform), ':', regexp_replace(j.actor.handle, '^@', ''))", pii_key)).alias("actor_handle_hash"),
        F.expr("substr(j.target.type, 1, 64)").alias("target_type"),
        F.expr(pseudonym("j.target.id")).alias("target_id"),
        F.expr(pseudonym("j.target.product_id")).alias("product_id"),
        F.expr("length(j.text)").alias("text_length"),
        F.expr("j.rating").alias("rating"),
        F.expr(occurred).alias("occurred_at"),
        F.expr(f"to_date({occurred})").alias("event_date"),
        F.expr(collected).alias("collected_at"),
        F.expr(collected).alias("arrival_ts"),
        # a webhook's collected_at is the collector's clock: a redelivery is the same content
        F.expr(f"CASE WHEN {is_webhook_sql()} THEN sha2(regexp_replace(v, '\"collected_at\":\"[^\"]*\"', ''), 256) "
               "ELSE sha2(value, 256) END").alias("fingerprint"),
    )
    return rules.apply(parsed, f"silver.{TABLE}")  # the row rules, in the same pass (schemas/rules.py)
