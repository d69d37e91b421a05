"""Generate a landing zone: sources, reference data, the truth about identities, and ``manifest.json``.

Persons are split into shards of ``shard_size``. A shard has its own random stream
(seeded by ``seed`` and the shard number) and writes its own ``part-<shard>`` files,
so the bytes on disk depend only on the parameters, not on how many worker
processes ran them. The manifest holds the true count of every kind of line and
balances: ``lines = valid + bad + exact_duplicates + id_conflicts + truncated lines``.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import queue
import random
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from jobs.generate.clickstream import kiosk_visit, web_session
from jobs.generate.context import ShardContext
from jobs.generate.defects import BAD_KINDS, Injector, dumps
from jobs.generate.landing import Sink, remove_generated, write_jsonl_gz
from jobs.generate.orders import place_order
from jobs.generate.population import (
    STORES, USER_AGENTS, Device, Person, crm_record, make_catalogue, make_person, truth_record, uid,
)
from jobs.generate.social import interaction
from jobs.text import table
from schemas.sources import EVENT_SOURCES as SOURCES, REFERENCE_SOURCES, source as source_of

GENERATOR_VERSION = 1
# Share of activity per hour of day (UTC): quiet nights, a lunch bump, a busy evening.
HOUR_WEIGHTS = (0.3, 0.2, 0.15, 0.1, 0.1, 0.15, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0,
                1.1, 1.0, 0.95, 0.95, 1.0, 1.1, 1.3, 1.5, 1.6, 1.4, 1.0, 0.6)
# Expected visits per person-day for a person of activity weight 1, by kind and channel.
RATES = {
    "registered": {"web": 0.30, "social": 0.30, "store": 0.02},
    "prospect": {"web": 0.18, "social": 0.25, "store": 0.0},
    "social_only": {"web": 0.0, "social": 0.90, "store": 0.0},
    "store_only": {"web": 0.0, "social": 0.10, "store": 0.06},
    "bot": {"web": 0.30, "social": 0.0, "store": 0.0},
}


class GeneratorError(ValueError):
    """Parameters that cannot produce a data set; the message says which and why."""


@dataclass(frozen=True)
class Params:
    customers: int
    days: int
    start: date
    seed: int = 42
    bad_rate: float = 0.01
    dup_rate: float = 0.005
    shard_size: int = 10_000
    late_reference: tuple[tuple[str, int], ...] = ()  # (extract, days): land that extract so many days late

    def validate(self) -> None:
        if self.customers < 1:
            raise GeneratorError(f"--customers {self.customers}: need at least 1 customer")
        if self.days < 1:
            raise GeneratorError(f"--days {self.days}: need at least 1 day")
        for name in ("bad_rate", "dup_rate"):
            if not 0 <= getattr(self, name) < 0.5:
                raise GeneratorError(f"--{name.replace('_', '-')} {getattr(self, name)}: must be in [0, 0.5)")
        if self.shard_size < 100:
            raise GeneratorError(f"--shard-size {self.shard_size}: must be at least 100")
        for name, days in self.late_reference:
            if name not in REFERENCE_SOURCES or days < 0:
                raise GeneratorError(f"--late-reference {name}={days}: name one of {', '.join(REFERENCE_SOURCES)} "
                                     "and a number of days >= 0")

    @property
    def shards(self) -> list[tuple[int, int, int]]:
        n = math.ceil(self.customers / self.shard_size)
        return [(k, k * self.shard_size, min(self.customers, (k + 1) * self.shard_size)) for k in range(n)]

    @property
    def start_ts(self) -> float:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=timezone.utc).timestamp()


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def day_factor(day: date, campaigns: list[dict]) -> float:
    """Weekends are busier; a campaign's first two days spike, the rest of it lifts a little."""
    factor = 1.2 if day.weekday() >= 5 else 1.0
    for c in campaigns:
        age = (day - date.fromisoformat(c["start_date"])).days
        factor += 0.6 if age < 2 else 0.15
    return factor


_HOUR_CUM = [sum(HOUR_WEIGHTS[: i + 1]) for i in range(24)]


def person_day(ctx: ShardContext, person: Person, day_ts: float, factor: float, campaigns: list[dict]) -> None:
    rng = ctx.rng
    rates = RATES[person.kind]
    w = person.weight * factor

    def when() -> float:
        return day_ts + rng.choices(range(24), cum_weights=_HOUR_CUM)[0] * 3600 + rng.random() * 3600

    if person.devices:
        for _ in range(poisson(rng, rates["web"] * w)):
            campaign = rng.choice(campaigns) if campaigns and rng.random() < 0.5 else None
            web_session(ctx, person, rng.choice(person.devices), when(), campaign)
    if person.social:
        for _ in range(poisson(rng, rates["social"] * w)):
            interaction(ctx, person, when(), campaigns)
    for _ in range(poisson(rng, rates["store"] * w)):
        t = when()
        if person.user_id and rng.random() < 0.15:
            kiosk_visit(ctx, person, t)
        items = [(ctx.pick_product(), 1) for _ in range(1 + (rng.random() < 0.4) + (rng.random() < 0.15))]
        place_order(ctx, person, t, "pos", items, location_id=rng.choice(STORES), with_email=rng.random() < 0.75)


