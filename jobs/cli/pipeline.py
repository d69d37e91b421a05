"""``rapport generate|ingest|refine|curate|quality|demo``: build the lake, stage by stage, with its gates.

Every command runs the registered stage (``jobs.pipeline.runner``): the stage's checks on its upstream
gates and reconciliation, its steps, then its gate.
"""

from __future__ import annotations

import argparse
import sys

from jobs.cli.common import EXIT_USER_ERROR, _table, window_of
from jobs.config import Config


def cmd_generate(args: argparse.Namespace) -> int:
    from jobs.generate import Params, generate
    from jobs.generate.run import format_generate_summary

    late = []
    for item in args.late_reference:
        name, _, days = item.partition("=")
        late.append((name.strip(), int(days) if days.strip().isdigit() else -1))
    params = Params(customers=args.customers, days=args.days, start=args.start, seed=args.seed,
                    bad_rate=args.bad_rate, dup_rate=args.dup_rate, shard_size=args.shard_size,
                    late_reference=tuple(late))
    out = args.out or Config.load().landing_root
    manifest = generate(params, out, workers=args.workers, overwrite=args.overwrite,
                        progress=False if args.no_progress else None)
    print(format_generate_summary(manifest, out))
    return 0


def _print_gate(result, layer: str, args: argparse.Namespace, cfg: Config) -> None:
    if getattr(args, "no_gate", False):
        print(f"quality gate for {layer}: skipped (--no-gate); the next stage will refuse this window until it passes")
    elif result.gate is not None:
        g = result.gate
        na = f", not applicable: {', '.join(g.not_applicable)}" if g.not_applicable else ""
        print(f"quality gate for {layer}: passed ({g.expectations} expectations"
              + (f", {g.warnings} warnings recorded in ops.quality_results" if g.warnings else "") + na + ")")
        _render_docs(cfg)


def _render_docs(cfg: Config) -> None:
    """The Data Docs pages of the gates this command ran (a gate stores its results; pages are rendered here)."""
    from jobs.quality.docs import docs_index, render_pending

    pages = render_pending(cfg)
    if pages:
        print(f"Data Docs: {pages} page(s) rendered; overview {docs_index(cfg).as_uri()}")


