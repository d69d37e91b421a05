"""The collector's ASGI application (Starlette).

Endpoints (docs/collector.md):

- Segment HTTP Tracking API: ``POST /v1/track|page|screen|identify|group|alias|batch`` and ``/v1/import``,
  ``/v1/b``. The write key is the Basic-auth username (RudderStack's SDKs, older Segment clients) or
  ``writeKey`` in the body (segment-analytics-python 2.3 and later); it names a site (RAPPORT_COLLECTOR_WRITE_KEYS).
- Snowplow tracker protocol: ``POST /com.snowplowanalytics.snowplow/tp2`` and ``GET /i``.
- Webhooks (``jobs.collector.webhooks``): ``POST /webhooks/shopify``, ``GET|POST /webhooks/meta``, ``GET|POST /webhooks/x``,
  ``POST /webhooks/tiktok``, each verified on the raw body before anything is landed.
- ``GET /health`` (alive), ``GET /ready`` (can write), ``GET /metrics`` (Prometheus).

Every accepted request is answered only after its lines are fsynced (``spool``). Limits are checked before the
body is read whole, and again after gzip inflation. Logs name the endpoint, status and reason, never a payload,
a query string or a key.
"""

from __future__ import annotations

import logging
import os
import time
import zlib
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jobs.collector import records
from jobs.collector.metrics import Metrics
from jobs.collector.records import Refused
from jobs.collector.spool import Spool, SpoolFull
from jobs.collector.operations import Operations
from jobs.collector.tracking import Tracking
from jobs.collector.webhooks import Webhooks
from jobs.config import Config
from jobs.storage import is_s3, local_root

log = logging.getLogger("jobs.collector")
SINKS = ("disk", "memory")


