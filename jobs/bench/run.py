"""``rapport bench``: the measurements every performance claim about Rapport is judged by.

Three parts, on data from the generator (events = landing lines of the three sources):

1. **Pipeline by scale.** For each scale, the whole pipeline on the embedded engine from a
   fresh lake, ``repeats`` times: ingest, refine, curate, quality (the three gates) and
   export (to a loopback S3). Per stage: wall time, events/s, peak resident memory of the
   process tree (the engine runs in-process) and bytes in/out. Figures are medians.
2. **Peers.** The gold timeline and relationship stage on the embedded engine, on JVM
   Spark ``local[*]`` (same job code) and as hand-written DuckDB SQL, over one silver
   snapshot in Parquet (``jobs.bench.peers``). Outputs are compared row for row; times
   exclude engine start-up, which is reported apart.
3. **Incremental cost.** ``incremental_days`` daily batches of about equal size (default 60 of
   20,000 events), one after another on one lake; each day's time per stage, lake size and data
   files, and per stage the median of the last 3 days over days 2-4 (target: within 1.2). A day
   should cost what the first did, not grow with the history behind it. Then the weekly
   whole-table gate (``gate.full``) once on the final lake.
4. **Collector.** Events/s and latency of ``rapport collect serve`` for batches of 1, 20 and 100 events at 8,
   32 and 128 concurrent clients, durable and with the memory sink (``jobs.bench.collector``).

Results go to ``<out>/results.json``, ``results.md`` and ``chart.png`` (``jobs.bench.report``).
"""

from __future__ import annotations

import json
from contextlib import ExitStack
import shutil
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from jobs.bench.measure import folder_bytes, median
from jobs.bench.pipeline import (Results, Settings, config_for, failed, generate_data, machine, run_pipeline,
                                 summarise)
from jobs.bench import figures, scenarios


def _scale(results: Results, root: Path, events: int, s3: str | None, settings: Settings, progress) -> None:
    landing, manifest = generate_data(root, events, settings.days, settings.seed, progress)
    landed = sum(s["lines"] for s in manifest["sources"].values())
    runs = []
    snapshot = root / "silver-parquet"
    for i in range(settings.repeats):
        lake = root / f"lake-{i}"
        shutil.rmtree(lake, ignore_errors=True)
        last = i == settings.repeats - 1
        stages, _, as_of = run_pipeline(landing, lake, s3, f"scale-{events}/run{i}",
                                     snapshot_to=snapshot if last and settings.peers else None)
        runs.append(stages)
        progress(f"  pipeline run {i + 1}: " + ", ".join(f"{k} {v.seconds:.1f}s" for k, v in stages.items() if v.seconds))
        if not last:
            shutil.rmtree(lake, ignore_errors=True)
    cluster = None
    if settings.cluster:
        cluster = scenarios.on_local_cluster(landing, root / "lake-cluster", s3, f"scale-{events}/cluster", landed)
        progress("  pipeline on local-cluster: " + ", ".join(f"{k} {v['seconds']:.1f}s" for k, v in cluster.items()))
        shutil.rmtree(root / "lake-cluster", ignore_errors=True)
    bounded = None
    if settings.bounded_memory and events == settings.bounded_at:
        try:
            bounded = scenarios.bounded(landing, root / "lake-bounded", s3, f"scale-{events}/bounded", landed,
                               settings.bounded_memory)
            progress(f"  pipeline with a {settings.bounded_memory} memory pool ({bounded['window_bytes'] / 2**30:.2f} "
                     "GiB of lines): " + ", ".join(f"{k} {v['seconds']:.1f}s" for k, v in bounded["stages"].items()))
        except Exception as exc:  # the figures of the scale still count
            failed(results, f"scale {events}, memory pool {settings.bounded_memory}", exc, progress)
    refine_peer = None
    if "duckdb" in settings.peers:
        refine_peer = scenarios.refine_peer(landing, root, root / f"lake-{settings.repeats - 1}", snapshot, runs[-1]["refine"])
        progress(f"  refine peer (DuckDB, clickstream core): {refine_peer['seconds']:.1f}s, peak "
                 f"{refine_peer['peak_memory_bytes'] / 2**30:.2f} GiB; Rapport's clickstream refine "
                 f"{refine_peer['rapport_seconds']:.1f}s")
    identity = scenarios.identity(landing, root / f"lake-{settings.repeats - 1}", s3)
    progress(f"  identity against the truth: {identity['false_merged_keys']:,} of {identity['keys']:,} keys hold two "
             f"people; {identity['split_people']:,} of {identity['people']:,} people split "
             f"({identity['split_joinable']:,} joinable by an observed link)")
    now = {**figures.figures(root / f"lake-{settings.repeats - 1}"),
           **{f"identity {k}": v for k, v in identity.items() if isinstance(v, int)}}
    comparison = None
    if settings.compare_with:
        try:
            before_lake = figures.build_with(settings.compare_with, landing, root / "lake-before", root, progress)
            before_identity = scenarios.identity(landing, before_lake, s3)
            before = {**figures.figures(before_lake),
                      **{f"identity {k}": v for k, v in before_identity.items() if isinstance(v, int)}}
            comparison = {"revision": settings.compare_with, **figures.compare(now, before)}
            progress(f"  against the code of {settings.compare_with}: {comparison['equal']} of {comparison['figures']} "
                     "figures equal" + "".join(f"\n    {name}: {v['before']} before, {v['now']} now"
                                               for name, v in comparison["differ"].items()))
        except Exception as exc:  # the figures of the scale still count
            failed(results, f"scale {events}, comparison with {settings.compare_with}", exc, progress)
        finally:
            figures.remove_worktrees(root)
    results.scales.append({"target_events": events, "events": landed, "customers": manifest["generator"]["customers"],
                           "days": settings.days, "landing_bytes": folder_bytes(landing),
                           "stages": summarise(runs, landed), "identity": identity, "local_cluster": cluster, "bounded": bounded,
                           "refine_peer": refine_peer, "figures": now, "comparison": comparison})
    if settings.peers:
        results.peers.append({"target_events": events, "events": landed,
                              **scenarios.race(snapshot, root, as_of, settings, progress)})


