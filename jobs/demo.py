"""``rapport demo``: everything Rapport can do so far, end to end, on the embedded engine.

Generates a small landing zone under ``<workdir>/landing``, ingests it into bronze and
refines it into silver under ``<workdir>/lake``, checks the result against the
generator's manifest and prints what it made. It stops everything it starts, so it
ends by itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import secrets
import shutil
import time
from pathlib import Path

from jobs.config import Config


def run_demo(args: argparse.Namespace) -> int:
    from jobs.bronze import ingest
    from jobs.cli import _table, format_generate_summary, format_refine_summary
    from jobs.engine import spark_session
    from jobs.generate import Params, generate
    from jobs.lake import Lake
    from jobs.silver import refine

    started = time.perf_counter()
    work = Path(args.workdir).resolve()
    base = Config.load()
    key = base.pii_key
    if not key:
        key = secrets.token_hex(32)
        print("RAPPORT_PII_KEY is not set: the demo hashes PII with a throwaway key (its lake is rebuilt every run).")
    cfg = dataclasses.replace(base, lake_root=str(work / "lake"), landing_root=str(work / "landing"),
                              engine="embedded", spark_remote=None, pii_key=key)
    shutil.rmtree(cfg.lake_root, ignore_errors=True)
    print(f"== 1. generate ({args.customers:,} customers, {args.days} days)")
    manifest = generate(Params(customers=args.customers, days=args.days, start=args.start), cfg.landing_root,
                        overwrite=True)
    print(format_generate_summary(manifest, cfg.landing_root))

    with spark_session(cfg) as spark:
        print(f"\n== 2. ingest into bronze (embedded Sail engine, Spark API {spark.version})")
        rows = []
        for source in ingest.SOURCES + ingest.REFERENCE:
            r = ingest.run(spark, cfg, source)
            rows.append((source, r.files_taken, f"{r.lines:,}", f"{r.bronze_rows:,}", f"{sum(r.quarantined.values()):,}"))
        print(_table(rows, ("source", "files", "lines", "bronze rows", "quarantined")))

        print("\n== 3. refine into silver")
        reports = refine.run_all(spark, cfg)
        print(format_refine_summary(reports))
        checks = [(s, manifest["sources"][s]["valid"], reports[s].silver_rows) for s in ingest.SOURCES]
        print("\nCheck against the generator's manifest (valid events -> silver rows): " + ", ".join(
            f"{s} {want:,} -> {got:,} {'ok' if want == got else 'MISMATCH'}" for s, want, got in checks))

        lake = Lake(cfg)
        im = lake.read(spark, lake.path("silver", "identity_map")).where("NOT is_shared")
        im.createOrReplaceTempView("identity_map")
        print("\nThe most connected customers (identifier kinds stitched into one customer_key):")
        spark.sql("""
            SELECT customer_key, count(*) AS identifiers,
                   array_join(sort_array(collect_set(id_type)), ', ') AS kinds
            FROM identity_map GROUP BY customer_key
            ORDER BY size(collect_set(id_type)) DESC, count(*) DESC, customer_key LIMIT 5
        """).show(truncate=False)
        lake.read(spark, lake.path("silver", "sessions")).createOrReplaceTempView("sessions")
        print("Sessions by how visitors arrived:")
        spark.sql("""
            SELECT coalesce(utm_medium, CASE WHEN referrer_host IS NULL THEN 'direct' ELSE 'referral' END) AS arrived_by,
                   count(*) AS sessions, round(avg(pages), 1) AS avg_pages,
                   round(100 * avg(CAST(converted AS INT)), 1) AS conversion_pct
            FROM sessions GROUP BY 1 ORDER BY sessions DESC
        """).show(truncate=False)
        ok = all(want == got for _, want, got in checks)
    print(f"Demo finished in {time.perf_counter() - started:.1f}s. Landing: {cfg.landing_root}  Lake: {cfg.lake_root}")
    return 0 if ok else 1
