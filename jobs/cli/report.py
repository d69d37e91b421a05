"""``rapport report``: the marketing report; ``rapport report customer KEY_OR_EMAIL``: one customer's page."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from jobs.cli.common import EXIT_USER_ERROR
from jobs.config import Config
from jobs.runs import lease


def _uri(location: str) -> str:
    return location if location.startswith("s3://") else Path(location).resolve().as_uri()


def cmd_report(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.lake import Lake
    from jobs.pipeline.runner import run_step
    from jobs.runs.window import Window

    cfg = Config.load()
    with spark_session(cfg) as spark:
        if not Lake(cfg, spark).exists("gold.customer_relationship"):
            print("rapport: there is no gold yet: run `rapport curate` first", file=sys.stderr)
            return EXIT_USER_ERROR
        report = run_step(spark, cfg, "report", Window(), day=args.date, out=args.out)
    print(f"Report for {report.day}: {_uri(report.location)} ({report.bytes / 1024:,.0f} KB, {report.seconds:.1f}s)")
    if report.published:
        print(f"Published: {report.published}")
    return 0


def cmd_report_customer(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.report.build import customer_page
    from jobs.serving.timeline import NotACustomer

    cfg = Config.load()
    with lease.reading(cfg, "rapport report customer"), spark_session(cfg) as spark:
        try:
            target = customer_page(spark, cfg, args.who, args.out)
        except NotACustomer as exc:
            print(f"rapport: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
    print(f"Customer page: {_uri(target)}")
    return 0


def add_parser(sub, moment) -> None:
    r = sub.add_parser("report", help="the marketing report (HTML, self-contained), or one customer's page",
                       description="Builds one HTML file from gold with every chart and table inline (no network "
                                   "needed to open it): trends, networks, campaign consistency, relationship health, "
                                   "freshness and quality. `rapport report customer KEY_OR_EMAIL` renders one "
                                   "customer's timeline.")
    r.add_argument("--date", type=lambda v: date.fromisoformat(v), help="the report's day (default: the latest)")
    r.add_argument("--out", help="where to write it (default <lake>/_reports/<date>/index.html)")
    r.set_defaults(func=cmd_report)
    rsub = r.add_subparsers(dest="report_command", metavar="customer")
    c = rsub.add_parser("customer", help="one customer's timeline as a page (by customer key or email)")
    c.add_argument("who", metavar="KEY_OR_EMAIL")
    c.add_argument("--out", help="where to write it (default <lake>/_reports/customers/<key>.html)")
    c.set_defaults(func=cmd_report_customer)
