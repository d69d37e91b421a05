"""One embedded engine for the whole run (dbldatagen-style session fixture) and one small landing zone."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from jobs.config import Config
from jobs.pii.keyring import crm_id_sql

SMALL = dict(customers=3000, days=3, start=date(2026, 11, 1), seed=7, shard_size=1000)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A skipped test is a test that does not exist: a skip fails unless the test is marked ``optional`` (whose
    reason the summary prints with the skip)."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and item.get_closest_marker("optional") is None:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} skipped ({reason}); a skip is an error in this suite: install what it "
                           "needs (make test does), or mark the test @pytest.mark.optional with a reason")


@pytest.fixture(scope="session")
def spark():
    from jobs.engine import spark_session

    with spark_session(Config(engine="embedded")) as session:
        yield session


@pytest.fixture(scope="session")
def refined(spark, small_landing, tmp_path_factory):
    """The small landing zone ingested, refined and curated (full) once: (config, manifest, refine reports)."""
    from tests.lakes import PII_KEY, curate, ingest_and_refine

    landing, manifest = small_landing
    cfg = Config(lake_root=str(tmp_path_factory.mktemp("lake")), landing_root=str(landing), pii_key=PII_KEY)
    reports = ingest_and_refine(spark, cfg)
    curate(spark, cfg, full=True)
    return cfg, manifest, reports


@pytest.fixture(scope="session")
def daily(spark, refined, tmp_path_factory):
    """The same landing zone taken one day at a time (late data lands up to 4 days after): a config."""
    from tests.lakes import PII_KEY, day_by_day

    cfg, _, _ = refined
    out = Config(lake_root=str(tmp_path_factory.mktemp("daily")), landing_root=cfg.landing_root, pii_key=PII_KEY)
    reports = day_by_day(spark, out, SMALL["start"], SMALL["days"] + 1)  # the last window takes the late rest
    assert all(r[s].balanced for r in reports for s in ("clickstream", "social", "orders"))
    return out


@pytest.fixture(scope="session")
def small_landing(tmp_path_factory):
    """A generated landing zone of three shards: (path, manifest)."""
    from jobs.generate import Params, generate

    out = tmp_path_factory.mktemp("landing")
    manifest = generate(Params(**SMALL), out, workers=1, progress=False)
    return out, manifest


@pytest.fixture(scope="session")
def maya(spark, tmp_path_factory):
    """A hand-made customer: (config, customer key). Maya browses the web shop, likes a post on Instagram the next day and buys in a store the day after."""
    from datetime import timedelta

    from jobs.lake import Lake
    from tests.handmade import T0, land, order, seg, social
    from tests.lakes import PII_KEY, curate, ingest_and_refine

    root = tmp_path_factory.mktemp("maya")
    landing = root / "landing"
    land(landing, "reference/customers", T0.replace(hour=0), [{"customer_id": "C7", "email": "maya@x.com",
        "social_accounts": [{"platform": "instagram", "platform_user_id": "777", "handle": "@maya"}]}])
    land(landing, "reference/products", T0.replace(hour=0), [{"product_id": "P1", "title": "Linen Dress", "category": "dresses"}])
    land(landing, "reference/campaigns", T0.replace(hour=0), [])
    land(landing, "reference/campaign_posts", T0.replace(hour=0), [])
    land(landing, "clickstream", T0, [
        seg("W7", None, T0, kind="page", event=None),
        seg("W7", None, T0 + timedelta(minutes=1), props={"product_id": "P1", "price": 59.0}),
        seg("W7", "U7", T0 + timedelta(minutes=2), kind="identify", event=None, traits={"email": "maya@x.com"}),
    ])
    land(landing, "social", T0 + timedelta(days=1), [social("instagram", "777", "@maya", T0 + timedelta(days=1))])
    land(landing, "orders", T0 + timedelta(days=2), [order(4242, "Maya@X.com", T0 + timedelta(days=2), "pos", 1001)])
    cfg = Config(lake_root=str(root / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    ingest_and_refine(spark, cfg)
    curate(spark, cfg, full=True)
    lake = Lake(cfg, spark)
    key = lake.read("silver.identity_map").where(f"identifier = concat('crm:', {crm_id_sql(cfg, repr('C7'))})").first().customer_key
    return cfg, key


@pytest.fixture
def served_engine():
    """`rapport engine serve` in its own process, as a team would run it; yields (sc:// URL, process)."""
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "engine", "serve", "--port", "0"],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = proc.stdout.readline()
        assert "listening on sc://" in first, proc.stderr.read() if proc.poll() is not None else first
        yield first.rsplit(" ", 1)[-1].strip(), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 API on loopback: moto's server in its own process, stopped at the end of the run."""
    from jobs.s3local import loopback_s3

    with loopback_s3() as url:
        yield url


@pytest.fixture
def s3_config(s3_endpoint, tmp_path):
    """A Config whose S3 settings point at the loopback server, and a fresh bucket in it."""
    import uuid

    from jobs.storage import s3_client

    cfg = Config(s3_endpoint_url=s3_endpoint, s3_region="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing")
    bucket = f"rapport-{uuid.uuid4().hex[:12]}"
    s3_client(cfg).create_bucket(Bucket=bucket)
    return cfg, bucket


@pytest.fixture
def lineage_receiver():
    """A loopback HTTP server that records every JSON body POSTed to it, as an OpenLineage backend receives them:
    (its URL, the list of events)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    events: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            events.append({"path": self.path, **json.loads(body)})
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", events
    finally:
        server.shutdown()
        server.server_close()
