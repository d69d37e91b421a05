"""Tables by name: ``gold.customer_timeline``, ``silver.orders``, ``ops.audit`` …

``register`` creates one database per layer and an external Delta table for every declared table
(``schemas/<layer>.yaml``) that exists under the lake root, re-pointing a name registered for another
lake root, and a view for every declared view whose tables exist (``gold.customer_timeline``, ``schemas.views``).
It is idempotent and cheap, so every command that queries by name calls it first: an embedded engine's catalog
lives only as long as its server, a cluster's metastore keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from jobs.config import Config
from jobs.lake import Lake
from schemas.views import VIEWS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def register(spark: "SparkSession", cfg: Config, names: Iterable[str] | None = None) -> list[str]:
    """Register the existing tables (all, or those named) by ``layer.name``; unregister the others, so a
    restricted session cannot reach a table it was not given."""
    lake = Lake(cfg, spark)
    existing = lake.existing()  # the declared tables in the lake, listed once
    wanted = set(names) if names is not None else None
    tables = [t for t in existing if wanted is None or t.qualified in wanted]
    for layer in sorted({t.layer for t in tables}):
        spark.sql(f"CREATE DATABASE IF NOT EXISTS {layer}")
    # a name not registered yet needs no look at its location: in a new engine session that is every name
    known = _registered(spark, {t.layer for t in existing})
    for t in tables:
        path = lake.path(t)
        current = _location(spark, t.qualified) if t.qualified in known else None
        if current is not None and current.rstrip("/") != path.rstrip("/"):
            spark.sql(f"DROP TABLE {t.qualified}")  # external: the files stay; the name follows the configured lake
            current = None
        if current is None:
            spark.sql(f"CREATE TABLE {t.qualified} USING DELTA LOCATION '{path}'")
    if wanted is not None:
        for t in existing:
            if t not in tables and t.qualified in known:
                spark.sql(f"DROP TABLE {t.qualified}")
    registered = {t.qualified for t in tables}
    views = []
    for name, view in VIEWS.items():  # over the stored tables just registered: the engine keeps only the SQL
        if set(view.inputs) <= registered and (wanted is None or name in wanted):
            spark.sql(f"CREATE OR REPLACE VIEW {name} AS {view.sql(*view.inputs)}")
            views.append(name)
        else:
            spark.sql(f"DROP VIEW IF EXISTS {name}")
    return [t.qualified for t in tables] + views


def _registered(spark: "SparkSession", layers: set[str]) -> set[str]:
    """The names registered in the databases of ``layers`` (one listing per database; a database that does not
    exist holds none)."""
    names = set()
    for layer in layers:
        try:
            rows = spark.sql(f"SHOW TABLES IN {layer}").collect()  # a listing of names
        except Exception:  # no such database yet
            continue
        names |= {f"{layer}.{r.tableName}" for r in rows}
    return names


def _location(spark: "SparkSession", table: str) -> str | None:
    try:
        rows = spark.sql(f"DESCRIBE TABLE EXTENDED {table}").collect()
    except Exception:  # not registered yet
        return None
    return next((r.data_type for r in rows if r.col_name == "Location"), None)
