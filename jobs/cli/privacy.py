"""``rapport privacy erase|suppress|unsuppress|verify|list``: a person's right to erasure, with proof."""

from __future__ import annotations

import argparse
import json
import sys

from jobs.cli.common import EXIT_USER_ERROR, _table
from jobs.config import Config


def cmd_privacy(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.pipeline.runner import run_step
    from jobs.runs.window import Window
    from jobs.privacy import requests
    from jobs.privacy.person import hash_identifiers

    cfg = Config.load()
    with spark_session(cfg) as spark:
        identifiers = hash_identifiers(spark, cfg, args.email, args.phone, args.social, args.customer_key)
        request_id = requests.record(spark, cfg, args.kind, identifiers, args.reason,
                                     allow_return=getattr(args, "allow_return", False))
        print(f"Recorded privacy request {request_id} ({args.kind}, {len(identifiers)} identifier(s), stored as keyed "
              "hashes only).")
        if args.later:
            print("It is processed by the next run of the rapport_privacy DAG (or `rapport privacy list`).")
            return 0
        run_step(spark, cfg, "privacy", Window(), request_id=request_id)
        from jobs.lake import Lake

        row = requests.get(Lake(cfg, spark), request_id)
    return _print_request(row)


def _print_request(row: dict) -> int:
    state = json.loads(row.get("detail") or "{}")
    print(f"Request {row['request_id']}: {row['status']} ({row['kind']}), {len(row.get('customer_keys') or [])} "
          f"customer(s), {len(state.get('resolved') or [])} identifier(s)"
          + (f", {len(row.get('shared_kept') or [])} shared identifier(s) kept" if row.get("shared_kept") else ""))
    if state.get("rows"):
        print(_table(sorted((k, f"{v:,}") for k, v in state["rows"].items()), ("table", "rows erased")))
        print(f"Vacuumed {len(state.get('vacuumed', []))} tables ({state.get('files_removed', 0):,} old files); "
              f"{len(state.get('snapshots_removed', []))} export snapshots deleted, "
              f"{len(state.get('snapshots_published', []))} published anew.")
    if state.get("at_source"):
        print(f"{len(state['at_source'])} landing file(s) still hold the person; Rapport never reads a taken file "
              "again, and their owner should delete or rewrite them (listed in the proof).")
    if row.get("proof"):
        print(f"Proof: {row['proof']}")
    if row["status"] == "failed":
        print(f"rapport: the request failed: {state.get('error') or str(state.get('found', '?')) + ' places still hold the person'}",
              file=sys.stderr)
        return 1
    return 0


def cmd_privacy_verify(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.lake import Lake
    from jobs.privacy import requests
    from jobs.privacy.verify import verify, write_report

    cfg = Config.load()
    with spark_session(cfg) as spark:
        row = requests.get(Lake(cfg, spark), args.request_id)
        if row is None:
            print(f"rapport: no privacy request {args.request_id}", file=sys.stderr)
            return EXIT_USER_ERROR
        proof = verify(spark, cfg, args.request_id, requests._person(row))
        where = write_report(cfg, proof)
    print(f"Scanned {proof.where['files']:,} files ({proof.where['bytes']:,} bytes): "
          + ("nothing of the person was found." if proof.clean else f"{len(proof.found)} places still hold them:"))
    for f in proof.found[:20]:
        print(f"  {f['path']}: {f['kind']} {f['what']}")
    if proof.at_source:
        print(f"{len({f['path'] for f in proof.at_source})} landing file(s) still hold the person (listed in the proof).")
    print(f"Proof: {where}")
    return 0 if proof.clean else 1


def cmd_privacy_list(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.lake import Lake

    cfg = Config.load()
    with spark_session(cfg) as spark:
        lake = Lake(cfg, spark)
        rows = [] if not lake.exists("ops.privacy_requests") else [
            (r.request_id, r.kind, r.status, f"{r.received_at:%Y-%m-%d %H:%M}", f"{r.status_at:%Y-%m-%d %H:%M}",
             len(r.customer_keys or []), r.proof or "")
            for r in lake.read("ops.privacy_requests").orderBy("received_at").collect()]  # the requests: what is listed
    print(_table(rows, ("request", "kind", "status", "received", "since", "customers", "proof")) if rows
          else "No privacy requests.")
    return 0


def cmd_privacy_rotate_key(args: argparse.Namespace) -> int:
    from jobs.engine import spark_session
    from jobs.privacy.rotation import RotationError, rotate

    cfg = Config.load()
    print(f"Rotating the pseudonymisation key of {cfg.lake_root}: every stored hash is wrapped in RAPPORT_PII_KEY_NEXT.")
    with spark_session(cfg) as spark:
        try:
            r = rotate(spark, cfg)
        except RotationError as exc:
            print(f"rapport: rotation refused: {exc}", file=sys.stderr)
            return 1
    print(f"Rotated {len(r.tables)} tables ({sum(r.tables.values()):,} rows) in {r.seconds:.0f}s; {r.files_removed:,} files "
          f"of earlier versions removed; stored validation results and Data Docs pages removed (the next gate writes new "
          f"ones).")
    print(f"Proof: {r.old_values:,} distinct hashes and pseudonyms stored before; found afterwards: "
          f"{sum(r.old_values_left.values())} (every rewritten table searched).")
    print(f"Key chain, oldest first: {' -> '.join(r.new_chain)} (key ids). Set now, wherever Rapport or its engine runs:\n"
          "  RAPPORT_PII_KEY_RETIRED=<the old key(s), oldest first, comma-separated>\n"
          "  RAPPORT_PII_KEY=<the new key>   (and unset RAPPORT_PII_KEY_NEXT)")
    return 0
