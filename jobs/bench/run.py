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
import platform
from contextlib import ExitStack
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from jobs.bench.measure import Measure, data_files, folder_bytes, median
from jobs.bench.peers import PEERS
from jobs.config import Config

EVENTS_PER_CUSTOMER_DAY = 2.99  # the generator's rate: 2,090,707 lines from 100,000 customers over 7 days
START = date(2026, 11, 1)
BENCH_KEY = "rapport-bench-key-0123456789"
PIPELINE_STAGES = ("ingest", "refine", "curate", "quality", "export", "report")
END_TO_END = ("ingest", "refine", "curate", "quality", "export")  # the marketing report is measured apart


@dataclass
class Settings:
    scales: tuple[int, ...] = (100_000, 1_000_000)
    repeats: int = 3
    days: int = 7
    peers: tuple[str, ...] = PEERS
    incremental_days: int = 60
    incremental_events_per_day: int = 20_000
    collector_seconds: float = 5.0  # per load cell; 0 skips the collector
    cluster: bool = True  # one more pipeline run per scale on Sail's local-cluster mode (driver + workers, Arrow Flight)
    # one more pipeline run at the scale ``bounded_at`` with the engine's memory pool this small
    # (RAPPORT_ENGINE_MEMORY): a window whose lines are larger than the pool must complete, spilling what does not
    # fit; "" skips it
    bounded_memory: str = "512m"
    bounded_at: int = 1_000_000
    out: Path = Path("bench")
    workdir: Path = Path(".bench")
    seed: int = 42
    keep_data: bool = False


@dataclass
class Stage:
    seconds: float = 0.0
    peak_bytes: int = 0
    bytes_in: int = 0
    bytes_out: int = 0

    def add(self, m: Measure, bytes_in: int = 0, bytes_out: int = 0) -> None:
        self.seconds += m.seconds
        self.peak_bytes = max(self.peak_bytes, m.peak_bytes)
        self.bytes_in += bytes_in
        self.bytes_out += bytes_out


@dataclass
class Results:
    machine: dict
    settings: dict
    started_at: str
    scales: list[dict] = field(default_factory=list)
    peers: list[dict] = field(default_factory=list)
    incremental: dict = field(default_factory=dict)
    collector: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # a part that failed: what and why (the rest still ran)
    finished_at: str = ""
    total_seconds: float = 0.0


