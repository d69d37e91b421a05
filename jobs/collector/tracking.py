"""The collector's tracking endpoints: Segment's HTTP Tracking API (RudderStack's SDKs and older Segment clients
included: the write key as the Basic-auth username or ``writeKey`` in the body) and Snowplow's tracker protocol
(``POST …/tp2``, ``GET /i``). A mix-in of ``jobs.collector.app.Collector``, whose reading, limits, landing and
refusals they use."""

from __future__ import annotations

import base64
import binascii
import time
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from jobs.collector import records
from jobs.collector.records import Refused

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


class Tracking:
    def write_key(self, request: Request, parsed) -> str:
        key = None
        auth = request.headers.get("authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                key = base64.b64decode(auth[6:].strip(), validate=True).decode().split(":", 1)[0]
            except (binascii.Error, UnicodeDecodeError):
                raise Refused(401, "bad_auth", "the Authorization header is not Basic base64(writeKey:)") from None
        if not key and isinstance(parsed, dict) and isinstance(parsed.get("writeKey"), str):
            key = parsed["writeKey"]
        if not key:
            raise Refused(401, "no_write_key", "no write key: send it as the Basic-auth username or as writeKey")
        site = self.keys.get(key)
        if site is None:
            raise Refused(401, "unknown_write_key", "unknown write key")
        return site

    async def segment(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        endpoint = "segment"
        try:
            if kind not in records.SEGMENT_TYPES + records.BATCH_PATHS:
                raise Refused(404, "unknown_path", f"/v1/{kind[:40]} is not a Segment endpoint")
            parsed = self.loads(await self.read(request, endpoint))
            site = self.write_key(request, parsed)
            lines, filled, dropped = records.segment(parsed, kind, received_at=records.iso(time.time()), site=site,
                                                     ip=self.client_ip(request), max_event=self.max_event,
                                                     max_batch=self.max_batch, suppressed=self.is_suppressed)
            if dropped:
                self.metrics.suppressed.inc(dropped)
            await self.land("clickstream", lines, endpoint)
        except Refused as exc:
            return self.refused(exc, endpoint)
        if filled:
            self.metrics.filled.inc(filled)
        return JSONResponse({"success": True})

    # ---- Snowplow
    async def snowplow_post(self, request: Request) -> Response:
        endpoint = "snowplow"
        try:
            parsed = self.loads(await self.read(request, endpoint))
            if not isinstance(parsed, dict) or not isinstance(parsed.get("data"), list):
                raise Refused(400, "malformed", "a Snowplow payload is {\"schema\": ..., \"data\": [events]}")
            lines = records.snowplow(parsed["data"], received_at=records.iso(time.time()),
                                     ip=self.client_ip(request), user_agent=request.headers.get("user-agent"),
                                     max_event=self.max_event, max_batch=self.max_batch,
                                     suppressed=self.is_suppressed)
            await self.land("clickstream", lines, endpoint)
        except Refused as exc:
            return self.refused(exc, endpoint)
        return PlainTextResponse("ok")

    async def snowplow_get(self, request: Request) -> Response:
        endpoint = "snowplow"
        try:
            query = request.scope.get("query_string", b"")
            if len(query) > self.max_event:
                raise Refused(413, "event_too_large", "the query string passes RAPPORT_COLLECTOR_MAX_EVENT_KB")
            event = dict(parse_qsl(query.decode("utf-8", "replace"), keep_blank_values=True))
            if not event:
                raise Refused(400, "malformed", "GET /i carries its event in the query string")
            lines = records.snowplow([event], received_at=records.iso(time.time()), ip=self.client_ip(request),
                                     user_agent=request.headers.get("user-agent"), max_event=self.max_event,
                                     max_batch=self.max_batch, suppressed=self.is_suppressed)
            await self.land("clickstream", lines, endpoint)
        except Refused as exc:
            return self.refused(exc, endpoint)
        return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-cache, no-store"})
