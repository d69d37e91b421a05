"""Freshness under steady load: how long after the collector acknowledged an event it is in gold.

A client sends Segment events to ``rapport collect serve`` (durable sink, files rolled every ``roll`` seconds) at a
steady ``rate`` for ``seconds``. Beside it, micro-batches run one after another, each at least ``interval`` seconds
after the previous one began: ingest, refine and curate with their gates, over the landing hours from the one
before the current hour to now (a file of the last hour closed at the hour is taken by the next batch). After each
batch, the acknowledged events that became visible in ``gold.interactions`` (what ``gold.customer_timeline``
reads) are looked up by their message id; an event's latency is the batch's end less its acknowledgement. The
figures are the 50th and 95th percentiles and the maximum, with the batches' own durations; an event not visible
when the runs stop counts as not delivered.

This is the schedule ``docs/pipeline.md`` documents for micro-batches: ``RAPPORT_COLLECTOR_ROLL_SECONDS`` of a
minute and the ingest DAG every few minutes (refine and curate follow on their assets).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from jobs.bench.collector import WRITE_KEY, serve, stop

TICK = 0.1  # seconds between requests: rate / 10 events a request at 1,000 events/s


def _event(i: int) -> dict:
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"type": "track", "event": "Product Viewed", "anonymousId": f"fresh-device-{i % 3000}",
            "messageId": str(uuid.uuid4()), "timestamp": now, "sentAt": now,
            "properties": {"product_id": f"P{i % 500:06d}", "price": 19.9, "category": "bags"},
            "context": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "ip": "203.0.113.7",
                        "page": {"path": "/p/tote", "url": "https://shop.example/p/tote"}}}


async def _load(url: str, rate: int, seconds: float, acked: dict[str, float], stats: dict) -> None:
    """``rate`` events a second for ``seconds``, one request every ``TICK``; every acknowledged message id with the
    time of its acknowledgement."""
    import aiohttp

    per_request = max(1, round(rate * TICK))
    loop = asyncio.get_running_loop()
    start, i, pending = loop.time(), 0, set()

    async def send(session, events: list[dict]) -> None:
        body = json.dumps({"batch": events, "writeKey": WRITE_KEY}).encode()
        try:
            async with session.post(url + "/v1/batch", data=body, headers={"Content-Type": "application/json"}) as r:
                await r.read()
                ok = r.status == 200
        except aiohttp.ClientError:
            ok = False
        if ok:
            now = time.time()
            for e in events:
                acked[e["messageId"]] = now
        else:
            stats["refused"] += len(events)

    async with aiohttp.ClientSession() as session:
        tick = 0
        while loop.time() - start < seconds:
            events = [_event(i + k) for k in range(per_request)]
            i += per_request
            task = asyncio.ensure_future(send(session, events))
            pending.add(task)
            task.add_done_callback(pending.discard)
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * TICK - loop.time()))
        if pending:
            await asyncio.gather(*pending)
    stats["sent"] = i


def _visible(spark, lake, keys: list[str]) -> set[str]:
    """Which of ``keys`` (message ids) are in gold.interactions: a semi-join on the engine, the matches listed."""
    if not keys or not lake.exists("gold.interactions"):
        return set()
    wanted = spark.createDataFrame([(k,) for k in keys], "source_key string")
    found = (lake.read("gold.interactions").where("source_table = 'clickstream_events'")
             .join(wanted, "source_key", "left_semi").select("source_key").collect())  # the matches: a listing
    return {r.source_key for r in found}


def run(workdir: Path, seconds: float = 120.0, rate: int = 1000, interval: float = 60.0, roll: int = 60,
        progress=print) -> dict:
    """The load and the micro-batches beside it; returns latencies (seconds) and batch durations."""
    from jobs.bench.pipeline import config_for
    from jobs.engine import spark_session
    from jobs.lake import Lake
    from jobs.pipeline.runner import run_stage
    from jobs.runs.window import Window

    workdir.mkdir(parents=True, exist_ok=True)
    landing, lake_root = workdir / "landing", workdir / "lake"
    cfg = config_for(landing, lake_root, None, "freshness")
    proc, url = serve(workdir, "disk", landing, RAPPORT_COLLECTOR_ROLL_SECONDS=str(roll))
    acked: dict[str, float] = {}
    stats = {"refused": 0, "sent": 0}
    loader = threading.Thread(target=lambda: asyncio.run(_load(url, rate, seconds, acked, stats)), daemon=True)
    latencies: dict[str, float] = {}
    batches: list[dict] = []
    began = time.time()
    try:
        loader.start()
        with spark_session(cfg) as spark:
            lake = Lake(cfg, spark)
            # batches go on until every acknowledged event is visible, or two rolls and two batches after the load
            deadline = began + seconds + 2 * roll + 2 * interval + 120
            while time.time() < deadline:
                t0 = time.time()
                hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
                window = Window(hour - timedelta(hours=1), None)
                for stage in ("ingest", "refine", "curate"):
                    run_stage(spark, cfg, stage, window)
                done = time.time()
                waiting = [k for k in list(acked) if k not in latencies]
                for key in _visible(spark, lake, waiting):
                    latencies[key] = done - acked[key]
                batches.append({"started": round(t0 - began, 1), "seconds": round(done - t0, 1),
                                "visible": len(latencies), "acknowledged": len(acked)})
                progress(f"  micro-batch at {t0 - began:5.0f}s: {done - t0:5.1f}s, {len(latencies):,} of "
                         f"{len(acked):,} acknowledged events in gold")
                if not loader.is_alive() and len(latencies) == len(acked):
                    break
                time.sleep(max(0.0, t0 + interval - time.time()))
    finally:
        stop(proc)
        loader.join(timeout=60)
    values = sorted(latencies.values())

    def pct(p: float) -> float | None:
        return round(values[min(len(values) - 1, int(p * len(values)))], 1) if values else None

    return {"rate": rate, "seconds": seconds, "interval_seconds": interval, "roll_seconds": roll,
            "acknowledged": len(acked), "refused": stats["refused"], "visible": len(values),
            "not_visible": len(acked) - len(values), "p50_seconds": pct(0.50), "p95_seconds": pct(0.95),
            "max_seconds": round(values[-1], 1) if values else None, "batches": batches}
