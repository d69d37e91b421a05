"""The ``rapport`` command: one entry point for people, Makefile targets and Airflow tasks.

Each subcommand is a thin wrapper over a job's ``run``/library function, grouped by what it is
for: ``pipeline`` builds the lake, ``serving`` reads and publishes it, ``operations`` runs,
checks and measures it. Errors that a person can fix (configuration, parameters, an
unreachable engine) are printed as one clear line and exit with status 2, never as a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, timedelta

from jobs.cli.common import EXIT_USER_ERROR, _counts, _date, _moment, _positive, _sources, _window_args
from jobs.cli.operations import cmd_bench, cmd_config_show, cmd_engine_check, cmd_engine_serve
from jobs.cli.pipeline import (cmd_curate, cmd_demo, cmd_generate, cmd_ingest, cmd_landing_check, cmd_quality_docs,
                               cmd_quality_validate, cmd_refine)
from jobs.cli import collect, identity, quarantine, report
from jobs.cli.privacy import cmd_privacy, cmd_privacy_list, cmd_privacy_rotate_key, cmd_privacy_verify
from jobs.cli.serving import cmd_export, cmd_export_list, cmd_export_verify, cmd_sql, cmd_timeline
from jobs.config import ConfigError


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
    g.add_argument("--late-reference", action="append", default=[], metavar="EXTRACT=DAYS",
                   help="land a reference extract DAYS days late, after the events it describes (repeatable), "
                        "e.g. campaign_posts=3")
    g.add_argument("--overwrite", action="store_true", help="replace data generated earlier in --out")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.set_defaults(func=cmd_generate)

    i = sub.add_parser("ingest", help="take new landing files into bronze Delta tables (idempotent per file)",
                       description="Read landing files of the window into bronze/<source>. Files already in the "
                                   "ingest log are skipped; malformed lines and damaged gzip members are quarantined.")
    i.add_argument("--source", type=_sources, default=_sources("all"), help="clickstream, social, orders, a reference data set, reference or all (default)")
    _window_args(i, run_id=True)
    i.set_defaults(func=cmd_ingest)

    lc = sub.add_parser("landing", help="inspect a landing root before the first run (writes nothing)")
    lsub = lc.add_subparsers(dest="landing_command", required=True, metavar="LANDING_COMMAND")
    chk = lsub.add_parser("check", help="per source: layout, files, dates, how a sample parses, what would not be read",
                          description="Read a sample of each source's files as ingest and refine would, without "
                                      "writing anything. Exit 1 when a source RAPPORT_SOURCES requires (or, if it "
                                      "requires none, every source) has nothing readable.")
    chk.add_argument("--source", type=_sources, default=_sources("all"), help="a source, reference or all (default)")
    chk.add_argument("--sample", type=_positive, default=20, help="files per source the engine reads (default 20)")
    chk.set_defaults(func=cmd_landing_check)

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

    q = sub.add_parser("sql", help="run a read-only SQL query on the lake's tables (gold.*, silver.*, ops.*)",
                       description="One read-only query (SELECT, WITH, set operations); writes are refused. Tables are "
                                   "registered by name: gold.customer_timeline, gold.customer_relationship, "
                                   "gold.daily_product_trends, gold.daily_platform_engagement, gold.campaign_performance, "
                                   "silver.*, ops.audit … Bronze and ops.quarantine hold raw personal data: they need "
                                   "--role engineer.")
    q.add_argument("--role", choices=("analyst", "engineer"),
                   help="analyst (default, RAPPORT_SQL_ROLE): silver, gold and ops without raw data; engineer: all")
    q.add_argument("query", help='for example "SELECT * FROM gold.customer_relationship LIMIT 5"')
    q.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format (default table)")
    q.add_argument("--limit", type=int, default=1000, help="rows to print at most (default 1000; 0 for all)")
    q.set_defaults(func=cmd_sql)

    tl = sub.add_parser("timeline", help="print one customer's timeline for a person to read")
    tl.add_argument("customer", help="a customer_key (ck_…) or an email address")
    tl.add_argument("--limit", type=int, default=200, help="rows at most (default 200)")
    tl.add_argument("--format", choices=("table", "csv", "json"), default="table")
    tl.add_argument("--as-of", type=_moment, help="the timeline as known at this time: the gold the last curate known "
                                                  "by then left (within the 7 days of versions kept)")
    tl.set_defaults(func=cmd_timeline)

    ql = sub.add_parser("quality", help="run the Great Expectations suites, or find their Data Docs")
    qsub = ql.add_subparsers(dest="quality_command", required=True, metavar="QUALITY_COMMAND")
    qv = qsub.add_parser("validate", help="run suites on demand (exit 1 if a critical expectation fails)")
    qv.add_argument("--table", help="one table, e.g. silver.orders")
    qv.add_argument("--layer", choices=("bronze", "silver", "gold"), help="every table of a layer")
    qv.add_argument("--from", dest="start", type=_moment, help="window start for window-scoped suites")
    qv.add_argument("--to", dest="end", type=_moment, help="window end")
    qv.add_argument("--full", action="store_true",
                    help="every suite on its whole table (what the weekly gate.full does); by default a suite reads "
                         "its scope: the window's rows, or the partitions changed since the last passed gate")
    qv.set_defaults(func=cmd_quality_validate)
    qd = qsub.add_parser("docs", help="say where the Data Docs site is (build it if missing)")
    qd.set_defaults(func=cmd_quality_docs)

    pv = sub.add_parser("privacy", help="erase or suppress a person, with proof (GDPR/CCPA)",
                        description="Requests are recorded in ops.privacy_requests with the person's identifiers as "
                                    "keyed hashes only, then processed at once (or by the rapport_privacy DAG with "
                                    "--later). Nothing raw is stored, logged or printed.")
    psub = pv.add_subparsers(dest="privacy_command", required=True, metavar="PRIVACY_COMMAND")
    for name, text in (("erase", "remove a person from every table, version, quarantine row and export, then prove it"),
                       ("suppress", "drop a person's future events on arrival"),
                       ("unsuppress", "take a person off the suppression list")):
        pc = psub.add_parser(name, help=text)
        pc.add_argument("--email", action="append", default=[], help="an email of the person (repeatable)")
        pc.add_argument("--phone", action="append", default=[], help="a phone number (repeatable)")
        pc.add_argument("--social", action="append", default=[], metavar="PLATFORM:HANDLE", help="a social handle")
        pc.add_argument("--customer-key", action="append", default=[], help="a customer key, ck_… (repeatable)")
        pc.add_argument("--reason", help="why (kept, scrubbed of personal data)")
        pc.add_argument("--later", action="store_true", help="only record it; the rapport_privacy DAG processes it")
        if name == "erase":
            pc.add_argument("--allow-return", action="store_true",
                            help="do not suppress: the person's later events are collected again")
        pc.set_defaults(func=cmd_privacy, kind=name)
    pver = psub.add_parser("verify", help="scan every file of the lake and the exports for a request's person again")
    pver.add_argument("request_id")
    pver.set_defaults(func=cmd_privacy_verify)
    plist = psub.add_parser("list", help="every request and its status")
    plist.set_defaults(func=cmd_privacy_list)
    prot = psub.add_parser("rotate-key", help="wrap every stored hash in a new key (RAPPORT_PII_KEY_NEXT), with proof",
                           description="Answers a leaked RAPPORT_PII_KEY: every hash and pseudonym in the lake is wrapped "
                                       "in the new key, table by table, and earlier versions are vacuumed; afterwards "
                                       "set RAPPORT_PII_KEY_RETIRED to the old key(s) and RAPPORT_PII_KEY to the new one.")
    prot.set_defaults(func=cmd_privacy_rotate_key)

    collect.add_parser(sub)
    quarantine.add_parser(sub)
    identity.add_parser(sub)
    report.add_parser(sub, _moment)

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
                   help="event counts to run at (default 100000,1000000; none to skip)")
    b.add_argument("--large", action="store_true", help="add the 5,000,000 and 10,000,000-event scales")
    b.add_argument("--repeats", type=_positive, default=3, help="runs per measurement; medians are reported (default 3)")
    b.add_argument("--days", type=_positive, default=7, help="days the generated data spans (default 7)")
    b.add_argument("--peers", type=lambda v: tuple(p for p in v.split(",") if p), default=("embedded", "jvm", "duckdb"),
                   help="engines to race on the gold stage: embedded,jvm,duckdb (default all; empty for none)")
    b.add_argument("--incremental-days", type=int, default=60, help="daily batches to run one after another (default 60; 0 skips)")
    b.add_argument("--incremental-events", type=_positive, default=20_000, help="events per daily batch (default 20000)")
    b.add_argument("--history-days", type=int, default=365,
                   help="days of history built in bulk before 3 daily runs, against 7 days (default 365; 0 skips)")
    b.add_argument("--collector-seconds", type=float, default=5.0,
                   help="seconds per collector load cell (default 5; 0 skips the collector)")
    b.add_argument("--freshness-seconds", type=float, default=180.0,
                   help="seconds of steady load on the collector while micro-batches run, measuring acknowledgement "
                        "to gold (default 180; 0 skips it)")
    b.add_argument("--freshness-rate", type=int, default=1000, help="events/s of that load (default 1000)")
    b.add_argument("--freshness-interval", type=float, default=60.0,
                   help="seconds from one micro-batch's start to the next, and the collector's file roll (default 60)")
    b.add_argument("--no-cluster", dest="cluster", action="store_false",
                   help="skip the extra run per scale on Sail's local-cluster mode")
    b.add_argument("--bounded-memory", default="512m",
                   help="the engine's memory pool for one more run at 1,000,000 events, whose lines are larger "
                        "(default 512m; empty skips)")
    b.add_argument("--out", default="bench", help="where results go (default ./bench)")
    b.add_argument("--workdir", default=".bench", help="scratch space for data and lakes (default ./.bench)")
    b.add_argument("--keep-data", action="store_true", help="keep the generated data and lakes in --workdir")
    b.add_argument("--compare-with", default=None, metavar="REV",
                   help="a git revision (commit, tag, branch) whose code builds a second lake from each scale's landing; "
                        "every row count, quarantine, audit and identity figure of the two is compared")
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
    d.add_argument("--orders-only", action="store_true",
                   help="an orders-only retailer: only a Shopify Admin API export of orders lands; prints the "
                        "relationship table it gets")
    d.add_argument("--via-collector", action="store_true",
                   help="send the generated clickstream through the collector with segment-analytics-python, and "
                        "ingest what the collector wrote")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from jobs.engine import EngineError
    from jobs.export.snapshot import ExportError
    from jobs.generate import GeneratorError
    from jobs.lake import MissingTableError
    from jobs.runs.guards import PromotionRefused
    from jobs.runs.report import ReconciliationError
    from jobs.runs.window import WindowError
    from jobs.privacy.person import RequestError
    from jobs.quality.gate import QualityGateError

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, GeneratorError, EngineError, MissingTableError, ExportError, WindowError, RequestError) as exc:
        print(f"rapport: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except PromotionRefused as exc:
        print(f"rapport: refused: {exc}", file=sys.stderr)
        return 1
    except ReconciliationError as exc:
        print(f"rapport: reconciliation failed: {exc}", file=sys.stderr)
        return 1
    except QualityGateError as exc:
        print(f"rapport: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from jobs.pii.keyring import missing_key

        if (message := missing_key(exc)) is None:
            raise
        print(f"rapport: error: {message}", file=sys.stderr)
        return EXIT_USER_ERROR
