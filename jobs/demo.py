"""``rapport demo``: everything Rapport can do so far, end to end, on the embedded engine.

Generates a small landing zone under ``<workdir>/landing``, starts the embedded
engine, lands the reference data as Delta tables under ``<workdir>/lake`` and
prints what it made. It stops everything it starts, so it ends by itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from jobs.config import Config


def run_demo(args: argparse.Namespace) -> int:
    from jobs.cli import format_generate_summary
    from jobs.engine import spark_session
    from jobs.generate import Params, generate
    from schemas.reference import SCHEMAS

    started = time.perf_counter()
    work = Path(args.workdir).resolve()
    cfg = dataclasses.replace(Config.load(), lake_root=str(work / "lake"), landing_root=str(work / "landing"),
                              engine="embedded")
    print(f"== 1. generate ({args.customers:,} customers, {args.days} days)")
    manifest = generate(Params(customers=args.customers, days=args.days, start=args.start), cfg.landing_root,
                        overwrite=True)
    print(format_generate_summary(manifest, cfg.landing_root))

    print("\n== 2. embedded engine: reference data to Delta")
    with spark_session(cfg) as spark:
        print(f"Sail Spark Connect, Spark API {spark.version}")
        for name, schema in SCHEMAS.items():
            path = f"{cfg.lake_root}/reference/{name}"
            df = spark.read.schema(schema).json(f"{cfg.landing_root}/reference/{name}")
            df.write.format("delta").mode("overwrite").save(path)
            print(f"  {name:<15} {spark.read.format('delta').load(path).count():>7,} rows -> {path}")
        campaigns = spark.read.format("delta").load(f"{cfg.lake_root}/reference/campaigns")
        posts = spark.read.format("delta").load(f"{cfg.lake_root}/reference/campaign_posts")
        print("\nCampaigns and where their message was actually posted:")
        campaigns.createOrReplaceTempView("campaigns")
        posts.createOrReplaceTempView("campaign_posts")
        spark.sql("""
            SELECT c.campaign_id, c.utm_campaign, c.start_date, size(c.platforms) AS scheduled,
                   count(p.post_id) AS posted,
                   array_join(array_except(c.platforms, collect_list(p.platform)), ',') AS missing_on
            FROM campaigns c LEFT JOIN campaign_posts p ON p.campaign_id = c.campaign_id
            GROUP BY c.campaign_id, c.utm_campaign, c.start_date, c.platforms
            ORDER BY c.start_date
        """).show(truncate=False)
    print(f"Demo finished in {time.perf_counter() - started:.1f}s. Landing: {cfg.landing_root}  Lake: {cfg.lake_root}")
    return 0