def cmd_ingest(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.pipeline.runner import run_stage

    cfg = Config.load()
    window = window_of(args)
    with spark_session(cfg) as spark:
        result = run_stage(spark, cfg, "ingest", window, only=[f"ingest.{s}" for s in args.source],
                           gate=not args.no_gate, run_id=args.run_id)
        rows = []
        for r in result.reports.values():
            quarantined = ", ".join(f"{k} {v:,}" for k, v in sorted(r.quarantined.items())) or "-"
            rows.append((r.source, r.files_found, r.files_skipped, r.files_taken, f"{r.lines:,}", f"{r.bronze_rows:,}",
                         quarantined))
        print(f"Ingested landing files from {cfg.landing_root} ({window}) into bronze:")
        print(_table(rows, ("source", "files", "already taken", "taken now", "lines", "bronze rows", "quarantined")))
        _print_gate(result, "bronze", args, cfg)
    return 0


def cmd_landing_check(args: argparse.Namespace) -> int:
    from jobs.bronze.check import check, survey
    from jobs.engine import spark_session

    cfg = Config.load()
    with spark_session(cfg) as spark:
        checks = check(spark, cfg, list(args.source), args.sample)
    print(f"Landing root {cfg.landing_root} (nothing was written):")
    rows = [(c.source, c.layout, f"{c.files:,}", f"{c.bytes / 2**20:,.1f}", f"{c.first_day or '-'} .. {c.last_day or '-'}",
             f"{c.sampled_files}", f"{c.readable:,} / {c.records:,}", f"{sum(c.unrecognised.values()):,}") for c in checks]
    print(_table(rows, ("source", "layout", "files", "MB", "arrival days", "sampled files", "readable records",
                        "files not read")))
    for c in checks:
        for reason, n in c.reasons.most_common(5):
            print(f"\n{c.source}: {n:,} sampled records would be quarantined as {reason}, e.g.")
            for example in c.examples.get(reason, []):
                print(f"    {example}")
        for reason, n in c.unrecognised.most_common():
            print(f"\n{c.source}: {n:,} files will not be read: {reason}, e.g. " + ", ".join(
                c.unrecognised_examples.get(reason, [])))
    stray = survey(cfg)
    for reason, n in stray.most_common():
        print(f"\n{n:,} files under the landing root will not be read: {reason}")
    required = cfg.required_sources()
    empty = [c.source for c in checks if not c.has_readable and (not required or c.source in required)]
    if required and empty:
        print(f"\nrapport: required source(s) with nothing readable: {', '.join(empty)} (RAPPORT_SOURCES)", file=sys.stderr)
        return 1
    if not any(c.has_readable for c in checks):
        print("\nrapport: nothing readable in any source; check RAPPORT_LANDING_ROOT, RAPPORT_LANDING_PATHS and "
              "RAPPORT_LANDING_LAYOUTS", file=sys.stderr)
        return 1
    return 0


def cmd_refine(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.pipeline.runner import run_stage

    cfg = Config.load()
    cfg.require_pii_key()
    window = window_of(args)
    with spark_session(cfg) as spark:
        result = run_stage(spark, cfg, "refine", window, gate=not args.no_gate, run_id=args.run_id)
        print(format_refine_summary(result.reports, window))
        _print_gate(result, "silver", args, cfg)
    return 0


def format_refine_summary(reports: dict, window) -> str:
    from schemas.sources import EVENT_SOURCES

    rows, reasons = [], []
    for source in EVENT_SOURCES:
        r = reports[f"refine.{source}"]
        rows.append((source, f"{r.landed:,}", f"{r.silver_rows:,}", f"{r.new_rows:,}", f"{r.duplicates:,}",
                     f"{sum(r.quarantined.values()):,}", "yes" if r.balanced else "NO"))
        reasons.append(f"  {source}: " + (", ".join(f"{k} {v:,}" for k, v in sorted(r.quarantined.items())) or "none"))
    ident, sessions = reports["refine.identity"], reports["refine.sessions"]
    return "\n".join([
        f"Refined bronze into silver for landing hours {window}:",
        _table(rows, ("source", "landed", "silver", "new now", "duplicates", "quarantined", "balanced")),
        "quarantined by reason (ops.quarantine):", *reasons,
        f"identity: {ident.identifiers:,} identifiers -> {ident.customers:,} customers "
        f"({ident.merges} merges this run, {ident.shared} shared identifiers kept from merging)",
        f"sessions: {sessions.sessions:,} sessions on the dates this run touched",
    ])


def cmd_curate(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.pipeline.runner import run_stage

    cfg = Config.load()
    window = window_of(args)
    with spark_session(cfg) as spark:
        result = run_stage(spark, cfg, "curate", window, gate=not args.no_gate, full=args.full, as_of=args.as_of)
        r = result.reports["curate"]
        how = ("full rebuild" if r.rebuilt_whole else
               f"incremental: {len(r.dates_rewritten)} date(s) of interactions rewritten, "
               f"customers' facts: {r.customers_appended:,} appended to, {r.customers_since:,} replaced from a day, "
               f"{r.customers_adjusted:,} moved by changed orders, {r.customers_rebuilt:,} recomputed whole, "
               f"{r.customers_gone:,} merged away")
        print(f"Curated gold ({how}, as of {r.as_of}): {r.interactions:,} interactions for {r.customers:,} customers."
              + (f" Trend dates touched: {r.dates[0]} .. {r.dates[-1]}." if r.dates else ""))
        _print_gate(result, "gold", args, cfg)
    print("Query it: rapport sql \"SELECT * FROM gold.customer_relationship LIMIT 10\"")
    return 0


def cmd_quality_validate(args: argparse.Namespace) -> int:
    """Run a layer's gate (or one table's suite) for a window, on demand: recorded like any gate run."""
    from jobs.engine import spark_session
    from jobs.pipeline.runner import run_step
    from jobs.quality.gate import QualityGateError
    from jobs.quality.suites import load_suites

    cfg = Config.load()
    suites = load_suites(directory=cfg.suites_dir())
    if args.table:
        suites = [s for s in suites if s.table == args.table]
        if not suites:
            known = ", ".join(s.table for s in load_suites(directory=cfg.suites_dir()))
            print(f"rapport: error: no suite for {args.table}; suites exist for {known}", file=sys.stderr)
            return EXIT_USER_ERROR
    elif args.layer:
        suites = [s for s in suites if s.layer == args.layer]
    window = window_of(args)
    failed = False
    rows = []
    with spark_session(cfg) as spark:
        for layer in sorted({s.layer for s in suites}, key=("bronze", "silver", "gold").index):
            tables = [s.table for s in suites if s.layer == layer]
            try:
                report = run_step(spark, cfg, f"gate.{layer}", window, tables=tables, full=args.full)
                rows.append((layer, "passed", report.expectations, ", ".join(report.not_applicable) or "-"))
            except QualityGateError as exc:
                failed = True
                rows.append((layer, "FAILED", "", ""))
                print(str(exc), file=sys.stderr)
    print(_table(rows, ("layer", "gate", "expectations", "not applicable")))
    from jobs.quality.docs import docs_index

    _render_docs(cfg)
    print(f"Recorded in ops.quality_gates for landing window {window}. Overview: {docs_index(cfg).as_uri()}")
    return 1 if failed else 0


def cmd_quality_docs(args: argparse.Namespace) -> int:
    from jobs.quality import docs

    cfg = Config.load()
    index = docs.docs_index(cfg)
    if not index.exists():
        print(f"No quality gate has run for {cfg.lake_root} yet; run `rapport refine` or `rapport quality validate`.")
        return 0
    print(f"Quality overview (opens offline): {index.as_uri()}")
    from jobs.engine import spark_session

    with spark_session(cfg) as spark:
        ge_index = docs.build_index(spark, cfg)
    if ge_index is not None:
        print(f"Great Expectations Data Docs, index rebuilt from every stored result: {ge_index.as_uri()} (its index "
              "needs internet access for its scripts; the overview links each validation page directly)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from jobs.demo import run_demo

    return run_demo(args)
