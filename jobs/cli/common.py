"""What the ``rapport`` subcommands share: argument types, the exit status for a person's mistake, tables."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from jobs.text import table

EXIT_USER_ERROR = 2
_table = table  # (the name the commands use)


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


def _moment(value: str):
    from jobs.runs.window import WindowError, parse_moment

    try:
        return parse_moment(value)
    except WindowError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def window_of(args: argparse.Namespace):
    """The landing window of ``--from``/``--to``; an empty or reversed one is refused (WindowError)."""
    from jobs.runs.window import Window

    return Window(getattr(args, "start", None), getattr(args, "end", None))


def _sources(value: str) -> tuple[str, ...]:
    from schemas.sources import REFERENCE_SOURCES, SOURCE_NAMES

    if value == "all":
        return SOURCE_NAMES
    if value == "reference":
        return REFERENCE_SOURCES
    if value not in SOURCE_NAMES:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a source; use one of {', '.join(SOURCE_NAMES)}, reference or all")
    return (value,)


def _counts(value: str) -> tuple[int, ...]:
    if value.strip() in ("", "0", "none"):
        return ()  # no scale: e.g. only the incremental part of the benchmark
    try:
        counts = tuple(int(float(v)) for v in value.split(",") if v.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of event counts, e.g. 100000,1000000")
    return counts


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


def _window_args(parser: argparse.ArgumentParser, run_id: bool) -> None:
    """The landing window and gate options shared by ingest, refine and curate."""
    parser.add_argument("--from", dest="start", type=_moment,
                        help="first landing hour, YYYY-MM-DD[THH:MM] UTC (default: from the beginning)")
    parser.add_argument("--to", dest="end", type=_moment, help="end of the window, exclusive (default: no end)")
    if run_id:
        parser.add_argument("--run-id", help="id recorded with every row (default generated)")
    parser.add_argument("--no-gate", action="store_true", help="skip the quality gate (not for production runs)")
