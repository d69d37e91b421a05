"""The ``rapport`` command: one entry point for people, Makefile targets and Airflow tasks.

Each subcommand is a thin wrapper over a job's ``run``/library function; errors
that a person can fix (configuration, parameters, an unreachable engine) are
printed as one clear line and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from datetime import date, timedelta
from pathlib import Path

from jobs.config import Config, ConfigError

EXIT_USER_ERROR = 2


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; use YYYY-MM-DD") from None


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 1")
    return n


def _table(rows: list[tuple], header: tuple) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def cmd_generate(args: argparse.Namespace) -> int:
    from jobs.generate import Params, generate

    params = Params(customers=args.customers, days=args.days, start=args.start, seed=args.seed,
                    bad_rate=args.bad_rate, dup_rate=args.dup_rate, shard_size=args.shard_size)
    out = args.out or Config.load().landing_root
    manifest = generate(params, out, workers=args.workers, overwrite=args.overwrite,
                        progress=False if args.no_progress else None)
    print(format_generate_summary(manifest, out))
    return 0


def format_generate_summary(manifest: dict, out: str | Path) -> str:
    rows = []
    for source, s in manifest["sources"].items():
        rows.append((source, s["files"], f"{s['lines']:,}", f"{s['valid']:,}", f"{sum(s['bad'].values()):,}",
                     f"{s['exact_duplicates'] + s['id_conflicts']:,}", f"{s['late_arrivals']:,}",
                     s["truncated_gzip"]["members"]))
    lines = sum(s["lines"] for s in manifest["sources"].values())
    secs = manifest.get("elapsed_seconds") or 0
    g = manifest["generator"]
    return "\n".join([
        f"Generated {lines:,} lines for {g['customers']:,} customers over {g['days']} days "
        f"({g['start']} .. {g['end']}, seed {g['seed']}) into {out}"
        + (f" in {secs:.1f}s ({lines / secs:,.0f} lines/s)" if secs else ""),
        _table(rows, ("source", "files", "lines", "valid", "bad", "dup/conflict", "late", "cut gzip")),
        f"reference: " + ", ".join(f"{k} {v['lines']:,}" for k, v in manifest["reference"].items()),
        f"manifest: {Path(out) / 'manifest.json'}",
    ])


def _moment(value: str):
    from jobs.storage import parse_moment

    try:
        return parse_moment(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _sources(value: str) -> tuple[str, ...]:
    from jobs.bronze.ingest import LANDING_PREFIX, REFERENCE, SOURCES

    if value == "all":
        return SOURCES + REFERENCE
    if value == "reference":
        return REFERENCE
    if value not in LANDING_PREFIX:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a source; use one of {', '.join(LANDING_PREFIX)}, reference or all")
    return (value,)


def cmd_ingest(args: argparse.Namespace) -> int:
    from jobs.bronze import ingest
    from jobs.engine import spark_session

    cfg = Config.load()
    rows = []
    with spark_session(cfg) as spark:
        for source in args.source:
            r = ingest.run(spark, cfg, source, args.start, args.end, run_id=args.run_id and f"{args.run_id}-{source}")
            quarantined = ", ".join(f"{k} {v:,}" for k, v in sorted(r.quarantined.items())) or "-"
            rows.append((source, r.files_found, r.files_skipped, r.files_taken, f"{r.lines:,}", f"{r.bronze_rows:,}",
                         quarantined))
        window = f"{args.start or 'the beginning'} .. {args.end or 'now'}"
        print(f"Ingested landing files from {cfg.landing_root} ({window}) into bronze:")
        print(_table(rows, ("source", "files", "already taken", "taken now", "lines", "bronze rows", "quarantined")))
        from jobs.bronze.ingest import SOURCES

        _gate(spark, cfg, "bronze", args, tables=[f"bronze.{s}" for s in args.source if s in SOURCES])
    return 0


def _gate(spark, cfg: Config, layer: str, args: argparse.Namespace, tables: list[str] | None = None) -> None:
    """Run a layer's quality gate after the job that built it (skipped with --no-gate)."""
    from jobs.quality import gate

    if getattr(args, "no_gate", False):
        print(f"quality gate for {layer}: skipped (--no-gate)")
        return
    if tables == []:
        return  # only reference data was ingested: it has no bronze suite
    results = gate.gate(spark, cfg, layer, args.start, args.end, tables=tables)
    warned = sum(1 for r in results for o in r.outcomes if not o.success)
    print(f"quality gate for {layer}: passed ({sum(len(r.outcomes) for r in results)} expectations"
          + (f", {warned} warnings recorded in ops.quality_results)" if warned else ")"))


