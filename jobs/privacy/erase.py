"""Erase a person from every table, every older version, the quality records and the exports.

What is erased, table by table, follows the registry's personal-data classes (``schemas/<layer>.yaml``):

- silver: every row that carries one of the person's identifiers (devices, user ids, hashed emails, phones,
  social ids and handles, orders, the CRM id), the identity graph's nodes, edges and merges included;
- bronze and ``ops.quarantine``: the raw lines those silver rows came from (by lineage), and every other raw
  line whose identifiers, or any email or phone written anywhere in it, hash to one of the person's (the
  engine parses and hashes the candidates of each raw line; nothing is searched as plain text on the client);
- ``ops.duplicates`` rows of their events; quality records and Data Docs pages that mention them;
- gold: their timeline, facts and relationship row; then the aggregates they counted in are rebuilt for the
  dates they touched (product and platform trends), campaign performance and the relationship scores;
- exports: a new snapshot of each dataset is published without them, and every older snapshot that holds
  them is deleted;
- older versions: every table that lost rows is vacuumed with zero retention (under the lake's lease, so no
  run writes meanwhile), so the files of earlier versions go. Time travel to before the erasure is gone for
  those tables.

Deletes are MERGEs against staged keys, so no Delta commit records an identifier. Every step is idempotent:
a request killed part-way is finished by running it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import STAGING, Lake, in_list
from jobs.pii.keyring import crm_id_sql, hmac_all_sql
from jobs.privacy.person import Person
from jobs.pii.scrub import EMAIL
from jobs.silver.common import phone_sql
from jobs.storage import is_s3, remove_tree
from schemas.affinity import TABLE as SIGNALS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)
LINEAGE = ("source_file", "line_number")
PHONE = r"\+?[0-9]([ ().-]{0,2}[0-9]){8,14}"
# which identifier type is in which column, per silver table
COLUMNS = {
    "silver.clickstream_events": {"anon": "anonymous_id", "user": "user_id", "email": "email_hash",
                                  "phone": "phone_hash", "social": "login_provider_user_hash", "order": "order_id"},
    "silver.social_interactions": {"social": "actor_id_hash", "handle": "actor_handle_hash"},
    "silver.order_status_history": {"order": "cast(order_id AS STRING)", "email": "email_hash", "phone": "phone_hash",
                                    "shop": "cast(shop_customer_id AS STRING)"},
    "silver.orders": {"order": "cast(order_id AS STRING)", "email": "email_hash", "phone": "phone_hash",
                      "shop": "cast(shop_customer_id AS STRING)"},
    "silver.order_lines": {"order": "cast(order_id AS STRING)"},
    "silver.sessions": {"anon": "anonymous_id", "user": "user_id"},
    "silver.crm_customers": {"crm": "customer_id", "email": "email_hash", "phone": "phone_hash"},
}
EVENT_KEYS = {"silver.clickstream_events": "message_id", "silver.social_interactions": "concat_ws('/', platform, event_id)",
              "silver.order_status_history": "webhook_id"}
BRONZE = {"silver.clickstream_events": "clickstream", "silver.social_interactions": "social",
          "silver.order_status_history": "orders"}


@dataclass
class Erased:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows that held the person, now gone
    dates: list[date] = field(default_factory=list)
    snapshots_removed: list[str] = field(default_factory=list)
    snapshots_published: list[str] = field(default_factory=list)
    files_removed: int = 0
    docs_removed: int = 0


def _condition(columns: dict[str, str], person: Person) -> str | None:
    parts = [f"{col} IN ({in_list(values)})" for kind, col in columns.items() if (values := person.of_type(kind))]
    return " OR ".join(parts) if parts else None


def _raw_hits(lake: Lake, cfg: Config, source: str, raw: "DataFrame", person: Person, run: str) -> "DataFrame":
    """Lineage of raw lines that belong to the person: their parsed identifiers, or any email or phone anywhere in
    the text, hash to one of theirs. Runs on the engine."""
    from pyspark.sql import functions as F

    from jobs.silver.refine import MODULES

    key = cfg.pii_keys()
    emails, phones = person.of_type("email"), person.of_type("phone")
    loose = []
    if emails:
        found = f"regexp_extract_all(value, '{EMAIL.replace(chr(92), chr(92) * 2)}', 0)"
        loose.append(F.arrays_overlap(F.expr(hmac_all_sql(found, "x", "x", key)), F.array(*[F.lit(e) for e in emails])))
    if phones:
        found = f"regexp_extract_all(value, '{PHONE.replace(chr(92), chr(92) * 2)}', 0)"
        loose.append(F.arrays_overlap(F.expr(hmac_all_sql(found, "x", phone_sql("x"), key)),
                                      F.array(*[F.lit(p) for p in phones])))
    hits = None
    part = f"{source}-{abs(hash(str(raw.columns))) % 10**6}"  # bronze and quarantine rows of a source stage apart
    if loose:
        # computed in a projection and materialised before it is filtered on: Sail 0.7 cannot filter a file scan on
        # a higher-order function (docs/sail-gaps.md)
        marked = raw.select(*LINEAGE, F.coalesce(loose[0] if len(loose) == 1 else (loose[0] | loose[1]),
                                                  F.lit(False)).alias("_hit"))
        hits = lake.checkpoint(marked, run, f"raw-{part}") \
            .where("_hit").select(*LINEAGE)
    module = MODULES.get(source)
    if module is not None:
        parsed = module.parse(raw.select("value", *LINEAGE, "landing_dt", "landing_hour",
                                         F.current_timestamp().alias("ingested_at")), cfg)
        table = f"silver.{module.TABLE}"
        cond = _condition(COLUMNS[table], person)
        if cond:
            # flagged in a projection and materialised, then filtered: Sail 0.7.2 never finishes planning a filter
            # on the parse's output (docs/sail-gaps.md)
            flagged = parsed.select(*LINEAGE, F.coalesce(F.expr(cond), F.lit(False)).alias("_hit"))
            by_ids = lake.checkpoint(flagged, run, f"ids-{part}") \
                .where("_hit").select(*LINEAGE)
            hits = by_ids if hits is None else hits.unionByName(by_ids)
    return hits.distinct() if hits is not None else raw.limit(0).select(*LINEAGE)


def _record_erased(lake: Lake, source: str, rows: "DataFrame", hits: "DataFrame", request_id: str) -> None:
    """The lineage of the landed lines about to go (rows of bronze, or unreadable lines quarantined at ingest)."""
    from pyspark.sql import functions as F

    gone = rows.join(hits, list(LINEAGE), "left_semi").select(F.lit(source).alias("source"), *LINEAGE, "landing_dt",
                                                              "landing_hour", F.lit(request_id).alias("request_id"))
    lake.append_new("ops.erased_lines", gone)


def _delete(lake: Lake, name: str, keys: "DataFrame", on, erased: Erased) -> None:
    n = keys.count()  # how many rows go: a count
    if n:
        lake.delete_keys(name, keys, on)
        erased.rows[name] = erased.rows.get(name, 0) + n


def erase(spark: "SparkSession", cfg: Config, person: Person, request_id: str) -> Erased:
    from pyspark.sql import functions as F

    lake = Lake(cfg, spark)
    erased = Erased()
    # 1. what the person's silver rows are: their event keys, lineage and dates, staged before anything goes
    staged_keys, staged_lineage, dates = [], [], set()
    for name, columns in COLUMNS.items():
        cond = _condition(columns, person)
        if not cond or not lake.exists(name):
            continue
        rows = lake.read(name).where(cond)
        if name in EVENT_KEYS:
            staged_keys.append(rows.select(F.lit(BRONZE[name]).alias("source"), F.expr(EVENT_KEYS[name]).alias("event_key")))
            staged_lineage.append(rows.select(F.lit(BRONZE[name]).alias("source"), *LINEAGE))
            dates |= {r.event_date for r in rows.select("event_date").distinct().collect() if r.event_date}  # dates
    run = f"erase-{request_id}"
    keys_df = lake.checkpoint(_union(spark, staged_keys, "source string, event_key string"), run, "event-keys")
    lineage_df = lake.checkpoint(_union(spark, staged_lineage, "source string, source_file string, line_number bigint"),
                                 run, "lineage")
    interactions = signals = None
    if person.keys:  # their interactions, found through the identifiers that are theirs before identity is erased
        ids = (lake.read_or_empty("silver.identity_map").where(F.col("customer_key").isin(person.keys))
               .where("NOT is_shared").select("identifier"))
        interactions = lake.checkpoint(lake.read_or_empty("gold.interactions").join(ids, "identifier", "left_semi")
                                       .select("source_table", "source_key", "occurred_date"), run, "interactions")
        dates |= {r.d for r in interactions.select(F.col("occurred_date").alias("d")).distinct().collect() if r.d}
        if lake.exists(SIGNALS):  # what the export scores them from, by the same identifiers
            signals = lake.checkpoint(lake.read(SIGNALS).join(ids, "identifier", "left_semi").select(*lake.table_key(
                SIGNALS)), run, "product-signals")
    erased.dates = sorted(dates)

    # 2. raw lines: by lineage and by what they hold (bronze, quarantine); each erased line's lineage is kept in
    # ops.erased_lines, so every window still reconciles
    for source in ("clickstream", "social", "orders"):
        mine = lineage_df.where(F.col("source") == source).select(*LINEAGE)
        if lake.exists(f"bronze.{source}"):
            raw = lake.read(f"bronze.{source}")
            hits = lake.checkpoint(mine.unionByName(_raw_hits(lake, cfg, source, raw, person, run)).distinct(), run,
                                   f"bronze-{source}")
            _record_erased(lake, source, raw, hits, request_id)
            _delete(lake, f"bronze.{source}", hits, LINEAGE, erased)
        if lake.exists("ops.quarantine"):
            quarantined = lake.read("ops.quarantine").where(F.col("source") == source)
            q = quarantined.select(F.coalesce("raw", F.expr("decode(raw_bytes, 'UTF-8')")).alias("value"), *LINEAGE,
                                   "landing_dt", "landing_hour")
            hits = lake.checkpoint(mine.unionByName(_raw_hits(lake, cfg, source, q, person, run)).distinct(), run,
                                   f"quarantine-{source}")
            _record_erased(lake, source, quarantined.where("layer = 'bronze'"), hits, request_id)
            _delete(lake, "ops.quarantine", hits.withColumn("source", F.lit(source)), ("source", *LINEAGE), erased)
    for source in ("customers",):  # the CRM extract's raw lines
        if lake.exists(f"bronze.{source}") and person.of_type("crm"):
            raw = lake.read(f"bronze.{source}")
            crm = F.expr(crm_id_sql(cfg, "get_json_object(value, '$.customer_id')"))
            hits = raw.where(crm.isin(person.of_type("crm"))).select(*LINEAGE)
            _delete(lake, f"bronze.{source}", hits, LINEAGE, erased)
    if lake.exists("ops.duplicates"):
        dups = lake.read("ops.duplicates")
        mine = dups.join(keys_df, ["source", "event_key"]).select("source", *LINEAGE)
        _delete(lake, "ops.duplicates", mine, ("source", *LINEAGE), erased)

    # 3. silver, identity included
    for name, columns in COLUMNS.items():
        cond = _condition(columns, person)
        if cond and lake.exists(name):
            t_keys = lake.table_key(name)
            _delete(lake, name, lake.read(name).where(cond).select(*t_keys), t_keys, erased)
    ids = sorted(person.identifiers)
    if ids:
        for name, cols in (("silver.identity_edges", ("a", "b")), ("silver.identity_nodes", ("identifier",)),
                           ("silver.identity_map", ("identifier",)), ("silver.identity_versions", ("identifier",)),
                           ("silver.identity_blocks", ("a", "b", "identifier")),
                           ("silver.identity_events", ("identifier",))):
            if lake.exists(name):
                cond = " OR ".join(f"{c} IN ({in_list(ids)})" for c in cols)
                if name in ("silver.identity_map", "silver.identity_versions", "silver.identity_blocks") and person.keys:
                    cond += f" OR customer_key IN ({in_list(person.keys)})"
                t_keys = lake.table_key(name)
                _delete(lake, name, lake.read(name).where(cond).select(*t_keys), t_keys, erased)
    if person.keys:
        if lake.exists("silver.identity_events"):
            cond = f"customer_key IN ({in_list(person.keys)}) OR other_key IN ({in_list(person.keys)})"
            _delete(lake, "silver.identity_events", lake.read("silver.identity_events").where(cond).select("event_id"),
                    ("event_id",), erased)
        # 4. gold, and what they counted in
        if interactions is not None:
            _delete(lake, "gold.interactions", interactions, ("source_table", "source_key"), erased)
        if signals is not None:
            _delete(lake, SIGNALS, signals, lake.table_key(SIGNALS), erased)
        for name in ("gold.customer_facts", "gold.customer_relationship", "gold.campaign_orders"):
            if lake.exists(name):
                rows = lake.read(name).where(F.col("customer_key").isin(person.keys)).select("customer_key")
                _delete(lake, name, rows, ("customer_key",), erased)
    _rebuild_aggregates(lake, erased.dates)
    _forget_in_quality_records(lake, person, erased)
    _forget_in_reports(spark, cfg, person, erased)
    return erased


def _forget_in_reports(spark: "SparkSession", cfg: Config, person: Person, erased: Erased) -> None:
    """Report pages that name the person (as a top advocate, or their own customer page), in the lake and the
    export bucket: customer pages are deleted, reports rebuilt from the gold they are no longer in."""
    from jobs.report.build import REPORTS
    from jobs.report.build import run as build_report
    from jobs.storage import list_objects, s3_client, split_s3

    tokens = _tokens(person)
    roots = [f"{Lake(cfg).root}/{REPORTS}"] + ([f"{cfg.export_uri.rstrip('/')}/reports"] if cfg.export_uri else [])
    days: set[date] = set()
    for root in roots:
        for obj in list_objects(cfg, root):
            if is_s3(obj.uri):
                bucket, key = split_s3(obj.uri)
                text = s3_client(cfg).get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
            else:
                text = Path(obj.uri).read_text(errors="replace")
            if not any(t in text for t in tokens):
                continue
            folder = obj.key.split("/", 1)[0]
            try:
                days.add(date.fromisoformat(folder))
            except ValueError:  # a customer page, or a report of no date: removed
                if is_s3(obj.uri):
                    s3_client(cfg).delete_object(Bucket=bucket, Key=key)
                else:
                    Path(obj.uri).unlink()
                erased.docs_removed += 1
    for day in sorted(days):
        build_report(spark, cfg, day=day)  # rewrites the lake's copy and the bucket's
        erased.docs_removed += 1


def _union(spark: "SparkSession", parts: list["DataFrame"], schema: str) -> "DataFrame":
    if not parts:
        return spark.createDataFrame([], schema)
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def _rebuild_aggregates(lake: Lake, dates: list[date]) -> None:
    """Trends of the dates the person touched (and the 7 after), campaign performance, relationship scores."""
    from jobs.gold import relationship, trends

    if dates and lake.exists("gold.daily_product_trends"):
        lo, hi = dates[0], dates[-1] + timedelta(days=7)
        where = f"date BETWEEN DATE'{lo}' AND DATE'{hi}'"
        lake.replace_partitions("gold.daily_product_trends", trends.product_trends(lake, lo, hi), where)
        lake.replace_partitions("gold.daily_platform_engagement", trends.platform_trends(lake, lo, hi), where)
    if lake.exists("gold.interactions"):
        if not lake.exists("gold.campaign_orders"):  # a lake from before it
            trends.attribute_all(lake)
        lake.snapshot("gold.campaign_performance", trends.campaign_performance(lake, lake.read("gold.campaign_orders")))
    if lake.exists("gold.customer_relationship"):
        as_of = lake.read("gold.customer_relationship").agg({"as_of": "max"}).first()[0] or date.today()
        lake.snapshot("gold.customer_relationship", relationship.score(lake.read("gold.customer_facts"), as_of))


def _tokens(person: Person) -> list[str]:
    """What names the person in text: customer keys, and identifier values long enough not to match by chance."""
    values = set(person.keys) | {i.split(":", 1)[1] for i in person.identifiers}
    return sorted(v for v in values if len(v) >= 8)


def _forget_in_quality_records(lake: Lake, person: Person, erased: Erased) -> None:
    """Quality results whose samples name the person; Data Docs pages and stored validations that do."""
    from pyspark.sql import functions as F

    tokens = _tokens(person)
    if not tokens:
        return
    if lake.exists("ops.quality_results"):
        cond = None
        for t in tokens:
            c = F.col("sample").contains(t) | F.col("observed").contains(t)
            cond = c if cond is None else cond | c
        rows = lake.read("ops.quality_results").where(cond).select(*lake.table_key("ops.quality_results"))
        _delete(lake, "ops.quality_results", rows, lake.table_key("ops.quality_results"), erased)
    if is_s3(lake.root):
        return
    for folder in ("_docs", "_quality"):
        for path in (Path(lake.root) / folder).rglob("*"):
            if path.is_file() and path.suffix in (".html", ".json"):
                text = path.read_text(errors="replace")
                if any(t in text for t in tokens):
                    path.unlink()
                    erased.docs_removed += 1


def remove_staging(cfg: Config) -> None:
    """Scratch copies of earlier runs (the lease is held: no run is using them)."""
    remove_tree(cfg, f"{Lake(cfg).root}/{STAGING}")


def vacuum(lake: Lake, tables: list[str]) -> int:
    """Remove the files of every earlier version of the tables, once readers that began before have finished: time
    travel before now is gone for them."""
    return lake.vacuum_now(tables, "erasure's vacuum")
