"""The benchmark's other parts, each over the lakes the scales build: the gold-stage race against peers, the refine
peer, Sail's local-cluster mode, a bounded memory pool, identity against the generator's truth, and daily
batches one after another (``jobs.bench.run`` runs them)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from jobs.bench.aging import expire_tombstones
from jobs.bench.measure import Measure, data_files, folder_bytes, median, written_bytes

from jobs.bench.pipeline import (PIPELINE_STAGES, START, Results, Settings, Stage, config_for, generate_data,
                                 late_vs_early, run_pipeline, step_seconds, summarise, timed_step)


def race(snapshot: Path, work: Path, as_of, settings: Settings, progress) -> dict:
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


def incremental(results: Results, root: Path, s3: str | None, settings: Settings, progress) -> None:
    """Fills ``results.incremental`` day by day, so the days before a failure are kept."""
    days = settings.incremental_days
    landing, manifest = generate_data(root, settings.incremental_events_per_day * days, days, settings.seed + 1, progress)
    lake = root / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    first = datetime(START.year, START.month, START.day, tzinfo=timezone.utc)
    out: list[dict] = []
    results.incremental = {"days": out, "events_per_day": settings.incremental_events_per_day,
                           "last_vs_first": None, "late_vs_early": None}
    starts: list[datetime] = []  # when each bench day began on the wall clock
    for d in range(days):
        lo, hi = first + timedelta(days=d), first + timedelta(days=d + 1)
        began = time.time()
        starts.append(datetime.now(timezone.utc))
        stages, events, _ = run_pipeline(landing, lake, s3, f"incremental/day{d + 1}", lo, hi)
        wrote = written_bytes(lake, began)
        if (d + 1) % 7 == 0:  # the weekly maintenance DAG: compaction (vacuum keeps a week, so it removes nothing here)
            stages["maintenance"] = Stage()
            stages["maintenance"].add(timed_step(landing, lake, s3, "maintenance"))
            # a week of bench days has passed: the tombstones written before it expire, as a week of real days
            # would have them (jobs.bench.aging); not timed, it stands for time passing, not for work
            expire_tombstones(landing, lake, starts[d - 6])
        total = sum(s.seconds for s in stages.values())
        out.append({"day": d + 1, "date": lo.date().isoformat(), "events": events, "seconds": round(total, 2),
                    "stages": {k: round(v.seconds, 2) for k, v in stages.items()},
                    "peak_memory_bytes": max(s.peak_bytes for s in stages.values()),
                    "lake_bytes": folder_bytes(lake), "lake_files": data_files(lake),
                    "written_bytes": sum(t["add"] for t in wrote.values()),
                    "rewritten_bytes": sum(t["remove"] for t in wrote.values())})
        progress(f"  day {d + 1:>2}: {events:,} events in {total:.1f}s "
                 f"({', '.join(f'{k} {v.seconds:.1f}' for k, v in stages.items() if v.seconds)})")
        if d < min(EARLY_DAYS, days - 1):  # the lake before days 2..4, to run them again at the end
            shutil.rmtree(root / f"lake-before-day{d + 2}", ignore_errors=True)
            shutil.copytree(lake, root / f"lake-before-day{d + 2}")
    secs = [d["seconds"] for d in out]
    results.incremental.update(last_vs_first=round(secs[-1] / secs[0], 2) if secs[0] else None,
                               late_vs_early=late_vs_early(secs),
                               stages_late_vs_early={s: late_vs_early([d["stages"].get(s, 0) for d in out])
                                                     for s in PIPELINE_STAGES})
    again = early_again(landing, root, s3, first, min(EARLY_DAYS, days - 1), progress)
    if again:
        k = len(again)

        def over_again(pick) -> float | None:  # the last k days over the same early days timed again
            early = median([pick(a) for a in again])
            return round(median([pick(d) for d in out[-k:]]) / early, 2) if early else None

        results.incremental["early_again"] = again
        results.incremental["late_vs_early_again"] = over_again(lambda r: r["seconds"])
        results.incremental["stages_late_vs_early_again"] = {
            s: over_again(lambda r, s=s: r["stages"].get(s, 0)) for s in PIPELINE_STAGES}
        progress(f"  last {k} days / days 2-{k + 1} run again now: {results.incremental['late_vs_early_again']}")
    # the weekly whole-table gate on the lake the days built: what the daily gates no longer read
    m = timed_step(landing, lake, s3, "gate.full")
    results.incremental["full_gate"] = {"seconds": round(m.seconds, 2), "peak_memory_bytes": m.peak_bytes}
    progress(f"  weekly whole-table gate on the last day's lake: {m.seconds:.1f}s")


def early_again(landing: Path, root: Path, s3: str | None, first: datetime, k: int, progress) -> list[dict]:
    """Days 2..k+1 run again after the last day, each on a copy of the lake as it was before it: the same work as
    then, on the machine as it is at the end. A run of an hour drifts (the machine's other tenants, the process's
    memory), and the late days against the early ones measure the lake's growth only when both are timed under
    the same conditions."""
    out = []
    for d in range(1, k + 1):
        lake = root / f"lake-before-day{d + 1}"
        if not lake.exists():
            return []
        lo = first + timedelta(days=d)
        stages, events, _ = run_pipeline(landing, lake, s3, f"incremental/again/day{d + 1}", lo, lo + timedelta(days=1))
        total = sum(s.seconds for s in stages.values())
        out.append({"day": d + 1, "events": events, "seconds": round(total, 2),
                    "stages": {name: round(v.seconds, 2) for name, v in stages.items()}})
        progress(f"  day {d + 1:>2} again, on the lake as it was: {events:,} events in {total:.1f}s")
        shutil.rmtree(lake, ignore_errors=True)
    return out


EARLY_DAYS = 3  # days 2..4 against the last 3
MEASURED_DAYS = 3
BULK_DAYS = 31
YOUNG_DAYS = 7


def history(results: Results, root: Path, s3: str | None, settings: Settings, progress) -> None:
    """Does a daily run cost the same on an old lake as on a young one? ``history_days`` of history built in bulk
    (and compacted, as the weekly maintenance would have, with the tombstones of a week, not of the whole build:
    ``jobs.bench.aging``), then three ordinary daily runs; the same three days on a lake with 7 days of history,
    which received the reference extracts when it started (``onboarding``). The two lakes' days alternate, after
    both are built and on disk. The ratio by stage, and the bytes each run wrote and rewrote (files it replaced)
    beside its batch's own output."""
    days = settings.history_days + MEASURED_DAYS
    landing, _ = generate_data(root, settings.incremental_events_per_day * days, days, settings.seed + 2, progress)
    first = datetime(START.year, START.month, START.day, tzinfo=timezone.utc)
    measured = first + timedelta(days=settings.history_days)
    results.history = {"history_days": settings.history_days, "young_days": YOUNG_DAYS, "lakes": {}}
    lakes = {}
    for name, start in (("old", first), ("young", measured - timedelta(days=YOUNG_DAYS))):
        lake = root / f"lake-{name}"
        shutil.rmtree(lake, ignore_errors=True)
        began = time.perf_counter()
        lo = start
        files = landing if start == first else onboarding(landing, root / f"landing-{name}", start)
        while lo < measured:  # a backfill a month at a time: one window of a year is more than one engine pool holds
            hi = min(lo + timedelta(days=BULK_DAYS), measured)
            run_pipeline(files, lake, s3, f"history/{name}/bulk", lo, hi)
            lo = hi
        bulk = time.perf_counter() - began
        # a lake that old has had its weekly maintenance: its files compacted, as the maintenance DAG leaves them
        compacted = timed_step(files, lake, s3, "maintenance").seconds
        # and its tombstones are those of its last week, not of the year the bulk wrote in an afternoon (both
        # lakes alike: each keeps none of its build's; jobs.bench.aging)
        expire_tombstones(files, lake, datetime.now(timezone.utc))
        progress(f"  {name} lake: {(measured - start).days} days of history in bulk in {bulk:.0f}s, compacted in "
                 f"{compacted:.0f}s; its build's tombstones expired")
        lakes[name] = (lake, files)
        results.history["lakes"][name] = {"bulk_seconds": round(bulk, 1), "runs": []}
    os.sync()  # the builds' writes on disk before anything is timed, not flushed during the first runs
    # the lakes' days alternate (old, young, old …): a slow spell of the machine falls on both, not on one lake's days
    for d in range(MEASURED_DAYS):
        lo = measured + timedelta(days=d)
        for name, (lake, files) in lakes.items():
            began = time.time()
            stages, events, _ = run_pipeline(files, lake, s3, f"history/{name}/day{d + 1}", lo, lo + timedelta(days=1))
            wrote = written_bytes(lake, began)
            added, removed = sum(t["add"] for t in wrote.values()), sum(t["remove"] for t in wrote.values())
            results.history["lakes"][name]["runs"].append({
                "day": d + 1, "events": events, "seconds": round(sum(v.seconds for v in stages.values()), 2),
                "stages": {k: round(v.seconds, 2) for k, v in stages.items()},
                "written_bytes": added, "rewritten_bytes": removed,
                "rewritten_by_table": {t: v["remove"] for t, v in sorted(wrote.items(), key=lambda x: -x[1]["remove"])
                                       if v["remove"]}})
            progress(f"  {name} lake, day {d + 1}: {events:,} events in "
                     f"{results.history['lakes'][name]['runs'][-1]['seconds']:.1f}s; wrote {added / 2**20:.1f} MiB, "
                     f"of which {removed / 2**20:.1f} MiB replaced files already there")
    for name, (lake, _) in lakes.items():
        results.history["lakes"][name]["lake_bytes"] = folder_bytes(lake)
        if not settings.keep_data:
            shutil.rmtree(lake, ignore_errors=True)
    old, young = (results.history["lakes"][n]["runs"] for n in ("old", "young"))

    def ratio(pick) -> float | None:
        a, b = median([pick(r) for r in old]), median([pick(r) for r in young])
        return round(a / b, 2) if b else None

    results.history["old_vs_young"] = ratio(lambda r: r["seconds"])
    results.history["old_vs_young_by_stage"] = {s: ratio(lambda r, s=s: r["stages"].get(s, 0)) for s in PIPELINE_STAGES}
    # a run's own output: what it wrote beyond the files it replaced; rewrite amplification is replaced / own output
    results.history["rewritten_vs_output"] = {
        n: round(median([r["rewritten_bytes"] / max(1, r["written_bytes"] - r["rewritten_bytes"]) for r in rs]), 2)
        for n, rs in (("old", old), ("young", young))}
    progress(f"  old / young: {results.history['old_vs_young']} "
             f"({', '.join(f'{k} {v}' for k, v in results.history['old_vs_young_by_stage'].items() if v)}); "
             f"rewritten / own output: {results.history['rewritten_vs_output']}")


