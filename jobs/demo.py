"""``rapport demo``: everything Rapport can do so far, end to end, on the embedded engine.

Generates a small landing zone under ``<workdir>/landing``, then runs the pipeline the
way production does, through Airflow: ``dag.test()`` of rapport_ingest, rapport_refine and
rapport_curate (and rapport_export) against a throwaway metadata DB in ``<workdir>/airflow``,
building ``<workdir>/lake``. Without ``RAPPORT_EXPORT_URI``, exports go to a loopback S3
(moto's server, if installed) that lives only as long as the demo. It checks silver against the generator's manifest and prints what it
made: bronze, reconciliation, quality gates, stages, a sample timeline, the top trending
products and campaign consistency. It stops everything it starts, so it
ends by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import secrets
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from jobs.config import Config


def run_demo(args: argparse.Namespace) -> int:
    from jobs import catalog
    from jobs.airflow_local import run_chain
    from jobs.generate.run import format_generate_summary
    from jobs.engine import spark_session
    from jobs.generate import Params, generate
    from schemas.sources import EVENT_SOURCES
    from jobs.quality import docs

    started = time.perf_counter()
    work = Path(args.workdir).resolve()
    base = Config.load()
    key = base.pii_key
    if not key:
        key = secrets.token_hex(32)
        print("RAPPORT_PII_KEY is not set: the demo hashes PII with a throwaway key (its lake is rebuilt every run).")
    cfg = dataclasses.replace(base, lake_root=str(work / "lake"), landing_root=str(work / "landing"),
                              engine="embedded", spark_remote=None, pii_key=key)
    shutil.rmtree(cfg.lake_root, ignore_errors=True)
    print(f"== 1. generate ({args.customers:,} customers, {args.days} days)")
    manifest = generate(Params(customers=args.customers, days=args.days, start=args.start), cfg.landing_root,
                        overwrite=True)
    print(format_generate_summary(manifest, cfg.landing_root))
    if args.orders_only:
        files = as_orders_export(Path(cfg.landing_root))
        print(f"\nAn orders-only retailer: clickstream, social and reference data removed; the orders rewritten as "
              f"a Shopify Admin API export (bare order objects, one per line) in {files} files.")

    os.environ.update(RAPPORT_LAKE_ROOT=cfg.lake_root, RAPPORT_LANDING_ROOT=cfg.landing_root, RAPPORT_PII_KEY=key,
                      RAPPORT_ENGINE="embedded")
    collected = _via_collector(work, Path(cfg.landing_root), args) if args.via_collector else None
    os.environ.pop("SPARK_REMOTE", None)
    shutil.rmtree(work / "airflow", ignore_errors=True)
    end = args.start + timedelta(days=args.days + 5)  # a manual run at this date takes everything landed before it
    if collected:  # the collector's files land today
        end = max(end, datetime.now(timezone.utc).date() + timedelta(days=1))
    with contextlib.ExitStack() as stack:  # the loopback S3, if any, lives until the erasure republished exports
        exports = _export_target(stack, base)
        chain = ("rapport_ingest", "rapport_refine", "rapport_curate") + (("rapport_export",) if exports else ())
        print(f"\n== 2. the pipeline through Airflow: {' -> '.join(chain)} (dag.test)")
        runs = run_chain(work / "airflow", datetime(end.year, end.month, end.day, tzinfo=timezone.utc), dags=chain)
        print("DAG runs: " + ", ".join(f"{dag} {state}" for dag, state in runs.items())
              + f" (metadata DB: {work / 'airflow' / 'airflow.db'})")
        if exports:
            _print_exports(Config.load())

        cfg = Config.load()  # the environment now names the lake, the landing zone and the exports
        with spark_session(cfg) as spark:
            catalog.register(spark, cfg)
            if args.orders_only:
                _print_orders_only(spark, cfg)
                for line in _print_report(spark, cfg, None):
                    print(line)
                print(f"Demo finished in {time.perf_counter() - started:.1f}s. Landing: {cfg.landing_root}  "
                      f"Lake: {cfg.lake_root}")
                return 0
            print("\nBronze (ops.ingest_log):")
            spark.sql("""SELECT source, count(*) AS files, sum(lines) AS lines, sum(bronze_rows) AS bronze_rows,
                                sum(quarantined) AS quarantined FROM ops.ingest_log GROUP BY source ORDER BY source""").show()
            print("Silver reconciliation (ops.audit): landed = silver + quarantined + duplicates")
            spark.sql("""SELECT source, landed, silver_rows, quarantined, duplicates, balanced FROM ops.audit
                         ORDER BY source""").show()
            audit = {r.source: r.silver_rows for r in spark.sql("SELECT source, silver_rows FROM ops.audit").collect()}
            # through the collector, the clickstream is checked against what the collector acknowledged (below)
            checks = [(s, manifest["sources"][s]["valid"], audit.get(s, 0)) for s in EVENT_SOURCES
                      if not (collected and s == "clickstream")]
            print("Check against the generator's manifest (valid events -> silver rows): " + ", ".join(
                f"{s} {want:,} -> {got:,} {'ok' if want == got else 'MISMATCH'}" for s, want, got in checks))
            if collected:
                took = spark.sql("SELECT count(*) AS files, sum(lines) AS lines FROM ops.ingest_log "
                                 "WHERE source = 'clickstream'").first()
                balanced = spark.sql("SELECT balanced FROM ops.audit WHERE source = 'clickstream'").first().balanced
                print(f"Clickstream through the collector: {collected['accepted']:,} events acknowledged in "
                      f"{collected['files']} files; ingest took {took.lines:,} lines from {took.files} files; refine "
                      f"{'balanced' if balanced else 'DID NOT BALANCE'}. (Test events the generator dated in the "
                      "future of their first arrival are plausible when they arrive weeks later, so silver holds "
                      "a few more than the generator's valid count.)")
                checks.append(("clickstream", collected["accepted"], took.lines if balanced else -1))
            print("\nQuality gates (ops.quality_gates):")
            spark.sql("""SELECT layer, window_end, count(*) AS tables, sum(CASE WHEN status = 'passed' THEN 1 ELSE 0 END) AS passed,
                                sum(evaluated) AS expectations, sum(critical_failures) AS critical_failures,
                                min(checked_at) AS first
                         FROM ops.quality_gates GROUP BY layer, run_id, window_end""").orderBy("first").drop("first").show()
            print(f"Quality overview: {docs.docs_index(cfg).as_uri()}")
            print("\nLifecycle stages:")
            spark.sql("""SELECT lifecycle_stage, count(*) AS customers, sum(kept_orders) AS orders, sum(revenue) AS revenue
                         FROM gold.customer_relationship GROUP BY 1 ORDER BY customers DESC""").show(truncate=False)
            keys = spark.sql("""SELECT r.customer_key FROM gold.customer_relationship r
                                WHERE r.kept_orders > 0 AND r.social_interactions > 0 AND r.visits > 0
                                ORDER BY r.interactions, r.customer_key LIMIT 2""").collect()
            key = keys[0] if keys else None
            if key is not None:
                k = key.customer_key
                print(f"A sample timeline (rapport timeline {k}):")
                spark.sql(f"""SELECT seq, date_format(occurred_at, 'yyyy-MM-dd HH:mm') AS at, channel,
                                     coalesce(platform, '') AS platform, event_type, coalesce(milestone, '') AS milestone, summary
                              FROM gold.customer_timeline WHERE customer_key = '{k}' ORDER BY seq LIMIT 25""").show(
                    25, truncate=False)
                _print_identity(spark, cfg, k)
            last = spark.sql("SELECT max(date) AS d FROM gold.daily_product_trends WHERE trending").first().d
            print(f"Top trending products on {last} (views over 7 days vs the 7 before):" if last else
                  "No product is trending yet (trends compare 7 days with the 7 before them).")
            if last:
                spark.sql(f"""SELECT trend_rank AS `rank`, product_id, title, views_7d, views_prev_7d,
                                     concat('+', cast(round(100 * growth_7d) AS INT), '%') AS growth, orders, revenue
                              FROM gold.daily_product_trends WHERE date = DATE'{last}' AND trending
                              ORDER BY trend_rank LIMIT 5""").show(truncate=False)
            print("Campaign message consistency (scheduled platforms where the message is missing, stale or silent):")
            spark.sql("""SELECT campaign_id, consistency, count(*) AS platforms,
                                array_join(sort_array(collect_list(platform)), ', ') AS on_platforms
                         FROM gold.campaign_performance GROUP BY 1, 2 ORDER BY 1, 2""").show(truncate=False)
            ok = all(want == got for _, want, got in checks)
            pages = _print_report(spark, cfg, key.customer_key if key is not None else None)
            if len(keys) > 1:  # another customer than the sample, whose page stays to be opened
                ok = _erase(spark, cfg, keys[1].customer_key) and ok
    for line in pages:
        print(line)
    print(f"Demo finished in {time.perf_counter() - started:.1f}s. Landing: {cfg.landing_root}  Lake: {cfg.lake_root}")
    return 0 if ok else 1


def as_orders_export(landing: Path) -> int:
    """Keep only the orders of a generated landing zone, rewritten as an Admin API export: each delivery's order
    object alone on its line (lines that are not valid JSON stay as they are). Returns the files rewritten."""
    import gzip
    import json

    for name in ("clickstream", "social", "reference", "_truth", "manifest.json"):
        target = landing / name
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    files = 0
    for path in sorted((landing / "orders").rglob("*.json.gz")):
        from jobs.bronze.decode import decode

        out = []
        for r in decode(path.read_bytes()).records:
            if r.value is None:
                continue  # a damaged member: gone, as a crashed export would lose it
            try:
                line = json.loads(r.value)
            except ValueError:
                out.append(r.value)
                continue
            out.append(json.dumps(line["order"]) if isinstance(line, dict) and isinstance(line.get("order"), dict)
                       else r.value)
        path.write_bytes(gzip.compress(("\n".join(out) + "\n").encode(), mtime=0))
        files += 1
    return files


def _print_orders_only(spark, cfg: Config) -> None:
    from jobs.quality import docs

    print("\nBronze (ops.ingest_log) and reconciliation (ops.audit):")
    spark.sql("""SELECT source, count(*) AS files, sum(lines) AS records, sum(bronze_rows) AS bronze_rows,
                        sum(quarantined) AS quarantined FROM ops.ingest_log GROUP BY source ORDER BY source""").show()
    spark.sql("SELECT source, landed, silver_rows, quarantined, duplicates, balanced FROM ops.audit").show()
    print("Quality gates: tables whose source never landed are not applicable, the others passed:")
    spark.sql("""SELECT layer, status, count(*) AS tables, array_join(sort_array(collect_list(table_name)), ', ') AS which
                 FROM ops.quality_gates GROUP BY layer, status ORDER BY layer, status""").show(truncate=False)
    print(f"Quality overview: {docs.docs_index(cfg).as_uri()}")
    print("\nThe relationship table (gold.customer_relationship), by lifecycle stage:")
    spark.sql("""SELECT lifecycle_stage, count(*) AS customers, sum(kept_orders) AS orders, sum(revenue) AS revenue,
                        round(avg(average_order_value), 2) AS avg_order_value
                 FROM gold.customer_relationship GROUP BY 1 ORDER BY customers DESC""").show(truncate=False)
    print("Top customers by revenue, with RFM scores:")
    spark.sql("""SELECT customer_key, lifecycle_stage, kept_orders, revenue, average_order_value, rfm_segment,
                        date_format(first_purchase_at, 'yyyy-MM-dd') AS first_purchase, days_since_last_interaction
                 FROM gold.customer_relationship WHERE kept_orders > 0
                 ORDER BY revenue DESC, customer_key LIMIT 10""").show(truncate=False)
    print("Best-selling products (gold.daily_product_trends; no catalogue landed, so no titles):")
    spark.sql("""SELECT product_id, sum(orders) AS orders, sum(units) AS units, sum(revenue) AS revenue
                 FROM gold.daily_product_trends GROUP BY 1 ORDER BY revenue DESC LIMIT 5""").show(truncate=False)


def _via_collector(work: Path, landing: Path, args: argparse.Namespace) -> dict:
    """The generated clickstream sent by segment-analytics-python to a collector, which writes the landing files
    ingest reads; the generated files are set aside."""
    import re
    import signal
    import subprocess
    import sys
    import urllib.request

    from jobs.collector.replay import replay

    generated = work / "generated-clickstream"
    shutil.rmtree(generated, ignore_errors=True)
    shutil.move(str(landing / "clickstream"), generated)
    late = (datetime.now(timezone.utc).date() - args.start).days + 1
    os.environ["RAPPORT_LATE_DAYS"] = str(max(late, 7))  # history sent today: events as old as the demo's start
    key = "demo-write-key"
    env = {**os.environ, "RAPPORT_COLLECTOR_WRITE_KEYS": f"{key}=demo-shop"}
    print(f"\n== 1b. the clickstream through the collector (segment-analytics-python -> rapport collect serve); "
          f"RAPPORT_LATE_DAYS={os.environ['RAPPORT_LATE_DAYS']}, since {args.days} days of history arrive today")
    log = open(work / "collector.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "collect", "serve", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        url = proc.stdout.readline().split("listening on ", 1)[1].split(" ", 1)[0]
        for _ in range(300):
            try:
                if urllib.request.urlopen(f"{url}/ready", timeout=2).status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        started = time.perf_counter()
        sent = replay(sorted(generated.rglob("*.gz")), url, key)
        metrics = urllib.request.urlopen(f"{url}/metrics").read().decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    accepted = sum(float(m) for m in re.findall(r'^rapport_collector_events_total\{[^}]*\} ([0-9.e+]+)$', metrics, re.M))
    files = len([p for p in (landing / "clickstream").rglob("*.json.gz")])
    print(f"Sent {sent.sent:,} events from {sent.files} generated files in {time.perf_counter() - started:.0f}s "
          f"({sent.unsendable:,} defective lines no library can send were left out; {sent.failed} failed); the "
          f"collector acknowledged {int(accepted):,} and closed {files} landing files.")
    return {"accepted": int(accepted), "files": files, "sent": sent.sent}


def _print_report(spark, cfg: Config, customer_key: str | None) -> list[str]:
    """Where the marketing report rapport_curate wrote is, and the sample customer's page; the lines to end on."""
    from jobs.report.build import customer_page, latest

    print("\n== The marketing report (rapport_curate's report task; rapport report [--date D])")
    found = latest(cfg)
    lines = [f"Marketing report: {found.as_uri()}" if found else "Marketing report: not built (see rapport_curate)"]
    if customer_key:
        lines.append(f"Customer page of the sample customer: {Path(customer_page(spark, cfg, customer_key)).as_uri()}")
    for line in lines:
        print(line)
    return lines