def machine() -> dict:
    import psutil

    versions = {}
    for pkg in ("pysail", "pyspark", "duckdb", "deltalake", "great_expectations"):
        try:
            from importlib.metadata import version

            versions[pkg] = version(pkg)
        except Exception:
            versions[pkg] = None
    java = subprocess.run(["java", "-version"], capture_output=True, text=True) if shutil.which("java") else None
    return {"cores": psutil.cpu_count(logical=True), "physical_cores": psutil.cpu_count(logical=False),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "cpu": platform.processor() or platform.machine(),
            "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            "java": java.stderr.splitlines()[0] if java and java.stderr else None, "versions": versions}


def customers_for(events: int, days: int) -> int:
    return max(50, round(events / (EVENTS_PER_CUSTOMER_DAY * days)))


def _generate(root: Path, events: int, days: int, seed: int, progress) -> tuple[Path, dict]:
    from jobs.generate import Params, generate

    landing = root / "landing"
    params = Params(customers=customers_for(events, days), days=days, start=START, seed=seed)
    started = time.perf_counter()
    manifest = generate(params, landing, overwrite=True, progress=False)
    lines = sum(s["lines"] for s in manifest["sources"].values())
    progress(f"  generated {lines:,} events ({params.customers:,} customers x {days} days) "
             f"in {time.perf_counter() - started:.0f}s")
    return landing, manifest


def _config(landing: Path, lake: Path, s3: str | None, tag: str, engine_memory: str | None = None) -> Config:
    return Config(lake_root=str(lake), landing_root=str(landing), pii_key=BENCH_KEY, s3_endpoint_url=s3,
                  aws_access_key_id="bench", aws_secret_access_key="bench",
                  export_uri=f"s3://rapport-bench/{tag}" if s3 else None,
                  **({"engine_memory": engine_memory} if engine_memory else {}))


def _pipeline(landing: Path, lake: Path, s3: str | None, tag: str, start=None, end=None,
              snapshot_to: Path | None = None, engine_memory: str | None = None) -> tuple[dict[str, Stage], int, object]:
    """One pass of the pipeline over a landing window; (stages, events ingested, gold as_of)."""
    from jobs.engine import spark_session
    from jobs.pipeline.runner import run_stage, run_step
    from schemas.sources import EVENT_SOURCES, SOURCES
    from jobs.pipeline.steps import stage
    from jobs.runs.window import Window
    from jobs.bronze.landing import Landing

    cfg = _config(landing, lake, s3, tag, engine_memory)
    window = Window(start, end)
    stages = {s: Stage() for s in PIPELINE_STAGES}
    landed = sum(f.size for s in SOURCES for f in Landing(cfg).list(s.name, window))
    with spark_session(cfg) as spark:
        spark.range(1).collect()

        def build(name: str, layer_in: str, layer_out: str, **options):
            with Measure() as m:
                result = run_stage(spark, cfg, name, window, gate=False, **options)
            stages[name].add(m, folder_bytes(lake / layer_in) if layer_in else landed, folder_bytes(lake / layer_out))
            gate = stage(name).gate
            with Measure() as m:
                run_step(spark, cfg, gate, window)
            stages["quality"].add(m, folder_bytes(lake / layer_out))
            return result

        ingested = build("ingest", "", "bronze")
        events = sum(ingested.reports[f"ingest.{s}"].lines for s in EVENT_SOURCES)  # reference extracts are not events
        build("refine", "bronze", "silver")
        report = build("curate", "silver", "gold").reports["curate"]
        with Measure() as m:
            page = run_step(spark, cfg, "report", window)
        stages["report"].add(m, folder_bytes(lake / "gold"), page.bytes)
        if s3:
            with Measure() as m:
                published = run_stage(spark, cfg, "export", window, datasets=("interactions", "customer_features"),
                                      force=True, progress=lambda msg: None).reports["export"]
            stages["export"].add(m, folder_bytes(lake / "gold"), sum(published.bytes.values()))
        if snapshot_to is not None:
            from jobs.bench.peers import snapshot_silver

            snapshot_silver(spark, cfg, snapshot_to)
    return stages, events, report.as_of


def _summary(stages: list[dict[str, Stage]], events: int) -> dict:
    out = {}
    for name in PIPELINE_STAGES:
        runs = [s[name] for s in stages if s[name].seconds > 0]
        if not runs:
            continue
        seconds = median([r.seconds for r in runs])
        out[name] = {"seconds": round(seconds, 2), "events_per_second": round(events / seconds) if seconds else None,
                     "peak_memory_bytes": int(median([r.peak_bytes for r in runs])),
                     "bytes_in": int(median([r.bytes_in for r in runs])),
                     "bytes_out": int(median([r.bytes_out for r in runs])),
                     "runs_seconds": [round(r.seconds, 2) for r in runs]}
    counted = [v for k, v in out.items() if k in END_TO_END]
    total = sum(v["seconds"] for v in counted)
    out["total"] = {"seconds": round(total, 2), "events_per_second": round(events / total) if total else None,
                    "peak_memory_bytes": max(v["peak_memory_bytes"] for v in counted) if counted else 0}
    return out


def _race(snapshot: Path, work: Path, as_of, settings: Settings, progress) -> dict:
    """Each peer ``repeats`` times in its own process; outputs of the first runs compared with the embedded one."""
    from jobs.bench.peers import compare

    runs: dict[str, list[dict]] = {}
    for engine in settings.peers:
        for i in range(settings.repeats):
            out = work / f"peer-{engine}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            cmd = [sys.executable, "-m", "jobs.bench.peers", engine, "--silver", str(snapshot), "--out", str(out),
                   "--as-of", as_of.isoformat()]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    cwd=Path(__file__).resolve().parents[2])
            with Measure(proc.pid) as m:
                stdout, stderr = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"the {engine} peer failed (exit {proc.returncode}):\n{stderr[-3000:]}")
            line = next(x for x in stdout.splitlines() if x.startswith("RAPPORT_PEER "))
            seconds = json.loads(line[len("RAPPORT_PEER "):])["seconds"]
            runs.setdefault(engine, []).append({"seconds": seconds, "wall_seconds": m.seconds,
                                                "peak_memory_bytes": m.peak_bytes})
            progress(f"  peer {engine} run {i + 1}: {seconds:.1f}s (+{m.seconds - seconds:.1f}s start-up), "
                     f"peak {m.peak_bytes / 2**30:.2f} GiB")
    engines = {}
    base = runs.get("embedded")
    for engine, rs in runs.items():
        seconds = median([r["seconds"] for r in rs])
        engines[engine] = {
            "seconds": round(seconds, 2), "startup_seconds": round(median([r["wall_seconds"] - r["seconds"] for r in rs]), 2),
            "peak_memory_bytes": int(median([r["peak_memory_bytes"] for r in rs])),
            "runs_seconds": [round(r["seconds"], 2) for r in rs],
            "vs_embedded": round(seconds / median([r["seconds"] for r in base]), 2) if base else None,
        }
        if engine != "embedded" and base:
            engines[engine]["comparison"] = compare(work / "peer-embedded-0", work / f"peer-{engine}-0")
            engines[engine]["equal"] = all(t["equal"] for t in engines[engine]["comparison"].values())
    return {"snapshot_bytes": folder_bytes(snapshot), "as_of": as_of.isoformat(), "engines": engines}