def simulate_shard(params: Params, out: Path, shard: int, lo: int, hi: int, progress=None) -> dict:
    """Simulate persons ``lo..hi`` over the window and write the shard's files. Returns its counts."""
    rng = random.Random(f"{params.seed}:{shard}")
    catalogue = make_catalogue(params.seed, params.customers, params.start, params.days)
    injector = Injector(rng, params.bad_rate, params.dup_rate, force_each=shard == 0)
    end_ts = params.start_ts + params.days * 86400
    ctx = ShardContext(shard, rng, catalogue, injector, end_ts, Sink())
    ctx.kiosks = [Device(uid(rng), "kiosk", USER_AGENTS["desktop"][0], f"198.51.100.{10 + i}", 0.0) for i in range(2)]
    persons = [make_person(rng, i, params.start) for i in range(lo, hi)]
    reported = 0
    for d in range(params.days):
        day = params.start + timedelta(days=d)
        campaigns = catalogue.active_campaigns(day)
        factor = day_factor(day, campaigns)
        day_ts = params.start_ts + d * 86400
        for n, person in enumerate(persons, 1):
            person_day(ctx, person, day_ts, factor, campaigns)
            if progress is not None and n % 2000 == 0:
                progress.put((2000, ctx.sink.count - reported))
                reported = ctx.sink.count
        if progress is not None:
            progress.put((len(persons) % 2000, ctx.sink.count - reported))
            reported = ctx.sink.count

    files, stats = ctx.sink.write(out, shard, rng, truncate=shard % 4 == 0)
    crm = [dumps(crm_record(p)) for p in persons if p.customer_id]
    rel = f"{reference_dir(params, 'customers')}/part-{shard:05d}.json.gz"
    files.append({"path": rel, **write_jsonl_gz(out / rel, crm)})
    truth = [dumps(truth_record(p)) for p in persons]
    truth.extend(dumps({"person": None, "kind": "kiosk", "anonymous_ids": [k.anonymous_id]}) for k in ctx.kiosks)
    write_jsonl_gz(out / f"_truth/persons/part-{shard:05d}.json.gz", truth)
    info = Counter(ctx.info)
    info.update(f"persons_{p.kind}" for p in persons)
    return {"files": files, "stats": stats, "info": dict(info)}


def _run_shards(params: Params, out: Path, workers: int, on_progress: Callable[[int, int], None]) -> list[dict]:
    shards = params.shards
    if workers <= 1 or len(shards) == 1:
        results = []

        class Direct:
            def put(self, item):
                on_progress(*item)

        for shard, lo, hi in shards:
            results.append(simulate_shard(params, out, shard, lo, hi, Direct()))
        return results
    # spawn, not fork: the caller may hold threads (a Spark session, Airflow) that fork would copy mid-flight
    mp = multiprocessing.get_context("spawn")
    with mp.Manager() as manager, ProcessPoolExecutor(max_workers=workers, mp_context=mp) as pool:
        q = manager.Queue()
        futures = [pool.submit(simulate_shard, params, out, s, lo, hi, q) for s, lo, hi in shards]
        while not all(f.done() for f in futures):
            try:
                on_progress(*q.get(timeout=0.2))
            except queue.Empty:
                pass
        while not q.empty():
            on_progress(*q.get())
        return [f.result() for f in futures]  # in shard order, whatever order they finished in


def reference_dir(params: Params, name: str) -> str:
    """Reference extracts land like events, at hour 00 of the first day of the window, or days later when the
    extract is to land late (``late_reference``: the events it describes arrive before it)."""
    late = dict(params.late_reference).get(name, 0)
    return f"{source_of(name).landing}/dt={(params.start + timedelta(days=late)).isoformat()}/hour=00"


def _catalogue_files(params: Params, out: Path) -> list[dict]:
    cat = make_catalogue(params.seed, params.customers, params.start, params.days)
    files = []
    for name, rows in (("products", cat.products), ("campaigns", cat.campaigns), ("campaign_posts", cat.posts)):
        rel = f"{reference_dir(params, name)}/part-00000.json.gz"
        files.append({"path": rel, **write_jsonl_gz(out / rel, [dumps(r) for r in rows])})
    return files