def _erase(spark, cfg: Config, customer_key: str) -> bool:
    """The right to erasure on the sample customer: request, erase everywhere, prove it."""
    import json

    from jobs.lake import Lake
    from jobs.pipeline.runner import run_step
    from jobs.runs.window import Window
    from jobs.privacy import requests
    from jobs.privacy.person import hash_identifiers

    print(f"\n== 3. privacy: another customer asks to be forgotten (rapport privacy erase --customer-key {customer_key})")
    clock = time.perf_counter()
    rid = requests.record(spark, cfg, "erase", hash_identifiers(spark, cfg, keys=[customer_key]),
                          "demo: right to erasure")
    run_step(spark, cfg, "privacy", Window(), request_id=rid)
    row = requests.get(Lake(cfg, spark), rid)
    state = json.loads(row["detail"] or "{}")
    print(f"Request {rid}: {row['status']}; {sum(state.get('rows', {}).values()):,} rows erased from "
          f"{len(state.get('rows', {}))} tables, {state.get('files_removed', 0):,} old files vacuumed, "
          f"{len(state.get('snapshots_removed', []))} export snapshots deleted and {len(state.get('snapshots_published', []))} "
          "published anew; their future events are suppressed.")
    if state.get("at_source"):
        print(f"{len(state['at_source'])} landing files still hold them (the source's to delete; Rapport never reads "
              "them again).")
    print(f"Erasure proof (every file of the lake and the exports scanned; {time.perf_counter() - clock:.0f}s in all): "
          f"{row['proof']}")
    return row["status"] == "verified"


