"""``rapport engine|config|bench``: running, checking and measuring Rapport."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from jobs.config import Config
from jobs.cli.common import EXIT_USER_ERROR, _table


def cmd_engine_serve(args: argparse.Namespace) -> int:
    from jobs.engine import EmbeddedServer, memory_limit

    server = EmbeddedServer(host=args.host, port=args.port, idle_timeout_secs=900,
                            memory_bytes=memory_limit(Config.load().engine_memory)).start()
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


def cmd_bench(args: argparse.Namespace) -> int:
    from jobs.bench.peers import PEERS
    from jobs.bench.pipeline import Settings
    from jobs.bench.run import run

    scales = tuple(args.scales) + tuple(n for n in (5_000_000, 10_000_000) if args.large and n not in args.scales)
    unknown = [p for p in args.peers if p not in PEERS]
    if unknown:
        print(f"rapport: error: unknown peer(s) {', '.join(unknown)}; peers are {', '.join(PEERS)}", file=sys.stderr)
        return EXIT_USER_ERROR
    settings = Settings(scales=scales, repeats=args.repeats, days=args.days, peers=tuple(args.peers),
                        incremental_days=args.incremental_days, incremental_events_per_day=args.incremental_events,
                        history_days=args.history_days,
                        collector_seconds=args.collector_seconds, cluster=args.cluster,
                        freshness_seconds=args.freshness_seconds, freshness_rate=args.freshness_rate,
                        freshness_interval=args.freshness_interval,
                        bounded_memory=args.bounded_memory,
                        out=Path(args.out), workdir=Path(args.workdir), keep_data=args.keep_data,
                        compare_with=args.compare_with)
    print(f"Benchmark: scales {', '.join(f'{s:,}' for s in scales)} events, {args.repeats} runs each; peers "
          f"{', '.join(args.peers) or 'none'}; {args.incremental_days} incremental days. Results go to {args.out}/.")
    results = run(settings)
    print(f"Done in {results.total_seconds / 60:.1f} min: {args.out}/results.json, results.md, chart.png")
    for e in results.errors:
        print(f"rapport: bench part '{e['part']}' failed: {e['error']}", file=sys.stderr)
    return 1 if results.errors else 0