def _incremental(results: Results, root: Path, s3: str | None, settings: Settings, progress) -> None:
    """Fills ``results.incremental`` day by day, so the days before a failure are kept."""
    days = settings.incremental_days
    landing, manifest = _generate(root, settings.incremental_events_per_day * days, days, settings.seed + 1, progress)
    lake = root / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    first = datetime(START.year, START.month, START.day, tzinfo=timezone.utc)
    out: list[dict] = []
    results.incremental = {"days": out, "events_per_day": settings.incremental_events_per_day,
                           "last_vs_first": None, "late_vs_early": None}
    for d in range(days):
        lo, hi = first + timedelta(days=d), first + timedelta(days=d + 1)
        stages, events, _ = _pipeline(landing, lake, s3, f"incremental/day{d + 1}", lo, hi)
        if (d + 1) % 7 == 0:  # the weekly maintenance DAG: compaction (vacuum keeps a week, so it removes nothing here)
            stages["maintenance"] = Stage()
            stages["maintenance"].add(_timed_step(landing, lake, s3, "maintenance"))
        total = sum(s.seconds for s in stages.values())
        out.append({"day": d + 1, "date": lo.date().isoformat(), "events": events, "seconds": round(total, 2),
                    "stages": {k: round(v.seconds, 2) for k, v in stages.items()},
                    "peak_memory_bytes": max(s.peak_bytes for s in stages.values()),
                    "lake_bytes": folder_bytes(lake), "lake_files": data_files(lake)})
        progress(f"  day {d + 1:>2}: {events:,} events in {total:.1f}s "
                 f"({', '.join(f'{k} {v.seconds:.1f}' for k, v in stages.items() if v.seconds)})")
    secs = [d["seconds"] for d in out]
    results.incremental.update(last_vs_first=round(secs[-1] / secs[0], 2) if secs[0] else None,
                               late_vs_early=_late_vs_early(secs),
                               stages_late_vs_early={s: _late_vs_early([d["stages"].get(s, 0) for d in out])
                                                     for s in PIPELINE_STAGES})
    # the weekly whole-table gate on the lake the days built: what the daily gates no longer read
    m = _timed_step(landing, lake, s3, "gate.full")
    results.incremental["full_gate"] = {"seconds": round(m.seconds, 2), "peak_memory_bytes": m.peak_bytes}
    progress(f"  weekly whole-table gate on the last day's lake: {m.seconds:.1f}s")


def _timed_step(landing: Path, lake: Path, s3: str | None, step: str) -> Measure:
    """One registered step over everything on the lake (the weekly ones: maintenance, gate.full), timed."""
    from jobs.engine import spark_session
    from jobs.pipeline.runner import run_step
    from jobs.runs.window import Window

    cfg = _config(landing, lake, s3, f"incremental/{step}")
    with spark_session(cfg) as spark:
        with Measure() as m:
            run_step(spark, cfg, step, Window())
    return m


def _step_seconds(lake: Path, steps: tuple[str, ...]) -> float:
    """Wall time of the latest successful run of each step, from ``ops.runs`` (delta-rs: no engine needed)."""
    from deltalake import DeltaTable

    rows = DeltaTable(str(lake / "ops" / "runs")).to_pyarrow_table(
        columns=["step", "status", "started_at", "finished_at"]).to_pylist()
    total = 0.0
    for name in steps:
        done = [r for r in rows if r["step"] == name and r["status"] == "succeeded"]
        if done:
            last = max(done, key=lambda r: r["finished_at"])
            total += (last["finished_at"] - last["started_at"]).total_seconds()
    return total