def _export_target(stack: contextlib.ExitStack, base: Config) -> str | None:
    """Where the demo's exports go: RAPPORT_EXPORT_URI, else a loopback S3 for the demo's lifetime."""
    from jobs.s3local import loopback_s3, moto_server
    from jobs.storage import s3_client

    if base.export_uri:
        return base.export_uri
    if moto_server() is None:
        print("(exports skipped: set RAPPORT_EXPORT_URI, or install moto[server] for a loopback S3)")
        return None
    url = stack.enter_context(loopback_s3())
    os.environ.update(RAPPORT_EXPORT_URI="s3://rapport-demo/exports", RAPPORT_S3_ENDPOINT_URL=url,
                      AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo")
    s3_client(Config.load()).create_bucket(Bucket="rapport-demo")
    print(f"(exports go to a loopback S3 at {url} that stops with the demo)")
    return os.environ["RAPPORT_EXPORT_URI"]


def _print_exports(cfg: Config) -> None:
    from jobs.export.datasets import DATASETS
    from jobs.export.snapshot import SnapshotStore, verify
    from jobs.storage import s3_client

    client = s3_client(cfg)
    store = SnapshotStore(client, cfg.export_uri)
    print("\nExports for recommendation services (rapport export list / verify):")
    for name in DATASETS:
        latest = store.latest(name)
        if latest is None:
            continue
        result = verify(client, store.uri(latest.prefix))
        print(f"  {store.uri(latest.prefix)}  {result.rows:,} rows in {result.files} file(s), "
              + ("verified against manifest.json" if result.ok else "DOES NOT VERIFY: " + "; ".join(result.problems)))


def _print_identity(spark, cfg: Config, key: str) -> None:
    """Why the sample customer's identifiers are one customer: each one's path of links to the anchor, with evidence."""
    from jobs.silver.identity_explain import explain

    e = explain(spark, cfg, key)
    print(f"Why these are one customer (rapport identity explain {key}): {len(e.identifiers)} identifiers, named after "
          f"{e.anchor}")
    for identifier in [i for i in e.identifiers if i != e.anchor][:6]:
        hops = " -> ".join(f"{link.via} ({link.evidence_table}:{link.evidence_key}, {link.valid_from:%Y-%m-%d %H:%M})"
                           for link in e.path(identifier))
        print(f"  {identifier[:40]}: {hops}")
    print("Undo a wrong merge with `rapport identity unmerge --customer-key … --identifier … --reason …`; see a past "
          "state with `--as-of` (docs/identity.md).\n")