def run(settings: Settings, progress: Callable[[str], None] = print) -> Results:
    from jobs.bench import report
    from jobs.s3local import loopback_s3, moto_server

    started = time.perf_counter()
    results = Results(machine=machine(), started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                      settings={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(settings).items()})
    settings.workdir.mkdir(parents=True, exist_ok=True)
    if moto_server() is None:
        progress("moto_server is not installed, so the export stage is not measured (pip install -e '.[test]')")
    with ExitStack() as stack:
        s3 = stack.enter_context(loopback_s3()) if moto_server() else None
        if s3:
            from jobs.storage import s3_client

            s3_client(config_for(Path("."), Path("."), s3, "")).create_bucket(Bucket="rapport-bench")
        for events in settings.scales:
            root = settings.workdir / f"scale-{events}"
            progress(f"== scale {events:,} events")
            try:
                _scale(results, root, events, s3, settings, progress)
            except Exception as exc:
                failed(results, f"scale {events}", exc, progress)
            if not settings.keep_data:
                shutil.rmtree(root, ignore_errors=True)
        parts = ((settings.incremental_days, "incremental", scenarios.incremental,
                  f"{settings.incremental_days} daily batches of about {settings.incremental_events_per_day:,} events"),
                 (settings.history_days, "history", scenarios.history,
                  f"{settings.history_days} days of history against {scenarios.YOUNG_DAYS}, "
                  f"{scenarios.MEASURED_DAYS} daily runs each"))
        for wanted, name, part, what in parts:
            if not wanted:
                continue
            progress(f"== {name}: {what}")
            root = settings.workdir / name
            try:
                part(results, root, s3, settings, progress)
            except Exception as exc:
                failed(results, name, exc, progress)
            if not settings.keep_data:
                shutil.rmtree(root, ignore_errors=True)
    if settings.freshness_seconds:
        progress(f"== freshness: {settings.freshness_rate:,} events/s for {settings.freshness_seconds:.0f}s, "
                 f"micro-batches every {settings.freshness_interval:.0f}s")
        from jobs.bench import freshness

        try:
            results.freshness = freshness.run(settings.workdir / "freshness", settings.freshness_seconds,
                                              settings.freshness_rate, settings.freshness_interval,
                                              round(settings.freshness_interval), progress)
            f = results.freshness
            progress(f"  acknowledged to gold: p50 {f['p50_seconds']}s, p95 {f['p95_seconds']}s, max {f['max_seconds']}s; "
                     f"{f['not_visible']:,} of {f['acknowledged']:,} not visible")
        except Exception as exc:
            failed(results, "freshness", exc, progress)
        if not settings.keep_data:
            shutil.rmtree(settings.workdir / "freshness", ignore_errors=True)
    if settings.collector_seconds:
        progress("== collector: batches of 1, 20, 100 at 8, 32, 128 clients, durable and in memory")
        from jobs.bench import collector

        try:
            results.collector = collector.run(settings.workdir / "collector", settings.collector_seconds, progress)
        except Exception as exc:
            failed(results, "collector", exc, progress)
        if not settings.keep_data:
            shutil.rmtree(settings.workdir / "collector", ignore_errors=True)
    results.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results.total_seconds = round(time.perf_counter() - started, 1)
    report.write(results, settings.out)
    return results