def build_manifest(params: Params, results: list[dict], catalogue_files: list[dict]) -> dict:
    sources = {}
    for source in SOURCES:
        tags: Counter = Counter()
        for r in results:
            tags.update(r["stats"].get(source, {}))
        files = [f for r in results for f in r["files"] if f["path"].startswith(source + "/")]
        entry = {
            "files": len(files),
            "bytes": sum(f["bytes"] for f in files),
            "lines": sum(f["lines"] for f in files),
            "valid": sum(n for tag, n in tags.items() if tag.startswith("valid")),
            "late_arrivals": sum(n for tag, n in tags.items() if tag.startswith("valid") and tag.endswith("_late")),
            "bad": {kind: tags.get(kind, 0) for kind in BAD_KINDS[source]},
            "exact_duplicates": tags.get("exact_duplicate", 0),
            "id_conflicts": tags.get("id_conflict", 0),
            "truncated_gzip": {"files": tags.get("truncated_member", 0), "members": tags.get("truncated_member", 0),
                               "lines": tags.get("truncated_line", 0)},
        }
        accounted = (entry["valid"] + sum(entry["bad"].values()) + entry["exact_duplicates"] + entry["id_conflicts"]
                     + entry["truncated_gzip"]["lines"])
        if accounted != entry["lines"]:  # the generator's own books must balance before anyone relies on them
            raise AssertionError(f"{source}: {entry['lines']} lines written but {accounted} accounted for")
        sources[source] = entry
    reference = {}
    prefixes = {source_of(name).landing + "/": name for name in REFERENCE_SOURCES}
    for f in catalogue_files + [f for r in results for f in r["files"] if f["path"].startswith(tuple(prefixes))]:
        name = next(n for p, n in prefixes.items() if f["path"].startswith(p))
        ref = reference.setdefault(name, {"files": 0, "lines": 0})
        ref["files"] += 1
        ref["lines"] += f["lines"]
    info: Counter = Counter()
    for r in results:
        info.update(r["info"])
    end = params.start + timedelta(days=params.days)
    return {
        "generator": {"version": GENERATOR_VERSION, **asdict(params), "start": params.start.isoformat(),
                      "end": end.isoformat(), "shards": len(params.shards)},
        "sources": sources,
        "reference": reference,
        "info": dict(sorted(info.items())),
        "files": sorted((f for r in results for f in r["files"]), key=lambda f: f["path"]) + catalogue_files,
    }


def generate(params: Params, out: str | Path, workers: int | None = None, overwrite: bool = False,
             progress: bool | None = None) -> dict:
    """Generate a landing zone under ``out`` and return its manifest (also written as ``out/manifest.json``).

    ``progress``: True shows a bar, False none, None a bar only on a terminal.
    """
    from tqdm import tqdm

    params.validate()
    out = Path(out)
    if (out / "manifest.json").exists():
        if not overwrite:
            raise GeneratorError(
                f"{out} already holds generated data (manifest.json). Pass --overwrite to replace it, or choose "
                "another --out."
            )
        remove_generated(out, SOURCES)
    out.mkdir(parents=True, exist_ok=True)
    workers = workers or min(os.cpu_count() or 1, len(params.shards))
    started = time.perf_counter()
    disable = None if progress is None else not progress
    with tqdm(total=params.customers * params.days, unit=" person-days", unit_scale=True, disable=disable,
              desc="generate") as bar:
        events = 0

        def on_progress(person_days: int, new_events: int) -> None:
            nonlocal events
            events += new_events
            bar.update(person_days)
            bar.set_postfix_str(f"{events:,} lines", refresh=False)

        results = _run_shards(params, out, workers, on_progress)
    manifest = build_manifest(params, results, _catalogue_files(params, out))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    manifest["elapsed_seconds"] = time.perf_counter() - started  # not in the file: the file is deterministic
    return manifest


def format_generate_summary(manifest: dict, out: str | Path) -> str:
    rows = []
    for source, s in manifest["sources"].items():
        rows.append((source, s["files"], f"{s['lines']:,}", f"{s['valid']:,}", f"{sum(s['bad'].values()):,}",
                     f"{s['exact_duplicates'] + s['id_conflicts']:,}", f"{s['late_arrivals']:,}",
                     s["truncated_gzip"]["members"]))
    lines = sum(s["lines"] for s in manifest["sources"].values())
    secs = manifest.get("elapsed_seconds") or 0
    g = manifest["generator"]
    return "\n".join([
        f"Generated {lines:,} lines for {g['customers']:,} customers over {g['days']} days "
        f"({g['start']} .. {g['end']}, seed {g['seed']}) into {out}"
        + (f" in {secs:.1f}s ({lines / secs:,.0f} lines/s)" if secs else ""),
        table(rows, ("source", "files", "lines", "valid", "bad", "dup/conflict", "late", "cut gzip")),
        "reference: " + ", ".join(f"{k} {v['lines']:,}" for k, v in manifest["reference"].items()),
        f"manifest: {Path(out) / 'manifest.json'}",
    ])
