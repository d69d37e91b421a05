"""``rapport identity explain|history|unmerge|blocks|unblock``: why identifiers are one customer, and correcting it."""

from __future__ import annotations

import argparse
import sys

from jobs.cli.common import EXIT_USER_ERROR, _moment, _table
from jobs.config import Config
from jobs.runs import lease


def _when(value) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M:%S}"


def cmd_identity_explain(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.silver.identity_explain import UnknownIdentity, explain

    cfg = Config.load()
    with lease.reading(cfg, "rapport identity explain"), spark_session(cfg) as spark:
        try:
            e = explain(spark, cfg, args.who, args.as_of)
        except UnknownIdentity as exc:
            print(f"rapport: {exc}", file=sys.stderr)
            return EXIT_USER_ERROR
    when = f" as of {args.as_of:%Y-%m-%d %H:%M}" if args.as_of else ""
    print(f"Customer {e.customer_key}{when}: {len(e.identifiers)} identifier(s), named after {e.anchor}.")
    if e.shared:
        print(f"{e.asked} is shared (it links more accounts of one kind than RAPPORT_IDENTITY_MAX_LINKS): it joins "
              "nobody and is on no one's timeline.")
    shown = [e.asked] if e.asked else [i for i in e.identifiers if i != e.anchor]
    for identifier in shown:
        path = e.path(identifier)
        if identifier == e.anchor:
            print(f"\n{identifier} is the anchor itself.")
            continue
        if not path:
            print(f"\n{identifier}: no joining link (it is alone, or shared)")
            continue
        print(f"\n{identifier} joins {e.anchor} through {len(path)} link(s):")
        rows, at = [], identifier
        for link in path:
            nxt = link.other(at)
            rows.append((at, link.via, nxt, _when(link.valid_from),
                         f"{link.evidence_table}:{link.evidence_key}" if link.evidence_table else "(before evidence was kept)"))
            at = nxt
        print(_table(rows, ("from", "link", "to", "valid from", "first evidence (silver table:key)")))
    return 0


def cmd_identity_history(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.lake import Lake
    from jobs.silver.identity_history import history

    cfg = Config.load()
    with lease.reading(cfg, "rapport identity history"), spark_session(cfg) as spark:
        events = history(Lake(cfg, spark), args.customer)
    if not events:
        print(f"No merge, split or block touched {args.customer}.")
        return 0
    print(_table([(_when(e.known_at), e.action, e.customer_key, e.other_key or "", e.identifier or "",
                   f"{e.identifiers:,}", e.why or "") for e in events],
                 ("known at", "action", "customer", "other customer", "identifier", "identifiers", "why")))
    return 0


def cmd_identity_blocks(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.lake import Lake
    from jobs.silver.identity_history import blocks

    cfg = Config.load()
    with lease.reading(cfg, "rapport identity blocks"), spark_session(cfg) as spark:
        rows = blocks(Lake(cfg, spark), lifted=args.all)
    if not rows:
        print("No link is blocked." if not args.all else "No link was ever blocked.")
        return 0
    print(_table([(b.block_id, b.a, b.b, b.customer_key, _when(b.blocked_at), b.reason,
                   _when(b.unblocked_at) or "holds") for b in rows],
                 ("block", "end", "other end", "customer", "blocked at", "why", "lifted")))
    print("\nLift one with `rapport identity unblock BLOCK --reason TEXT`.")
    return 0


def _change(args: argparse.Namespace, action: str) -> int:
    from jobs.engine import spark_session
    from jobs.pipeline.identity import IdentityChangeRefused, unblock, unmerge

    cfg = Config.load()
    try:
        with spark_session(cfg) as spark:
            if action == "unmerge":
                c = unmerge(spark, cfg, args.customer_key, args.identifier, args.reason, curate=not args.no_curate)
            else:
                c = unblock(spark, cfg, args.block, args.reason, curate=not args.no_curate)
    except IdentityChangeRefused as exc:
        print(f"rapport: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    if action == "unmerge":
        new = sorted({c.keys_after.get(i, "?") for i in c.identifiers})
        print(f"Split {len(c.identifiers)} identifier(s) off {c.customer_key} (now {', '.join(new)}); "
              f"{len(c.blocks)} link(s) blocked: {', '.join(c.blocks)}. Known from {c.known_at:%Y-%m-%d %H:%M:%S}.")
    else:
        keys = sorted(set(c.keys_after.values()))
        print(f"Lifted block {c.blocks[0]}: its identifiers are now {', '.join(keys)}.")
    print("Gold rebuilt for the customers touched; the next export publishes them." if c.curated else
          "Gold not rebuilt (--no-curate, or nothing curated yet): the next curate rebuilds the customers touched.")
    return 0


def cmd_identity_unmerge(args: argparse.Namespace) -> int:
    return _change(args, "unmerge")


def cmd_identity_unblock(args: argparse.Namespace) -> int:
    return _change(args, "unblock")


def add_parser(sub) -> None:
    i = sub.add_parser("identity", help="why identifiers are one customer (now or as of a time), and correcting it")
    isub = i.add_subparsers(dest="identity_command", required=True)
    ex = isub.add_parser("explain", help="the customer an identifier or key is, and the links (with evidence) that join it")
    ex.add_argument("who", help="a customer key (ck_…), an email, or an identifier as silver.identity_map names it")
    ex.add_argument("--as-of", type=_moment, help="as known at this time (date or ISO datetime, UTC)")
    ex.set_defaults(func=cmd_identity_explain)
    hi = isub.add_parser("history", help="the merges, splits and blocks that touched a customer, in order")
    hi.add_argument("customer", help="a customer key (ck_…)")
    hi.set_defaults(func=cmd_identity_history)
    un = isub.add_parser("unmerge", help="split an identifier (and what only it connects) off a customer; block the "
                                         "links that joined them; rebuild their gold")
    un.add_argument("--customer-key", required=True, help="the customer (ck_…)")
    un.add_argument("--identifier", required=True, help="the identifier to split off, as identity explain names it")
    un.add_argument("--reason", required=True, help="why: kept with the block")
    un.add_argument("--no-curate", action="store_true", help="recompute identity only; the next curate rebuilds gold")
    un.set_defaults(func=cmd_identity_unmerge)
    bl = isub.add_parser("blocks", help="the links blocked by unmerges")
    bl.add_argument("--all", action="store_true", help="lifted blocks too")
    bl.set_defaults(func=cmd_identity_blocks)
    ub = isub.add_parser("unblock", help="lift a block: the link joins again, the customers are recomputed")
    ub.add_argument("block", help="the block id (identity blocks lists them)")
    ub.add_argument("--reason", required=True, help="why: kept with the block")
    ub.add_argument("--no-curate", action="store_true", help="recompute identity only; the next curate rebuilds gold")
    ub.set_defaults(func=cmd_identity_unblock)
