"""``rapport sql|timeline|export``: what the lake serves analysts, CRM tools and recommendation services."""

from __future__ import annotations

import argparse
import sys

from jobs.cli.common import EXIT_USER_ERROR, _table, print_rows
from jobs.config import Config
from jobs.runs import lease


def cmd_sql(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.serving import query

    cfg = Config.load()
    role = args.role or cfg.sql_role
    try:
        query.check(args.query, role)  # refuse before starting anything
    except query.QueryRefused as exc:
        print(f"rapport: refused: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    with lease.reading(cfg, "rapport sql"), spark_session(cfg) as spark:
        try:
            columns, rows = query.run(spark, cfg, args.query, role, args.limit)
        except query.QueryRefused as exc:
            print(f"rapport: refused: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        except Exception as exc:  # a person's query: show the engine's message, not a traceback
            from jobs.pii.keyring import missing_key

            first = missing_key(exc) or (str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            print(f"rapport: query failed: {first}\nTables: {', '.join(query.readable(role))}", file=sys.stderr)
            return EXIT_USER_ERROR
        print_rows(columns, rows, args.format)
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.serving.timeline import NotACustomer, customer_key, profile_and_events

    cfg = Config.load()
    with lease.reading(cfg, "rapport timeline"), spark_session(cfg) as spark:
        try:
            key = customer_key(spark, cfg, args.customer, args.as_of)
            profile, events = profile_and_events(spark, cfg, key, args.as_of)
        except NotACustomer as exc:
            print(f"rapport: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
        rows = events.selectExpr("seq", "occurred_at", "channel", "coalesce(platform, '') AS platform", "event_type",
                                 "coalesce(milestone, '') AS milestone", "summary").limit(args.limit)
        if args.as_of:
            print(f"As known at {args.as_of:%Y-%m-%d %H:%M} UTC:")
        print(f"Customer {key}: {profile.lifecycle_stage}, {profile.interactions} interactions, {profile.kept_orders} "
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
    from jobs.runs.window import Window

    with spark_session(cfg) as spark:  # export runs under the write lease (run_stage)
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
