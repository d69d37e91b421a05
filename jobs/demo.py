"""``rapport demo``: everything Rapport can do so far, end to end, on the embedded engine.

Generates a small landing zone under ``<workdir>/landing``, ingests it into bronze and
refines it into silver and curates gold under ``<workdir>/lake``, checks silver against
the generator's manifest and prints what it made: stages, a sample timeline, the top
trending products and campaign consistency. It stops everything it starts, so it
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
    from jobs.gold import curate
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

        print("\n== 4. curate gold")
        g = curate.run(spark, cfg, full=True)
        print(f"{g.timeline_rows:,} timeline rows for {g.customers:,} customers (as of {g.as_of}); tables registered "
              "as gold.customer_timeline, gold.customer_relationship, gold.daily_product_trends, "
              "gold.daily_platform_engagement, gold.campaign_performance")
        print("\nLifecycle stages:")
        spark.sql("""SELECT lifecycle_stage, count(*) AS customers, sum(kept_orders) AS orders, sum(revenue) AS revenue
                     FROM gold.customer_relationship GROUP BY 1 ORDER BY customers DESC""").show(truncate=False)
        key = spark.sql("""SELECT r.customer_key FROM gold.customer_relationship r
                           WHERE r.kept_orders > 0 AND r.social_interactions > 0 AND r.visits > 0
                           ORDER BY r.interactions, r.customer_key LIMIT 1""").first()
        if key is not None:
            k = key.customer_key
            print(f"A sample timeline (rapport timeline {k}):")
            spark.sql(f"""SELECT seq, date_format(occurred_at, 'yyyy-MM-dd HH:mm') AS at, channel,
                                 coalesce(platform, '') AS platform, event_type, coalesce(milestone, '') AS milestone, summary
                          FROM gold.customer_timeline WHERE customer_key = '{k}' ORDER BY seq LIMIT 25""").show(
                25, truncate=False)
        last = spark.sql("SELECT max(date) AS d FROM gold.daily_product_trends WHERE trending").first().d
        print(f"Top trending products on {last} (views over 7 days vs the 7 before):" if last else
              "No product is trending yet (trends compare 7 days with the 7 before them).")
        if last:
            spark.sql(f"""SELECT trend_rank AS `rank`, product_id, title, views_7d, views_prev_7d,
                                 concat('+', cast(round(100 * growth_7d) AS INT), '%') AS growth, orders, revenue
                          FROM gold.daily_product_trends WHERE date = DATE'{last}' AND trending
                          ORDER BY trend_rank LIMIT 5""").show(truncate=False)
        print("Campaign message consistency (scheduled platforms where the message is missing, stale or silent):")
        spark.sql("""SELECT campaign_id, consistency, count(*) AS platforms,
                            array_join(sort_array(collect_list(platform)), ', ') AS on_platforms
                     FROM gold.campaign_performance GROUP BY 1, 2 ORDER BY 1, 2""").show(truncate=False)
        ok = all(want == got for _, want, got in checks)
    print(f"Demo finished in {time.perf_counter() - started:.1f}s. Landing: {cfg.landing_root}  Lake: {cfg.lake_root}")
    return 0 if ok else 1
