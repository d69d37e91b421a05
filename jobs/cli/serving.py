"""``rapport sql|timeline|export``: what the lake serves analysts, CRM tools and recommendation services."""

from __future__ import annotations

import argparse
import sys

from jobs.config import Config
from jobs.cli.common import EXIT_USER_ERROR, _table, print_rows


def cmd_sql(args: argparse.Namespace) -> int:
    from jobs import catalog
    from jobs.engine import spark_session

    cfg = Config.load()
    with spark_session(cfg) as spark:
        names = catalog.register(spark, cfg)
        if not names:
            print(f"rapport: error: no tables under {cfg.lake_root} yet; run `rapport ingest`, `rapport refine` and "
                  "`rapport curate` first (or check RAPPORT_LAKE_ROOT).", file=sys.stderr)
            return EXIT_USER_ERROR
        try:
            df = spark.sql(args.query)
            rows = [tuple(r) for r in df.limit(args.limit).collect()] if args.limit else [tuple(r) for r in df.collect()]
        except Exception as exc:  # a person's query: show the engine's message, not a traceback
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            print(f"rapport: query failed: {first}\nTables: {', '.join(names)}", file=sys.stderr)
            return EXIT_USER_ERROR
        print_rows(df.columns, rows, args.format)
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    from jobs import catalog
    from jobs.engine import spark_session
    from jobs.gold.timeline import bucket_sql
    from jobs.silver.common import hmac_sql

    cfg = Config.load()
    with spark_session(cfg) as spark:
        catalog.register(spark, cfg)
        who = args.customer.strip()
        if "@" in who:
            key = cfg.require_pii_key()
            row = spark.sql(f"SELECT customer_key FROM silver.identity_map WHERE identifier = "
                            f"concat('email:', {hmac_sql(repr(who), key)})").first()
            if row is None:
                print(f"rapport: no customer has the email {who} (it is matched by its hash, case-insensitive)",
                      file=sys.stderr)
                return EXIT_USER_ERROR
            who = row.customer_key
        profile = spark.sql(f"SELECT * FROM gold.customer_relationship WHERE customer_key = '{who}'").first()
        if profile is None:
            print(f"rapport: no customer {who!r}; pass a customer_key (ck_…) or an email address", file=sys.stderr)
            return EXIT_USER_ERROR
        rows = spark.sql(f"""SELECT seq, occurred_at, channel, coalesce(platform, '') AS platform, event_type,
                                    coalesce(milestone, '') AS milestone, summary
                             FROM gold.customer_timeline
                             WHERE customer_bucket = {bucket_sql(repr(who))} AND customer_key = '{who}'
                             ORDER BY seq LIMIT {args.limit}""")
        print(f"Customer {who}: {profile.lifecycle_stage}, {profile.interactions} interactions, {profile.kept_orders} "
              f"orders ({profile.revenue}), first seen {profile.first_seen:%Y-%m-%d} via {profile.acquisition_channel}"
              + (f"/{profile.acquisition_platform}" if profile.acquisition_platform else "")
              + (f", prefers {profile.preferred_platform}" if profile.preferred_platform else ""))
        print_rows(rows.columns, [tuple(r) for r in rows.collect()], args.format)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import dataclasses

    from jobs.engine import spark_session
    from jobs.export import datasets as export_datasets

    cfg = Config.load()
    changes = {k: v for k, v in (("export_format", args.format), ("export_keep", args.keep)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes) if changes else cfg
    cfg.validate()
    datasets = list(args.dataset or export_datasets.DEFAULT_DATASETS)
    if args.timelines and "timelines" not in datasets:
        datasets.append("timelines")
    base = cfg.require_export_uri()
    print(f"Exporting {', '.join(datasets)} to {base}:")
    from jobs.pipeline.runner import run_stage
    from jobs.pipeline.window import Window

    with spark_session(cfg) as spark:
        r = run_stage(spark, cfg, "export", Window(), datasets=datasets, force=args.force,
                      progress=print).reports["export"]
    rows = [(name, f"{r.rows[name]:,}", f"{r.bytes[name] / 1024 / 1024:,.2f}", uri, len(r.pruned.get(name, [])))
            for name, uri in r.published.items()]
    rows += [(name, "unchanged", "-", uri, 0) for name, uri in r.unchanged.items()]
    print(_table(rows, ("dataset", "rows", "MB", "snapshot", "old snapshots deleted")))
    if r.unchanged:
        print("Unchanged datasets were not published again: gold has not changed since (use --force to publish anyway).")
    print("A consumer checks a snapshot with: rapport export verify <snapshot>")
    return 0


def cmd_export_verify(args: argparse.Namespace) -> int:
    from jobs.export.snapshot import verify
    from jobs.storage import s3_client

    result = verify(s3_client(Config.load()), args.snapshot)
    if result.ok:
        m = result.manifest
        print(f"OK {args.snapshot}: {result.files} file(s), {result.rows:,} rows, {result.bytes:,} bytes match the "
              f"manifest ({m.get('dataset')}, {m.get('format')}, from {', '.join(f'{k}@v{v}' for k, v in m.get('sources', {}).items())}).")
        return 0
    print(f"NOT OK {args.snapshot}:", *(f"  - {p}" for p in result.problems), sep="\n", file=sys.stderr)
    print("Do not read this snapshot; use the newest one that verifies (rapport export list).", file=sys.stderr)
    return 1


def cmd_export_list(args: argparse.Namespace) -> int:
    from jobs.export.datasets import DATASETS
    from jobs.export.snapshot import SnapshotStore
    from jobs.storage import s3_client

    cfg = Config.load()
    store = SnapshotStore(s3_client(cfg), args.uri or cfg.require_export_uri())
    rows = []
    for name in DATASETS:
        snapshots = store.snapshots(name)
        latest = next((s.id for s in reversed(snapshots) if s.complete), None)
        rows += [(name, s.id, "complete" if s.complete else "INCOMPLETE (ignored by readers)",
                  "current" if s.id == latest else "", store.uri(s.prefix)) for s in snapshots]
    print(_table(rows, ("dataset", "snapshot", "state", "", "uri")) if rows else f"no snapshots under {store.uri(store.prefix)}")
    return 0
