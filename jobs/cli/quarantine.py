"""``rapport quarantine list`` and ``rapport quarantine replay``: what was quarantined, and bringing it back."""

from __future__ import annotations

import argparse
import sys

from jobs.cli.common import EXIT_USER_ERROR, _moment, _table, window_of
from jobs.config import Config


def cmd_quarantine_list(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.lake import Lake
    from jobs.runs import lease
    from jobs.pipeline.replay import summary

    cfg = Config.load()
    with lease.reading(cfg, "rapport quarantine list"), spark_session(cfg) as spark:
        rows = summary(Lake(cfg, spark), args.source, window_of(args))
    if not rows:
        print("Nothing is quarantined" + (f" for {args.source}" if args.source else "") + ".")
        return 0
    print(_table([(s, r, f"{n:,}", f"{rp:,}", f"{g:,}") for s, r, n, rp, g in rows],
                 ("source", "reason", "rows", "replayed", "raw text gone")))
    print("\nDetails: rapport sql --role engineer \"SELECT detail, count(*) FROM ops.quarantine WHERE reason = '…' GROUP BY detail\"; "
          "bring rows back with `rapport quarantine replay --source S --reason R [--fix …]`.")
    return 0


def cmd_quarantine_replay(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.pipeline.replay import ReplayError, replay

    cfg = Config.load()
    try:
        with spark_session(cfg) as spark:
            r = replay(spark, cfg, source=args.source, reasons=tuple(args.reason), window=window_of(args),
                       fixes=tuple(args.fix or ()), again=args.again, run=not args.no_run, dry_run=args.dry_run)
    except ReplayError as exc:
        print(f"rapport: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    edits = f" with {', '.join(r.fixes)}" if r.fixes else " as they were"
    print(f"{r.source}, quarantined as {', '.join(r.reasons)}: {r.selected:,} rows; {r.already:,} replayed before "
          f"(--again replays them once more), {r.not_text:,} without raw text (retention, or not text).")
    if args.dry_run:
        print(f"Dry run: {r.replayed:,} lines would land again{edits}.")
        return 0
    if not r.replayed:
        print("Nothing to replay.")
        return 0
    print(f"Landed {r.replayed:,} lines again{edits}, in {len(r.files)} file(s) in the hours they first arrived "
          f"({r.window}), run {r.run_id}:")
    for f in r.files[:10]:
        print(f"  {f}")
    if len(r.files) > 10:
        print(f"  … and {len(r.files) - 10} more")
    if args.no_run:
        print(f"Not run (--no-run): run ingest, refine and curate with --from/--to covering {r.window}.")
        return 0
    again = ", ".join(f"{k} {v:,}" for k, v in sorted(r.quarantined.items())) or "none"
    print(f"Ingest, refine and curate of {r.window}: {r.silver:,} reached silver; quarantined again: {again}; "
          f"duplicates {r.duplicates:,}; the window's audit {'balances' if r.balanced else 'does NOT balance'}.")
    for g in r.gates:
        print(f"  gate failed: {g}", file=sys.stderr)
    return 0 if r.balanced and not r.gates else 1


def add_parser(sub) -> None:
    q = sub.add_parser("quarantine", help="what was quarantined, and replaying it once the cause is fixed",
                       description="Quarantined lines keep their raw text (until RAPPORT_RAW_RETENTION_DAYS) and why. "
                                   "`list` counts them by source and reason; `replay` lands them again, as they were "
                                   "or edited, in the hours they first arrived, and runs ingest, refine and curate "
                                   "over those hours so the window reconciles.")
    qsub = q.add_subparsers(dest="quarantine_command", required=True, metavar="QUARANTINE_COMMAND")
    ql = qsub.add_parser("list", help="quarantined rows by source and reason: how many, replayed, raw text gone")
    ql.add_argument("--source", help="one source (default all)")
    ql.add_argument("--from", dest="start", type=_moment, help="first landing hour (default: the beginning)")
    ql.add_argument("--to", dest="end", type=_moment, help="end of the landing window, exclusive")
    ql.set_defaults(func=cmd_quarantine_list)
    qr = qsub.add_parser("replay", help="land quarantined lines again (optionally edited) and run their hours",
                         description="Lines quarantined with the given reason(s) land again in the hours they first "
                                     "arrived, as files replay-<run>…, and ingest, refine and curate run over those "
                                     "hours. ops.replays records each; a line already replayed is skipped unless "
                                     "--again. Edits (--fix, repeatable, applied in order): path=JSON sets a field "
                                     "(properties.price=12.5, type='\"track\"'), path=@other.path copies one, -path "
                                     "removes one; parts are separated by dots, a number is a list index.")
    qr.add_argument("--source", required=True, help="the event source (clickstream, social, orders)")
    qr.add_argument("--reason", action="append", required=True, help="a quarantine reason (repeatable)")
    qr.add_argument("--fix", action="append", metavar="EDIT", help="path=JSON, path=@other.path or -path (repeatable)")
    qr.add_argument("--from", dest="start", type=_moment, help="only lines that first arrived from this hour")
    qr.add_argument("--to", dest="end", type=_moment, help="… and before this one")
    qr.add_argument("--again", action="store_true", help="replay lines that were replayed before, too")
    qr.add_argument("--no-run", action="store_true", help="land the copies only; run their hours yourself")
    qr.add_argument("--dry-run", action="store_true", help="count what would be replayed; write nothing")
    qr.set_defaults(func=cmd_quarantine_replay)
