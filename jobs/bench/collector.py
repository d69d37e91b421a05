"""The collector under load: events/s and latency for batches of 1, 20 and 100 events at 8, 32 and 128
concurrent clients, durable (every request answered after fsync) and with the memory sink (nothing kept), so
the difference is what durability costs.

The load comes from an asyncio client (aiohttp on uvloop) in this process, the collector runs in its own
process (``rapport collect serve``, one uvicorn worker): on a 2-core machine they share the cores, so the
figures are a floor for a collector with the machine to itself. Each cell warms up for a second, then counts
for ``seconds``. Latency is request to response, measured by the client.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

BATCHES = (1, 20, 100)
CONCURRENCY = (8, 32, 128)
SINKS = ("disk", "memory")
WRITE_KEY = "bench-write-key"
REPO = Path(__file__).resolve().parents[2]


def _event(i: int) -> dict:
    return {"type": "track", "event": "Product Viewed", "anonymousId": f"bench-device-{i % 5000}",
            "messageId": str(uuid.uuid4()), "timestamp": "2026-11-26T10:00:00.000Z",
            "properties": {"product_id": f"P{i % 500:06d}", "price": 19.9, "category": "bags"},
            "context": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "ip": "203.0.113.7",
                        "page": {"path": "/p/tote", "url": "https://shop.example/p/tote"}}}


def _bodies(batch: int, n: int = 64) -> list[bytes]:
    """Request bodies made before the clock starts: the client measures the collector, not JSON encoding."""
    if batch == 1:
        return [json.dumps({**_event(k), "writeKey": WRITE_KEY}).encode() for k in range(n)]
    return [json.dumps({"batch": [_event(k * batch + j) for j in range(batch)], "writeKey": WRITE_KEY}).encode()
            for k in range(n)]


async def _load(url: str, batch: int, concurrency: int, seconds: float, warmup: float = 1.0) -> dict:
    import aiohttp

    path = "/v1/track" if batch == 1 else "/v1/batch"
    bodies = _bodies(batch)
    latencies: list[float] = []
    counts = {"ok": 0, "busy": 0, "error": 0}
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    end = start + seconds

    async def worker(w: int, session) -> None:
        i = w
        while True:
            now = loop.time()
            if now >= end:
                return
            body = bodies[i % len(bodies)]
            i += concurrency
            t0 = time.perf_counter()
            try:
                async with session.post(url + path, data=body, headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    status = r.status
            except aiohttp.ClientError:
                status = 0
            took = time.perf_counter() - t0
            if now < start:
                continue
            if status == 200:
                counts["ok"] += 1
                latencies.append(took)
            elif status == 503:
                counts["busy"] += 1
            else:
                counts["error"] += 1

    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(w, session) for w in range(concurrency)))
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2) if latencies else 0.0

    return {"batch": batch, "concurrency": concurrency, "requests_per_second": round(counts["ok"] / seconds),
            "events_per_second": round(counts["ok"] * batch / seconds), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "busy_503": counts["busy"], "errors": counts["error"]}


def serve(workdir: Path, sink: str, landing: Path | None = None, **settings: str) -> tuple[subprocess.Popen, str]:
    """``rapport collect serve`` in its own process, ready; (process, URL). ``settings``: more environment."""
    landing = landing or workdir / f"landing-{sink}"
    env = {**os.environ, "RAPPORT_LANDING_ROOT": str(landing), "RAPPORT_COLLECTOR_WRITE_KEYS": f"{WRITE_KEY}=bench",
           "PYTHONPATH": str(REPO), **settings}
    log = open(workdir / f"collector-{sink}.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "collect", "serve", "--port", "0", "--sink", sink,
                             "--log-level", "warning"], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
    first = proc.stdout.readline()
    if "listening on http://" not in first:
        raise RuntimeError(f"the collector did not start: {(workdir / f'collector-{sink}.log').read_text()[-2000:]}")
    url = first.split("listening on ", 1)[1].split(" ", 1)[0]
    import urllib.request

    for _ in range(300):
        try:
            if urllib.request.urlopen(f"{url}/ready", timeout=2).status == 200:
                return proc, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the collector never became ready")


def stop(proc: subprocess.Popen) -> None:
    """Stop a collector started by ``serve``: SIGTERM (it closes its files), killed after a minute."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()


def run(workdir: Path, seconds: float = 5.0, progress=print) -> list[dict]:
    """Every cell, durable then memory; returns one row per cell."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for sink in SINKS:
        proc, url = serve(workdir, sink)
        try:
            for batch in BATCHES:
                for conc in CONCURRENCY:
                    row = {"sink": sink, **asyncio.run(_load(url, batch, conc, seconds, warmup=min(1.0, seconds)))}
                    rows.append(row)
                    progress(f"  collector {sink:6} batch {batch:3} x {conc:3} clients: {row['events_per_second']:>8,} "
                             f"events/s, {row['requests_per_second']:>6,} requests/s, p50 {row['p50_ms']} ms, "
                             f"p99 {row['p99_ms']} ms" + (f", {row['busy_503']} busy" if row["busy_503"] else ""))
        finally:
            stop(proc)
    return rows