def onboarding(landing: Path, out: Path, start: datetime) -> Path:
    """The landing as a retailer who starts at ``start`` delivers it: the same event files, and the reference
    extracts that landed before (its catalogue, campaigns, CRM) delivered once in the first hour. The generator lands
    them on its first day only, so a lake started later would otherwise know no product, campaign or CRM customer,
    and its days cost less for lack of data, not of history. Hard links: nothing is copied."""
    import os

    from schemas.sources import SOURCES

    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    reference = {s.landing.split("/")[0] for s in SOURCES if s.kind == "reference"}
    for entry in landing.iterdir():
        if entry.name in reference:
            continue
        if entry.is_dir():
            shutil.copytree(entry, out / entry.name, copy_function=os.link)
        else:
            os.link(entry, out / entry.name)
    day = f"dt={start.date().isoformat()}"
    for s in SOURCES:
        if s.kind != "reference":
            continue
        folders = sorted((landing / s.landing).glob("dt=*"))
        before = [p for p in folders if p.name < day]
        for later in (p for p in folders if p.name >= day):  # extracts delivered since land as they did
            shutil.copytree(later, out / s.landing / later.name, copy_function=os.link)
        for hour in sorted(before[-1].glob("hour=*"))[-1:] if before else ():
            target = out / s.landing / day / "hour=00"
            target.mkdir(parents=True, exist_ok=True)
            for f in hour.iterdir():
                os.link(f, target / f.name)
    return out


