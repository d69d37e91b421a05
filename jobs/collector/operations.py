"""The collector's operations endpoints: ``/health`` (alive), ``/ready`` (can write: the writer runs, the last write
worked, disk and queue have room) and ``/metrics`` (Prometheus). A mix-in of ``jobs.collector.app.Collector``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response


class Operations:
    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "alive", "instance": self.spool.instance})

    async def ready(self, request: Request) -> Response:
        why = []
        if self.sink == "disk":
            if self.spool._task is None or self.spool._task.done():
                why.append("the writer is not running")
            if not self.spool.healthy:
                why.append(f"the last write failed: {self.spool.last_error}")
            if self.disk_low():
                why.append(f"free disk is below {self.cfg.collector_min_free_mb} MB")
            if self.spool.pending > 0.9 * self.cfg.collector_queue_events:
                why.append(f"{self.spool.pending:,} events are waiting")
        if why:
            return JSONResponse({"status": "not ready", "why": why}, 503)
        return JSONResponse({"status": "ready", "instance": self.spool.instance})

    async def metrics_endpoint(self, request: Request) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.metrics.queue.set(self.spool.pending)
        if self.shipper is not None:
            self.metrics.shipping_backlog.set(self.shipper.backlog)
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)
