"""Durable before it answers: clients send without pause, the collector is SIGKILLed mid-load and started again;
every message id a client saw acknowledged is in the landing zone, and nothing landed twice but what a client
sent again after a failure. With an s3:// landing root, files leave the spool only once the bucket holds them."""

from __future__ import annotations

import gzip
import signal
import socket
import threading
import time
from collections import Counter

import httpx
import pytest

from tests.jobs.collector.conftest import WRITE_KEY, collector_env, start

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def landed_ids(files) -> list[str]:
    import json

    return [json.loads(line)["messageId"] for p in files for line in gzip.decompress(p.read_bytes()).splitlines()]


def test_every_acknowledged_event_survives_a_kill(tmp_path):
    landing, port = tmp_path / "landing", free_port()
    env = collector_env(landing, RAPPORT_COLLECTOR_ROLL_SECONDS=3600)
    running = start(env, landing, port=port)
    url = running.url
    acked, resent, lock, stop = set(), set(), threading.Lock(), threading.Event()
    counts = Counter()

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=5) as c:
            i = 0
            while not stop.is_set():
                ids = [f"c{n}-{i}-{k}" for k in range(20)]
                batch = [{"type": "track", "event": "Product Viewed", "anonymousId": f"dev-{n}", "messageId": m,
                          "timestamp": "2026-11-26T10:00:00Z", "properties": {"product_id": "P1"}} for m in ids]
                i += 1
                for attempt in range(600):
                    if attempt:
                        with lock:
                            resent.update(ids)  # sent again after a failure: may land twice
                    try:
                        r = c.post("/v1/batch", json={"batch": batch, "writeKey": WRITE_KEY})
                        counts[r.status_code] += 1
                        if r.status_code == 200:
                            with lock:
                                acked.update(ids)
                            break
                    except httpx.TransportError:
                        counts["transport"] += 1
                    time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    time.sleep(3)
    before_kill = len(acked)
    running.proc.send_signal(signal.SIGKILL)
    running.proc.wait()
    time.sleep(1)
    again = start(env, landing, port=port)
    time.sleep(3)
    stop.set()
    for t in threads:
        t.join(60)
    again.stop()
    assert before_kill > 1000 and len(acked) > before_kill and counts["transport"] > 0, counts
    assert not [p for p in landing.rglob("*.inprogress")]  # the crashed instance's file was finished at start
    assert "collector recovery:" in again.log
    ids = landed_ids(again.landed("clickstream"))
    assert acked <= set(ids)  # no acknowledged event lost
    twice = {m for m, n in Counter(ids).items() if n > 1}
    assert twice <= resent  # and only what was sent again after a failure is there twice


def test_closed_files_go_to_the_bucket_and_stay_in_the_spool_until_it_holds_them(tmp_path, s3_endpoint):
    from jobs.config import Config
    from jobs.storage import s3_client

    spool = tmp_path / "spool"
    s3 = dict(RAPPORT_S3_ENDPOINT_URL=s3_endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    env = collector_env(tmp_path / "unused", RAPPORT_LANDING_ROOT="s3://rapport-landing-ship/raw",
                        RAPPORT_COLLECTOR_SPOOL=str(spool), **s3)
    client = s3_client(Config(s3_endpoint_url=s3_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing"))

    def send(url: str, first: int) -> None:
        batch = [{"type": "track", "event": "Product Viewed", "anonymousId": "d", "messageId": f"s3-{first + k}",
                  "timestamp": "2026-11-26T10:00:00Z"} for k in range(50)]
        assert httpx.post(f"{url}/v1/batch", json={"batch": batch, "writeKey": WRITE_KEY}).status_code == 200

    running = start(env, spool, port=0)  # the bucket does not exist yet: uploads fail
    send(running.url, 0)
    running.stop()
    kept = sorted(spool.rglob("*.json.gz"))
    assert len(kept) == 1 and "upload of" in running.log  # closed, not uploaded, kept
    client.create_bucket(Bucket="rapport-landing-ship")
    running = start(env, spool, port=0)  # ships what the last run left, then its own
    send(running.url, 50)
    running.stop()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="rapport-landing-ship")["Contents"])
    assert len(keys) == 2 and all(k.startswith("raw/clickstream/dt=") and k.endswith(".json.gz") for k in keys)
    assert list(spool.rglob("*.json.gz")) == []
    bodies = [client.get_object(Bucket="rapport-landing-ship", Key=k)["Body"].read() for k in keys]
    ids = sorted(__import__("json").loads(x)["messageId"] for b in bodies for x in gzip.decompress(b).splitlines())
    assert ids == sorted(f"s3-{i}" for i in range(100))