class Collector(Tracking, Webhooks, Operations):
    """The collector's state: settings, the spool (and shipper), the metrics."""

    def __init__(self, cfg: Config, sink: str = "disk"):
        if sink not in SINKS:
            raise ValueError(f"sink must be one of {SINKS}")
        self.cfg, self.sink = cfg, sink
        self.keys = cfg.write_keys()
        self.max_event = cfg.collector_max_event_kb * 1024
        self.max_request = cfg.collector_max_request_kb * 1024
        self.max_batch = cfg.collector_max_batch
        self.metrics = Metrics()
        target = cfg.landing_root if is_s3(cfg.landing_root) else None
        spool_dir = cfg.collector_spool or ("./collector-spool" if target else local_root(cfg.landing_root))
        self.spool_dir = Path(spool_dir).resolve()
        self.shipper = None
        if target:
            from jobs.collector.shipper import Shipper

            self.shipper = Shipper(cfg, self.spool_dir, target, on_shipped=self.metrics.shipped.inc)
        self.spool = Spool(self.spool_dir, commit_ms=cfg.collector_commit_ms, roll_seconds=cfg.collector_roll_seconds,
                           max_pending=cfg.collector_queue_events, on_closed=self._closed,
                           on_commit=self.metrics.commit)
        self._disk_checked, self._disk_free = 0.0, None
        self.suppressed_ids: frozenset[str] = frozenset()  # identifiers of people who asked not to be tracked

    # ---- suppression (docs/privacy.md)
    def load_suppressions(self) -> int:
        """The active identifiers of ``ops.suppressions`` (as the identity map names them; emails as keyed
        hashes), read with delta-rs: a small table of hashes and ids."""
        from jobs.lake import Lake

        try:
            lake = Lake(self.cfg)
            if not lake.exists("ops.suppressions"):
                return 0
            rows = lake.delta_table("ops.suppressions").to_pyarrow_table(columns=["identifier", "active"]).to_pylist()
        except Exception as exc:  # the lake is unreachable: keep the last list, say so
            log.warning("could not read ops.suppressions (%s); keeping the last list", type(exc).__name__)
            return len(self.suppressed_ids)
        self.suppressed_ids = frozenset(r["identifier"] for r in rows if r["active"])
        return len(self.suppressed_ids)

    async def _refresh_suppressions(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(60)
            await asyncio.to_thread(self.load_suppressions)

    def is_suppressed(self, event: dict) -> bool:
        ids = self.suppressed_ids
        if not ids:
            return False
        for kind, field_ in (("anon", "anonymousId"), ("user", "userId")):
            value = event.get(field_)
            if isinstance(value, str) and f"{kind}:{value}" in ids:
                return True
        traits = event.get("traits")
        email = traits.get("email") if isinstance(traits, dict) else None
        if isinstance(email, str) and self.cfg.pii_key:
            from jobs.pii import keyring

            return f"email:{keyring.digest(email.strip().lower(), keyring.hold(self.cfg.pii_keys()))}" in ids
        return False

    def _closed(self, path: Path) -> None:
        self.metrics.files_closed.inc()
        if self.shipper is not None:
            self.shipper.ship(path)

    @asynccontextmanager
    async def lifespan(self, app):
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        recovered = self.spool.open()
        if self.shipper is not None:
            self.shipper.start()
        await self.spool.start()
        import asyncio

        suppressed = await asyncio.to_thread(self.load_suppressions)  # before the first request is answered
        refresher = asyncio.create_task(self._refresh_suppressions(), name="rapport-collector-suppressions")
        log.info("collector %s writing to %s (%s)%s; %d write key(s), %d suppressed identifier(s); recovered %d "
                 "file(s), %d torn bytes kept apart", self.spool.instance, self.spool_dir, self.sink,
                 f", shipping to {self.cfg.landing_root}" if self.shipper else "", len(self.keys), suppressed,
                 recovered.files, recovered.torn_bytes)
        try:
            yield
        finally:
            refresher.cancel()
            await self.spool.stop()
            if self.shipper is not None:
                self.shipper.stop()
            log.info("collector %s stopped; every file closed", self.spool.instance)

    # ---- shared
    def disk_low(self) -> bool:
        now = time.monotonic()
        if now - self._disk_checked > 1.0:
            st = os.statvfs(self.spool_dir)
            self._disk_free, self._disk_checked = st.f_bavail * st.f_frsize, now
        return self._disk_free is not None and self._disk_free < self.cfg.collector_min_free_mb * 1024 * 1024

    async def read(self, request: Request, endpoint: str) -> bytes:
        """The body, inflated if gzip, within the request limit, refused as soon as it passes it."""
        limit = self.max_request
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise Refused(400, "malformed", "Content-Length is not a number")
            if int(length) > limit:
                raise Refused(413, "request_too_large", f"the body is {int(length):,} bytes; the limit is "
                                                        f"{limit // 1024} KB (RAPPORT_COLLECTOR_MAX_REQUEST_KB)")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Refused(413, "request_too_large", f"the body passes {limit // 1024} KB "
                                                        "(RAPPORT_COLLECTOR_MAX_REQUEST_KB)")
            chunks.append(chunk)
        body = b"".join(chunks)
        self.metrics.received_bytes.labels(endpoint).inc(size)
        encoding = request.headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            d = zlib.decompressobj(47)  # gzip or zlib, by the header
            try:
                out = d.decompress(body, limit + 1)
            except zlib.error:
                raise Refused(400, "bad_gzip", "the body is not valid gzip") from None
            if len(out) > limit or d.unconsumed_tail:
                raise Refused(413, "inflates_too_large", f"the body inflates past {limit // 1024} KB "
                                                         "(RAPPORT_COLLECTOR_MAX_REQUEST_KB)")
            if not d.eof:
                raise Refused(400, "bad_gzip", "the gzip body is cut short")
            body = out
        elif encoding not in ("", "identity"):
            raise Refused(415, "unsupported_encoding", f"Content-Encoding {encoding[:20]!r} is not gzip")
        return body

    async def land(self, source: str, lines: list[bytes], endpoint: str) -> None:
        if self.sink == "memory":
            self.metrics.accepted.labels(source, endpoint).inc(len(lines))
            return
        if self.disk_low():
            raise Refused(503, "disk_low", f"free disk under {self.spool_dir} is below "
                                           f"{self.cfg.collector_min_free_mb} MB (RAPPORT_COLLECTOR_MIN_FREE_MB)")
        try:
            await self.spool.submit(source, lines)
        except SpoolFull as exc:
            raise Refused(503, "queue_full", f"busy: {exc}; retry") from None
        except OSError as exc:
            raise Refused(503, "write_failed", f"the collector could not write ({type(exc).__name__}); retry") from None
        self.metrics.accepted.labels(source, endpoint).inc(len(lines))

    @staticmethod
    def client_ip(request: Request) -> str | None:
        forwarded = request.headers.get("x-forwarded-for")
        if forwarded:
            return forwarded.split(",", 1)[0].strip()[:64]
        return request.client.host if request.client else None

    def refused(self, exc: Refused, endpoint: str) -> JSONResponse:
        self.metrics.rejected.labels(exc.reason).inc()
        log.info("refused %s: %d %s", endpoint, exc.status, exc.reason)
        headers = {"Retry-After": "1"} if exc.status == 503 else None
        return JSONResponse({"error": exc.message, "reason": exc.reason}, exc.status, headers=headers)

    @staticmethod
    def loads(body: bytes):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Refused(400, "malformed", "the body is not JSON") from None


def create_app(cfg: Config | None = None, sink: str | None = None) -> Starlette:
    """The ASGI app (``uvicorn --factory jobs.collector.app:create_app``); settings from the environment."""
    c = Collector(cfg or Config.load(), sink or os.environ.get("RAPPORT_COLLECTOR_SINK", "disk"))
    routes = [
        Route("/v1/{kind}", c.segment, methods=["POST"]),
        Route("/com.snowplowanalytics.snowplow/tp2", c.snowplow_post, methods=["POST"]),
        Route("/i", c.snowplow_get, methods=["GET"]),
        Route("/webhooks/shopify", c.shopify, methods=["POST"]),
        Route("/webhooks/meta", c.meta, methods=["GET", "POST"]),
        Route("/webhooks/x", c.x, methods=["GET", "POST"]),
        Route("/webhooks/tiktok", c.tiktok, methods=["POST"]),
        Route("/health", c.health, methods=["GET"]),
        Route("/ready", c.ready, methods=["GET"]),
        Route("/metrics", c.metrics_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=c.lifespan)
    app.state.collector = c
    return app