def cmd_refine(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.silver import refine

    cfg = Config.load()
    cfg.require_pii_key()
    with spark_session(cfg) as spark:
        reports = refine.run_all(spark, cfg, args.start, args.end, args.run_id)
        print(format_refine_summary(reports, args.start, args.end))
        _gate(spark, cfg, "silver", args)
    return 0


def format_refine_summary(reports: dict, start=None, end=None) -> str:
    rows, reasons = [], []
    for source in ("clickstream", "social", "orders"):
        r = reports[source]
        rows.append((source, f"{r.landed:,}", f"{r.silver_rows:,}", f"{r.new_rows:,}", f"{r.duplicates:,}",
                     f"{sum(r.quarantined.values()):,}", "yes" if r.balanced else "NO"))
        reasons.append(f"  {source}: " + (", ".join(f"{k} {v:,}" for k, v in sorted(r.quarantined.items())) or "none"))
    ident = reports["identity"]
    return "\n".join([
        f"Refined bronze into silver for landing hours {start or 'the beginning'} .. {end or 'now'}:",
        _table(rows, ("source", "landed", "silver", "new now", "duplicates", "quarantined", "balanced")),
        "quarantined by reason (ops/quarantine):", *reasons,
        f"identity: {ident['identifiers']:,} identifiers -> {ident['customers']:,} customers "
        f"({ident['merges']} merges this run, {ident['shared']} shared identifiers kept from merging)",
        f"sessions: {reports['sessions']:,} sessions on the dates this run touched",
    ])


def cmd_curate(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.gold import curate

    from jobs.quality import gate

    cfg = Config.load()
    with spark_session(cfg) as spark:
        gate.require_passed(spark, cfg, "silver")
        r = curate.run(spark, cfg, args.start, args.end, full=args.full, as_of=args.as_of)
        how = "full rebuild" if r.full else f"incremental: {r.customers_rebuilt:,} customers rebuilt"
        print(f"Curated gold ({how}, as of {r.as_of}): {r.timeline_rows:,} timeline rows for {r.customers:,} customers."
              + (f" Trend dates touched: {r.dates[0]} .. {r.dates[-1]}." if r.dates else ""))
        _gate(spark, cfg, "gold", args)
    print("Query it: rapport sql \"SELECT * FROM gold.customer_relationship LIMIT 10\"")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import dataclasses

    from jobs.engine import spark_session
    from jobs.export import run as export

    cfg = Config.load()
    changes = {k: v for k, v in (("export_format", args.format), ("export_keep", args.keep)) if v is not None}
    cfg = dataclasses.replace(cfg, **changes) if changes else cfg
    cfg.validate()
    datasets = list(args.dataset or export.ds.DEFAULT_DATASETS)
    if args.timelines and "timelines" not in datasets:
        datasets.append("timelines")
    base = cfg.require_export_uri()
    print(f"Exporting {', '.join(datasets)} to {base}:")
    with spark_session(cfg) as spark:
        r = export.run(spark, cfg, datasets, force=args.force, progress=print)
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


def cmd_bench(args: argparse.Namespace) -> int:
    from jobs.bench.peers import PEERS
    from jobs.bench.run import Settings, run

    scales = tuple(args.scales) + ((5_000_000,) if args.large and 5_000_000 not in args.scales else ())
    unknown = [p for p in args.peers if p not in PEERS]
    if unknown:
        print(f"rapport: error: unknown peer(s) {', '.join(unknown)}; peers are {', '.join(PEERS)}", file=sys.stderr)
        return EXIT_USER_ERROR
    settings = Settings(scales=scales, repeats=args.repeats, days=args.days, peers=tuple(args.peers),
                        incremental_days=args.incremental_days, incremental_events_per_day=args.incremental_events,
                        out=Path(args.out), workdir=Path(args.workdir), keep_data=args.keep_data)
    print(f"Benchmark: scales {', '.join(f'{s:,}' for s in scales)} events, {args.repeats} runs each; peers "
          f"{', '.join(args.peers) or 'none'}; {args.incremental_days} incremental days. Results go to {args.out}/.")
    results = run(settings)
    print(f"Done in {results.total_seconds / 60:.1f} min: {args.out}/results.json, results.md, chart.png")
    for e in results.errors:
        print(f"rapport: bench part '{e['part']}' failed: {e['error']}", file=sys.stderr)
    return 1 if results.errors else 0


def _counts(value: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(float(v)) for v in value.split(",") if v.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of event counts, e.g. 100000,1000000")
    return counts


def cmd_quality_validate(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.lake import Lake
    from jobs.quality import gate

    cfg = Config.load()
    suites = gate.load_suites()
    if args.table:
        suites = [s for s in suites if s.table == args.table]
        if not suites:
            known = ", ".join(s.table for s in gate.load_suites())
            print(f"rapport: error: no suite for {args.table}; suites exist for {known}", file=sys.stderr)
            return EXIT_USER_ERROR
    elif args.layer:
        suites = [s for s in suites if s.layer == args.layer]
    with spark_session(cfg) as spark:
        ctx = gate.context(Lake(cfg))
        results = [gate.validate(spark, cfg, s, args.start, args.end, ctx) for s in suites]
    rows = [(r.suite.table, o.expectation.severity, "ok" if o.success else "FAILED", o.expectation.label[:70],
             "" if o.unexpected_count is None else o.unexpected_count, (o.error or ", ".join(map(str, o.sample)))[:40])
            for r in results for o in r.outcomes]
    print(_table(rows, ("table", "severity", "result", "expectation", "unexpected", "sample / error")))
    critical = sum(len(r.critical_failures) for r in results)
    print(f"{len(rows)} expectations, {critical} critical failures. Data Docs: {gate.docs_index(cfg).parent / 'index.html'}")
    return 1 if critical else 0


def cmd_quality_docs(args: argparse.Namespace) -> int:
    from jobs.lake import Lake
    from jobs.quality import gate

    cfg = Config.load()
    index = gate.docs_index(cfg)
    if not index.exists():
        print(f"No quality gate has run for {cfg.lake_root} yet; run `rapport refine` or `rapport quality validate`.")
        return 0
    print(f"Quality overview (opens offline): {index.as_uri()}")
    print(f"Great Expectations Data Docs: {(index.parent / 'index.html').as_uri()} (its index needs internet access "
          "for its scripts; the overview links each validation page directly)")
    return 0


def print_rows(columns: list[str], rows: list, fmt: str, out=None) -> None:
    import csv
    import json

    out = out or sys.stdout
    if fmt == "json":
        for r in rows:
            out.write(json.dumps(dict(zip(columns, r)), default=str) + "\n")
    elif fmt == "csv":
        w = csv.writer(out)
        w.writerow(columns)
        w.writerows(rows)
    else:
        shown = [tuple("" if v is None else str(v) for v in r) for r in rows]
        out.write(_table(shown, tuple(columns)) + "\n")


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


def cmd_engine_serve(args: argparse.Namespace) -> int:
    from jobs.engine import EmbeddedServer

    server = EmbeddedServer(host=args.host, port=args.port).start()
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    print(f"Sail Spark Connect server listening on {server.url}", flush=True)
    print(f"Point Rapport at it with:  export SPARK_REMOTE={server.url}", flush=True)
    print("Stop with Ctrl-C.", flush=True)
    server.wait()
    return 0


def cmd_engine_check(args: argparse.Namespace) -> int:
    import tempfile

    from jobs.engine import spark_session

    cfg = Config.load()
    with spark_session(cfg) as spark:
        print(f"engine: {cfg.engine}" + (f" ({cfg.spark_remote})" if cfg.engine == "remote" else ""))
        print(f"Spark version reported: {spark.version}")
        print(f"query: SELECT 1 + 1 -> {spark.sql('SELECT 1 + 1 AS two').first()['two']}")
        if cfg.engine == "spark-local":
            print("delta: skipped (the JVM engine here has no Delta jars)")
            return 0
        with tempfile.TemporaryDirectory(prefix="rapport-check-") as tmp:
            path = args.delta_path or f"{tmp}/check"
            spark.range(3).write.format("delta").mode("overwrite").save(path)
            rows = spark.read.format("delta").load(path).count()
            print(f"delta: wrote and read back {rows} rows at {path}")
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    cfg = Config.load()
    print(_table(cfg.describe(), ("setting", "value", "from")))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from jobs.demo import run_demo

    return run_demo(args)


def _window_args(parser: argparse.ArgumentParser, run_id: bool) -> None:
    """The landing window and gate options shared by ingest, refine and curate."""
    parser.add_argument("--from", dest="start", type=_moment,
                        help="first landing hour, YYYY-MM-DD[THH:MM] UTC (default: from the beginning)")
    parser.add_argument("--to", dest="end", type=_moment, help="end of the window, exclusive (default: no end)")
    if run_id:
        parser.add_argument("--run-id", help="id recorded with every row (default generated)")
    parser.add_argument("--no-gate", action="store_true", help="skip the quality gate (not for production runs)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rapport",
        description="Rapport: customer relationship timelines from clickstream, social and order events.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the engine and jobs do")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    g = sub.add_parser("generate", help="generate realistic landing data (deterministic for a seed)",
                       description="Generate clickstream, social and order events with reference data and a "
                                   "manifest.json of the true count of every kind of line.")
    g.add_argument("--customers", type=_positive, default=10_000, help="persons to simulate (default 10000)")
    g.add_argument("--days", type=_positive, default=7, help="days to simulate (default 7)")
    g.add_argument("--start", type=_date, default=date.today() - timedelta(days=7),
                   help="first day, YYYY-MM-DD (default a week ago)")
    g.add_argument("--seed", type=int, default=42, help="random seed; the same seed gives identical bytes")
    g.add_argument("--out", help="landing folder (default RAPPORT_LANDING_ROOT, ./landing)")
    g.add_argument("--bad-rate", type=float, default=0.01, help="share of records given a defect (default 0.01)")
    g.add_argument("--dup-rate", type=float, default=0.005, help="share of records duplicated (default 0.005)")
    g.add_argument("--shard-size", type=int, default=10_000, help="persons per shard and output part (default 10000)")
    g.add_argument("--workers", type=int, help="processes to use (default: cores, at most one per shard)")
    g.add_argument("--overwrite", action="store_true", help="replace data generated earlier in --out")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("ingest", help="take new landing files into bronze Delta tables (idempotent per file)",
                       description="Read landing files of the window into bronze/<source>. Files already in the "
                                   "ingest log are skipped; malformed lines and damaged gzip members are quarantined.")
    i.add_argument("--source", type=_sources, default=_sources("all"), help="clickstream, social, orders, a reference data set, reference or all (default)")
    _window_args(i, run_id=True)
    i.set_defaults(func=cmd_ingest)

    r = sub.add_parser("refine", help="bronze to silver: validate, deduplicate, conform, stitch identities, sessions",
                       description="Refine the bronze rows that landed in the window into silver tables, then rebuild "
                                   "identity_map and the touched sessions. Fails if a window does not reconcile.")
    _window_args(r, run_id=True)
    r.set_defaults(func=cmd_refine)

    cu = sub.add_parser("curate", help="silver to gold: timelines, relationship profiles, trends, campaigns",
                        description="Rebuild the gold tables for the customers and days the window touched "
                                    "(or everything with --full) and register them by name.")
    _window_args(cu, run_id=False)
    cu.add_argument("--full", action="store_true", help="rebuild every gold table from silver")
    cu.add_argument("--as-of", type=_date, help="date for recency and lifecycle (default: day after the newest event)")
    cu.set_defaults(func=cmd_curate)

    q = sub.add_parser("sql", help="run a SQL query on the lake's tables (gold.*, silver.*, ops.*)",
                       description="Tables are registered by name: gold.customer_timeline, gold.customer_relationship, "
                                   "gold.daily_product_trends, gold.daily_platform_engagement, gold.campaign_performance, "
                                   "silver.*, ops.audit, ops.quarantine …")
    q.add_argument("query", help='for example "SELECT * FROM gold.customer_relationship LIMIT 5"')
    q.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format (default table)")
    q.add_argument("--limit", type=int, default=1000, help="rows to print at most (default 1000; 0 for all)")
    q.set_defaults(func=cmd_sql)

    tl = sub.add_parser("timeline", help="print one customer's timeline for a person to read")
    tl.add_argument("customer", help="a customer_key (ck_…) or an email address")
    tl.add_argument("--limit", type=int, default=200, help="rows at most (default 200)")
    tl.add_argument("--format", choices=("table", "csv", "json"), default="table")
    tl.set_defaults(func=cmd_timeline)

    ql = sub.add_parser("quality", help="run the Great Expectations suites, or find their Data Docs")
    qsub = ql.add_subparsers(dest="quality_command", required=True, metavar="QUALITY_COMMAND")
    qv = qsub.add_parser("validate", help="run suites on demand (exit 1 if a critical expectation fails)")
    qv.add_argument("--table", help="one table, e.g. silver.orders")
    qv.add_argument("--layer", choices=("bronze", "silver", "gold"), help="every table of a layer")
    qv.add_argument("--from", dest="start", type=_moment, help="window start for window-scoped suites")
    qv.add_argument("--to", dest="end", type=_moment, help="window end")
    qv.set_defaults(func=cmd_quality_validate)
    qd = qsub.add_parser("docs", help="say where the Data Docs site is (build it if missing)")
    qd.set_defaults(func=cmd_quality_docs)

    e = sub.add_parser("engine", help="run or check the Spark Connect engine")
    esub = e.add_subparsers(dest="engine_command", required=True, metavar="ENGINE_COMMAND")
    serve = esub.add_parser("serve", help="run a Sail Spark Connect server for other processes (SPARK_REMOTE)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=15002, help="port (default 15002; 0 picks a free one)")
    serve.set_defaults(func=cmd_engine_serve)
    check = esub.add_parser("check", help="start or reach the configured engine and run a query and a Delta round trip")
    check.add_argument("--delta-path", help="where to write the check table (default a temporary folder)")
    check.set_defaults(func=cmd_engine_check)

    x = sub.add_parser("export", help="publish gold as snapshots on S3 for recommendation services (or verify one)",
                       description="Publish interactions and customer_features (and timelines with --timelines) "
                                   "under RAPPORT_EXPORT_URI/<dataset>/snapshot=<time>/: data files, then manifest.json, "
                                   "then _SUCCESS. Readers trust a snapshot only with both. Refuses after a failed "
                                   "gold quality gate; keeps the newest RAPPORT_EXPORT_KEEP snapshots.")
    x.add_argument("--dataset", action="append", choices=("interactions", "customer_features", "timelines"),
                   help="a dataset to publish (repeatable; default interactions and customer_features)")
    x.add_argument("--timelines", action="store_true", help="also publish per-customer timelines as JSON lines")
    x.add_argument("--format", choices=("parquet", "jsonl"), help="file format (default RAPPORT_EXPORT_FORMAT, parquet)")
    x.add_argument("--keep", type=_positive, help="complete snapshots to keep per dataset (default RAPPORT_EXPORT_KEEP, 7)")
    x.add_argument("--force", action="store_true", help="publish even if gold has not changed since the last snapshot")
    x.set_defaults(func=cmd_export)
    xsub = x.add_subparsers(dest="export_command", metavar="EXPORT_COMMAND")
    xv = xsub.add_parser("verify", help="check a snapshot against its manifest: files, sizes, SHA-256, rows, schema")
    xv.add_argument("snapshot", help="s3://bucket/prefix/<dataset>/snapshot=<time>")
    xv.set_defaults(func=cmd_export_verify)
    xl = xsub.add_parser("list", help="every snapshot of every dataset, complete or not")
    xl.add_argument("uri", nargs="?", help="s3://bucket/prefix (default RAPPORT_EXPORT_URI)")
    xl.set_defaults(func=cmd_export_list)

    b = sub.add_parser("bench", help="measure the pipeline by stage and scale, against peers, and day by day",
                       description="Generate data at several scales, run the pipeline on the embedded engine and "
                                   "record per stage wall time, events/s, peak memory and bytes; race the gold stage "
                                   "on the embedded engine, JVM Spark and DuckDB; run daily batches one after another. "
                                   "Writes results.json, results.md and chart.png.")
    b.add_argument("--scales", type=_counts, default=(100_000, 1_000_000),
                   help="event counts to run at (default 100000,1000000)")
    b.add_argument("--large", action="store_true", help="add the 5,000,000-event scale (about 15 min more)")
    b.add_argument("--repeats", type=_positive, default=3, help="runs per measurement; medians are reported (default 3)")
    b.add_argument("--days", type=_positive, default=7, help="days the generated data spans (default 7)")
    b.add_argument("--peers", type=lambda v: tuple(p for p in v.split(",") if p), default=("embedded", "jvm", "duckdb"),
                   help="engines to race on the gold stage: embedded,jvm,duckdb (default all; empty for none)")
    b.add_argument("--incremental-days", type=int, default=14, help="daily batches to run one after another (default 14; 0 skips)")
    b.add_argument("--incremental-events", type=_positive, default=50_000, help="events per daily batch (default 50000)")
    b.add_argument("--out", default="bench", help="where results go (default ./bench)")
    b.add_argument("--workdir", default=".bench", help="scratch space for data and lakes (default ./.bench)")
    b.add_argument("--keep-data", action="store_true", help="keep the generated data and lakes in --workdir")
    b.set_defaults(func=cmd_bench)

    c = sub.add_parser("config", help="show the effective configuration")
    csub = c.add_subparsers(dest="config_command", required=True, metavar="CONFIG_COMMAND")
    show = csub.add_parser("show", help="every setting, its value (secrets masked) and where it came from")
    show.set_defaults(func=cmd_config_show)

    d = sub.add_parser("demo", help="generate a small data set and run everything end to end on the embedded engine")
    d.add_argument("--customers", type=_positive, default=2_000, help="persons to simulate (default 2000)")
    d.add_argument("--days", type=_positive, default=14, help="days to simulate (default 14)")
    d.add_argument("--start", type=_date, default=date(2026, 11, 1), help="first day (default 2026-11-01)")
    d.add_argument("--workdir", default="demo", help="folder for landing/ and lake/ (default ./demo)")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from jobs.bronze.ingest import ReconciliationError
    from jobs.engine import EngineError
    from jobs.lake import MissingTableError
    from jobs.quality.gate import QualityGateError
    from jobs.export.snapshot import ExportError
    from jobs.generate import GeneratorError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, GeneratorError, EngineError, MissingTableError, ExportError) as exc:
        print(f"rapport: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ReconciliationError as exc:
        print(f"rapport: reconciliation failed: {exc}", file=sys.stderr)
        return 1
    except QualityGateError as exc:
        print(f"rapport: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
