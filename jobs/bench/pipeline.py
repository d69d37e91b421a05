"""What every benchmark part shares: its settings and results, the machine, generated data, a configuration
and one timed run of the pipeline by stage."""

from __future__ import annotations

import platform
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from jobs.bench.measure import Measure, folder_bytes, median
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
    # history independence: a lake with this many days of history built in bulk, then 3 ordinary daily runs, against
    # the same 3 days on a lake with 7 days of history (0 skips)
    history_days: int = 365
    collector_seconds: float = 5.0  # per load cell; 0 skips the collector
    # freshness under steady load (jobs.bench.freshness): seconds of load at freshness_rate events/s, micro-batches
    # every freshness_interval seconds, collector files rolled as often; 0 skips it
    freshness_seconds: float = 180.0
    freshness_rate: int = 1000
    freshness_interval: float = 60.0
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
    # a git revision whose code builds a second lake from each scale's landing; the figures of both are compared
    # (jobs.bench.figures): a speed-up must not change what the pipeline produces
    compare_with: str | None = None


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
    history: dict = field(default_factory=dict)
    collector: list[dict] = field(default_factory=list)
    freshness: dict = field(default_factory=dict)
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


def generate_data(root: Path, events: int, days: int, seed: int, progress) -> tuple[Path, dict]:
    from jobs.generate import Params, generate

    landing = root / "landing"
    params = Params(customers=customers_for(events, days), days=days, start=START, seed=seed)
    started = time.perf_counter()
    manifest = generate(params, landing, overwrite=True, progress=False)
    lines = sum(s["lines"] for s in manifest["sources"].values())
    progress(f"  generated {lines:,} events ({params.customers:,} customers x {days} days) "
             f"in {time.perf_counter() - started:.0f}s")
    return landing, manifest


def config_for(landing: Path, lake: Path, s3: str | None, tag: str, engine_memory: str | None = None) -> Config:
    return Config(lake_root=str(lake), landing_root=str(landing), pii_key=BENCH_KEY, s3_endpoint_url=s3,
                  aws_access_key_id="bench", aws_secret_access_key="bench",
                  export_uri=f"s3://rapport-bench/{tag}" if s3 else None,
                  **({"engine_memory": engine_memory} if engine_memory else {}))


def run_pipeline(landing: Path, lake: Path, s3: str | None, tag: str, start=None, end=None,
              snapshot_to: Path | None = None, engine_memory: str | None = None) -> tuple[dict[str, Stage], int, object]:
    """One pass of the pipeline over a landing window; (stages, events ingested, gold as_of)."""
    from jobs.engine import spark_session
    from jobs.pipeline.runner import run_stage, run_step
    from schemas.sources import EVENT_SOURCES, SOURCES
    from jobs.pipeline.steps import stage
    from jobs.runs.window import Window
    from jobs.bronze.landing import Landing

    cfg = config_for(landing, lake, s3, tag, engine_memory)
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


def summarise(stages: list[dict[str, Stage]], events: int) -> dict:
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


def timed_step(landing: Path, lake: Path, s3: str | None, step: str) -> Measure:
    """One registered step over everything on the lake (the weekly ones: maintenance, gate.full), timed."""
    from jobs.engine import spark_session
    from jobs.pipeline.runner import run_step
    from jobs.runs.window import Window

    cfg = config_for(landing, lake, s3, f"incremental/{step}")
    with spark_session(cfg) as spark:
        with Measure() as m:
            run_step(spark, cfg, step, Window())
    return m


def step_seconds(lake: Path, steps: tuple[str, ...]) -> float:
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


def late_vs_early(values: list[float], k: int = 3) -> float | None:
    """Median of the last ``k`` days over the median of days 2..k+1 (day 1 also creates every table)."""
    if len(values) < 2:
        return None
    k = min(k, len(values) - 1)
    early = median(values[1:1 + k])
    return round(median(values[-k:]) / early, 2) if early else None


def failed(results: Results, part: str, exc: Exception, progress) -> None:
    message = f"{type(exc).__name__}: {exc}"
    results.errors.append({"part": part, "error": message})
    progress(f"  FAILED ({part}): {message}\n  (recorded in the results; the other parts still run)")


