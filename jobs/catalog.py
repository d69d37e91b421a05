"""Tables by name: ``gold.customer_timeline``, ``silver.orders``, ``ops.audit`` …

``register`` creates one database per layer and an external Delta table for every table
that exists under the lake root (re-pointing a name registered for another lake root).
It is idempotent and cheap, so every command that
queries by name calls it first: an embedded engine's catalog lives only as long as its
server, a cluster's metastore keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import LAYERS, Lake
from jobs.storage import is_s3, local_root

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

TABLES = {
    "silver": ("clickstream_events", "social_interactions", "order_status_history", "orders", "order_lines", "sessions",
               "identity_map", "identity_merges", "identity_shared", "crm_customers", "products", "campaigns",
               "campaign_posts"),
    "gold": ("customer_timeline", "customer_relationship", "customer_facts", "daily_product_trends",
             "daily_platform_engagement", "campaign_performance"),
    "ops": ("audit", "quarantine", "duplicates", "ingest_log", "quality_results", "quality_gates"),
    "bronze": ("clickstream", "social", "orders"),
}


def existing_tables(cfg: Config) -> list[tuple[str, str, str]]:
    """(layer, name, path) of every known table that exists in the lake."""
    lake = Lake(cfg)
    found = []
    for layer in LAYERS:
        for name in TABLES.get(layer, ()):
            path = lake.path(layer, name)
            if (not is_s3(path) and _local_has_log(path)) or (is_s3(path) and lake.exists(path)):
                found.append((layer, name, path))
    return found


def _local_has_log(path: str) -> bool:
    import os

    log = os.path.join(local_root(path), "_delta_log")
    return os.path.isdir(log) and any(n.endswith(".json") for n in os.listdir(log))


def register(spark: "SparkSession", cfg: Config) -> list[str]:
    names = []
    tables = existing_tables(cfg)
    for layer in sorted({t[0] for t in tables}):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer}")
    for layer, name, path in tables:
        current = _location(spark, f"{layer}.{name}")
        if current is not None and current.rstrip("/") != path.rstrip("/"):
            spark.sql(f"DROP TABLE {layer}.{name}")  # external: the files stay; the name follows the configured lake
            current = None
        if current is None:
            spark.sql(f"CREATE TABLE {layer}.{name} USING DELTA LOCATION '{path}'")
        names.append(f"{layer}.{name}")
    return names


def _location(spark: "SparkSession", table: str) -> str | None:
    try:
        rows = spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
    except Exception:  # not registered yet
        return None
    return next((r.data_type for r in rows if r.col_name == "Location"), None)