def refine_peer(landing: Path, root: Path, lake: Path, snapshot: Path, refine: Stage) -> dict:
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
    rapport = step_seconds(lake, ("refine.clickstream", "refine.sessions"))
    return {**result, "peak_memory_bytes": m.peak_bytes, "rapport_seconds": round(rapport, 2),
            "rapport_refine_peak_memory_bytes": refine.peak_bytes,
            "vs_peer": round(rapport / result["seconds"], 2) if result["seconds"] else None,
            "comparison": compare(out, snapshot) if (snapshot / "sessions").exists() else None}


def on_local_cluster(landing: Path, lake: Path, s3: str | None, tag: str, landed: int) -> dict:
    """The whole pipeline once with Sail in ``local-cluster`` mode: a driver and workers in this process exchanging
    shuffle data over Arrow Flight (the mode is read from the environment when the embedded server starts)."""
    import os

    shutil.rmtree(lake, ignore_errors=True)
    before = os.environ.get("SAIL_MODE")
    os.environ["SAIL_MODE"] = "local-cluster"
    try:
        stages, _, _ = run_pipeline(landing, lake, s3, tag)
    finally:
        if before is None:
            os.environ.pop("SAIL_MODE", None)
        else:
            os.environ["SAIL_MODE"] = before
    return summarise([stages], landed)


def bounded(landing: Path, lake: Path, s3: str | None, tag: str, landed: int, pool: str) -> dict:
    """The whole pipeline once with the engine's memory pool set to ``pool``, on a window whose decoded lines
    are larger: what does not fit has to spill. The lines' size is summed by the engine from bronze."""
    from jobs.engine import memory_limit, spark_session
    from jobs.lake import Lake
    from schemas.tables import tables

    shutil.rmtree(lake, ignore_errors=True)
    stages, _, _ = run_pipeline(landing, lake, s3, tag, engine_memory=pool)
    cfg = config_for(landing, lake, s3, tag)
    with spark_session(cfg) as spark:
        stored = Lake(cfg, spark)
        decoded = sum(stored.read(t.qualified).selectExpr("coalesce(sum(octet_length(value)), 0) AS b").first().b
                      for t in tables("bronze") if stored.exists(t.qualified))
    shutil.rmtree(lake, ignore_errors=True)
    return {"pool_bytes": memory_limit(pool), "window_bytes": int(decoded), "stages": summarise([stages], landed)}


def identity(landing: Path, lake: Path, s3: str | None) -> dict:
    from jobs.bench.identity import rates
    from jobs.engine import spark_session

    cfg = config_for(landing, lake, s3, "identity")
    with spark_session(cfg) as spark:
        return rates(spark, cfg, landing)


