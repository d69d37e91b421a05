"""The gold stage raced on three engines over one silver snapshot, and the outputs compared.

- ``embedded`` and ``jvm``: the job code of ``jobs/gold`` (timeline rows, attribution,
  sequencing, facts, scores), on Sail and on JVM Spark (``remote("local[*]")``), reading
  the silver snapshot as Parquet because JVM Spark here has no Delta jars.
- ``duckdb``: the same two tables written by hand in DuckDB SQL (``gold.duckdb.sql``).

Each peer runs in its own process (``python -m jobs.bench.peers``) so that its memory is
its own and no two Spark Connect sessions share a client. ``compare`` then checks the
outputs row for row, after normalising representations (timestamp encodings, decimal
scales, map rendering), so the race is only fair if the answers are the same.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config import Config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PEERS = ("embedded", "jvm", "duckdb")
# the silver tables the gold timeline and relationship stage reads (what curate reads, less its trends and campaigns)
SILVER = ("clickstream_events", "sessions", "social_interactions", "order_status_history", "identity_map", "orders",
          "campaign_posts")
SQL = Path(__file__).with_name("gold.duckdb.sql")
# what each table is compared on (customer_bucket is Spark's xxhash64, a layout aid the DuckDB peer does not make)
KEYS = {"customer_timeline": ("customer_key", "seq"), "customer_relationship": ("customer_key",)}
NORMAL = {
    "customer_timeline": (
        "customer_key", "seq::BIGINT AS seq", "epoch_us(occurred_at::TIMESTAMPTZ) AS occurred_at",
        "occurred_date::DATE AS occurred_date", "channel", "platform", "event_type", "summary", "product_id", "campaign",
        "order_id", "session_id", "is_milestone", "milestone", "identifier", "source_table", "source_key"),
    "customer_relationship": (
        "customer_key", "epoch_us(first_seen::TIMESTAMPTZ) AS first_seen", "epoch_us(last_seen::TIMESTAMPTZ) AS last_seen",
        "acquisition_channel", "acquisition_platform", "epoch_us(first_purchase_at::TIMESTAMPTZ) AS first_purchase_at",
        "orders::BIGINT AS orders", "kept_orders::BIGINT AS kept_orders", "revenue::DECIMAL(38, 2) AS revenue",
        "interactions::BIGINT AS interactions", "visits::BIGINT AS visits",
        "social_interactions::BIGINT AS social_interactions", "shares::BIGINT AS shares", "reviews::BIGINT AS reviews",
        "ugc::BIGINT AS ugc", "advocacy::BIGINT AS advocacy", "social_influenced_orders::BIGINT AS social_influenced_orders",
        "engagement_by_platform::VARCHAR AS engagement_by_platform", "preferred_platform",
        "days_since_last_interaction::BIGINT AS days_since_last_interaction",
        "average_order_value::DECIMAL(38, 2) AS average_order_value", "r_score::INTEGER AS r_score",
        "f_score::INTEGER AS f_score", "m_score::INTEGER AS m_score", "lifecycle_stage", "rfm_segment",
        "as_of::DATE AS as_of"),
}


def snapshot_silver(spark: "SparkSession", cfg: Config, out: Path) -> None:
    """The silver tables the gold stage reads, as plain Parquet (partition columns become columns)."""
    from jobs.lake import Lake

    lake = Lake(cfg, spark)
    for name in SILVER:
        lake.read_or_empty(f"silver.{name}").write.mode("overwrite").parquet(str(out / name))


def spark_gold(spark: "SparkSession", silver: Path, out: Path, as_of: date) -> None:
    """Gold timeline and relationship with Rapport's own job code, from Parquet to Parquet."""
    from jobs.gold import relationship, timeline
    from schemas import views

    tables = {name: spark.read.parquet(str(silver / name)) for name in SILVER}
    # as curate does: the interactions stored, the timeline read from them with the identity applied
    timeline.rows_from(tables).write.mode("overwrite").parquet(str(out / "interactions"))
    views.timeline_frame(spark.read.parquet(str(out / "interactions")), tables["identity_map"]).write.mode(
        "overwrite").parquet(str(out / "customer_timeline"))
    built = spark.read.parquet(str(out / "customer_timeline"))
    relationship.score(relationship.facts(built, tables["orders"]), as_of).write.mode("overwrite").parquet(
        str(out / "customer_relationship"))


def duckdb_gold(silver: Path, out: Path, as_of: date) -> None:
    import duckdb

    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(SQL.read_text().replace("{silver}", str(silver)).replace("{as_of}", as_of.isoformat()))
    for table in KEYS:
        con.execute(f"COPY {table} TO '{out / table}.parquet' (FORMAT parquet)")
    con.close()


def _scan(path: Path) -> str:
    return f"read_parquet('{path}.parquet')" if Path(f"{path}.parquet").exists() else \
        f"read_parquet('{path}/**/*.parquet', hive_partitioning = false)"


def compare(a: Path, b: Path) -> dict[str, dict]:
    """Per table: rows on each side and rows only on one side, after normalisation."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out = {}
    for table, columns in NORMAL.items():
        cols = ", ".join(columns)
        sides = [f"SELECT {cols} FROM {_scan(p / table)}" for p in (a, b)]
        rows = [con.execute(f"SELECT count(*) FROM ({s})").fetchone()[0] for s in sides]
        only = [con.execute(f"SELECT count(*) FROM ({x} EXCEPT ALL {y})").fetchone()[0]
                for x, y in ((sides[0], sides[1]), (sides[1], sides[0]))]
        sample = None
        if any(only):
            sample = con.execute(f"SELECT * FROM ({sides[0]} EXCEPT ALL {sides[1]}) ORDER BY ALL LIMIT 1").fetchone()
        out[table] = {"rows": rows, "only_in_first": only[0], "only_in_second": only[1],
                      "equal": rows[0] == rows[1] and not any(only), "sample_difference": None if sample is None else
                      [str(v) for v in sample]}
    con.close()
    return out


def run_peer(engine: str, silver: Path, out: Path, as_of: date) -> float:
    """Build the two tables on ``engine``; return the seconds it took (engine start-up excluded)."""
    if engine == "duckdb":
        started = time.perf_counter()
        duckdb_gold(silver, out, as_of)
        return time.perf_counter() - started
    from jobs.engine import spark_session

    cfg = Config(engine="embedded" if engine == "embedded" else "spark-local")
    with spark_session(cfg) as spark:
        spark.range(1).collect()  # the engine is up
        started = time.perf_counter()
        spark_gold(spark, silver, out, as_of)
        return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.bench.peers", description=__doc__.split("\n\n")[0])
    p.add_argument("engine", choices=PEERS)
    p.add_argument("--silver", type=Path, required=True, help="the silver snapshot (Parquet folders)")
    p.add_argument("--out", type=Path, required=True, help="where the two gold tables go")
    p.add_argument("--as-of", type=date.fromisoformat, required=True)
    a = p.parse_args(argv)
    seconds = run_peer(a.engine, a.silver.resolve(), a.out.resolve(), a.as_of)
    print("RAPPORT_PEER " + json.dumps({"engine": a.engine, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