def _refine_peer(landing: Path, root: Path, lake: Path, snapshot: Path, refine: Stage) -> dict:
    """The DuckDB peer of the clickstream core of refine, in its own process, beside Rapport's clickstream refine
    (the ``refine.clickstream`` and ``refine.sessions`` steps of the last run) and compared with its silver."""
    from jobs.bench.refine_peer import compare

    out = root / "refine-peer"
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.Popen([sys.executable, "-m", "jobs.bench.refine_peer", "--landing", str(landing), "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    with Measure(proc.pid) as m:
        stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the DuckDB refine peer failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    line = next(x for x in stdout.splitlines() if x.startswith("RAPPORT_PEER "))
    result = json.loads(line[len("RAPPORT_PEER "):])
    rapport = _step_seconds(lake, ("refine.clickstream", "refine.sessions"))
    return {**result, "peak_memory_bytes": m.peak_bytes, "rapport_seconds": round(rapport, 2),
            "rapport_refine_peak_memory_bytes": refine.peak_bytes,
            "vs_peer": round(rapport / result["seconds"], 2) if result["seconds"] else None,
            "comparison": compare(out, snapshot) if (snapshot / "sessions").exists() else None}


def _on_local_cluster(landing: Path, lake: Path, s3: str | None, tag: str, landed: int) -> dict:
    """The whole pipeline once with Sail in ``local-cluster`` mode: a driver and workers in this process exchanging
    shuffle data over Arrow Flight (the mode is read from the environment when the embedded server starts)."""
    import os

    shutil.rmtree(lake, ignore_errors=True)
    before = os.environ.get("SAIL_MODE")
    os.environ["SAIL_MODE"] = "local-cluster"
    try:
        stages, _, _ = _pipeline(landing, lake, s3, tag)
    finally:
        if before is None:
            os.environ.pop("SAIL_MODE", None)
        else:
            os.environ["SAIL_MODE"] = before
    return _summary([stages], landed)


def _bounded(landing: Path, lake: Path, s3: str | None, tag: str, landed: int, pool: str) -> dict:
    """The whole pipeline once with the engine's memory pool set to ``pool``, on a window whose decoded lines
    are larger: what does not fit has to spill. The lines' size is summed by the engine from bronze."""
    from jobs.engine import memory_limit, spark_session
    from jobs.lake import Lake
    from schemas.tables import tables

    shutil.rmtree(lake, ignore_errors=True)
    stages, _, _ = _pipeline(landing, lake, s3, tag, engine_memory=pool)
    cfg = _config(landing, lake, s3, tag)
    with spark_session(cfg) as spark:
        stored = Lake(cfg, spark)
        decoded = sum(stored.read(t.qualified).selectExpr("coalesce(sum(octet_length(value)), 0) AS b").first().b
                      for t in tables("bronze") if stored.exists(t.qualified))
    shutil.rmtree(lake, ignore_errors=True)
    return {"pool_bytes": memory_limit(pool), "window_bytes": int(decoded), "stages": _summary([stages], landed)}


def _identity(landing: Path, lake: Path, s3: str | None) -> dict:
    from jobs.bench.identity import rates
    from jobs.engine import spark_session

    cfg = _config(landing, lake, s3, "identity")
    with spark_session(cfg) as spark:
        return rates(spark, cfg, landing)


def _late_vs_early(values: list[float], k: int = 3) -> float | None:
    """Median of the last ``k`` days over the median of days 2..k+1 (day 1 also creates every table)."""
    if len(values) < 2:
        return None
    k = min(k, len(values) - 1)
    early = median(values[1:1 + k])
    return round(median(values[-k:]) / early, 2) if early else None


def _scale(results: Results, root: Path, events: int, s3: str | None, settings: Settings, progress) -> None:
    landing, manifest = _generate(root, events, settings.days, settings.seed, progress)
    landed = sum(s["lines"] for s in manifest["sources"].values())
    runs = []
    snapshot = root / "silver-parquet"
    for i in range(settings.repeats):
        lake = root / f"lake-{i}"
        shutil.rmtree(lake, ignore_errors=True)
        last = i == settings.repeats - 1
        stages, _, as_of = _pipeline(landing, lake, s3, f"scale-{events}/run{i}",
                                     snapshot_to=snapshot if last and settings.peers else None)
        runs.append(stages)
        progress(f"  pipeline run {i + 1}: " + ", ".join(f"{k} {v.seconds:.1f}s" for k, v in stages.items() if v.seconds))
        if not last:
            shutil.rmtree(lake, ignore_errors=True)
    cluster = None
    if settings.cluster:
        cluster = _on_local_cluster(landing, root / "lake-cluster", s3, f"scale-{events}/cluster", landed)
        progress("  pipeline on local-cluster: " + ", ".join(f"{k} {v['seconds']:.1f}s" for k, v in cluster.items()))
        shutil.rmtree(root / "lake-cluster", ignore_errors=True)
    bounded = None
    if settings.bounded_memory and events == settings.bounded_at:
        try:
            bounded = _bounded(landing, root / "lake-bounded", s3, f"scale-{events}/bounded", landed,
                               settings.bounded_memory)
            progress(f"  pipeline with a {settings.bounded_memory} memory pool ({bounded['window_bytes'] / 2**30:.2f} "
                     "GiB of lines): " + ", ".join(f"{k} {v['seconds']:.1f}s" for k, v in bounded["stages"].items()))
        except Exception as exc:  # the figures of the scale still count
            _failed(results, f"scale {events}, memory pool {settings.bounded_memory}", exc, progress)
    refine_peer = None
    if "duckdb" in settings.peers:
        refine_peer = _refine_peer(landing, root, root / f"lake-{settings.repeats - 1}", snapshot, runs[-1]["refine"])
        progress(f"  refine peer (DuckDB, clickstream core): {refine_peer['seconds']:.1f}s, peak "
                 f"{refine_peer['peak_memory_bytes'] / 2**30:.2f} GiB; Rapport's clickstream refine "
                 f"{refine_peer['rapport_seconds']:.1f}s")
    identity = _identity(landing, root / f"lake-{settings.repeats - 1}", s3)
    progress(f"  identity against the truth: {identity['false_merged_keys']:,} of {identity['keys']:,} keys hold two "
             f"people; {identity['split_people']:,} of {identity['people']:,} people split "
             f"({identity['split_joinable']:,} joinable by an observed link)")
    results.scales.append({"target_events": events, "events": landed, "customers": manifest["generator"]["customers"],
                           "days": settings.days, "landing_bytes": folder_bytes(landing),
                           "stages": _summary(runs, landed), "identity": identity, "local_cluster": cluster, "bounded": bounded,
                           "refine_peer": refine_peer})
    if settings.peers:
        results.peers.append({"target_events": events, "events": landed,
                              **_race(snapshot, root, as_of, settings, progress)})


def _failed(results: Results, part: str, exc: Exception, progress) -> None:
    message = f"{type(exc).__name__}: {exc}"
    results.errors.append({"part": part, "error": message})
    progress(f"  FAILED ({part}): {message}\n  (recorded in the results; the other parts still run)")


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

            s3_client(_config(Path("."), Path("."), s3, "")).create_bucket(Bucket="rapport-bench")
        for events in settings.scales:
            root = settings.workdir / f"scale-{events}"
            progress(f"== scale {events:,} events")
            try:
                _scale(results, root, events, s3, settings, progress)
            except Exception as exc:
                _failed(results, f"scale {events}", exc, progress)
            if not settings.keep_data:
                shutil.rmtree(root, ignore_errors=True)
        if settings.incremental_days:
            progress(f"== incremental: {settings.incremental_days} daily batches of about "
                     f"{settings.incremental_events_per_day:,} events")
            root = settings.workdir / "incremental"
            try:
                _incremental(results, root, s3, settings, progress)
            except Exception as exc:
                _failed(results, "incremental", exc, progress)
            if not settings.keep_data:
                shutil.rmtree(root, ignore_errors=True)
    if settings.collector_seconds:
        progress("== collector: batches of 1, 20, 100 at 8, 32, 128 clients, durable and in memory")
        from jobs.bench import collector

        try:
            results.collector = collector.run(settings.workdir / "collector", settings.collector_seconds, progress)
        except Exception as exc:
            _failed(results, "collector", exc, progress)
        if not settings.keep_data:
            shutil.rmtree(settings.workdir / "collector", ignore_errors=True)
    results.finished_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results.total_seconds = round(time.perf_counter() - started, 1)
    report.write(results, settings.out)
    return results
