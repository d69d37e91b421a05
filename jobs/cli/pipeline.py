"""``rapport generate|ingest|refine|curate|quality|demo``: build the lake, layer by layer, with its gates."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs.config import Config
from jobs.cli.common import EXIT_USER_ERROR, _table


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
        "reference: " + ", ".join(f"{k} {v['lines']:,}" for k, v in manifest["reference"].items()),
        f"manifest: {Path(out) / 'manifest.json'}",
    ])


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


def cmd_demo(args: argparse.Namespace) -> int:
    from jobs.demo import run_demo

    return run_demo(args)
