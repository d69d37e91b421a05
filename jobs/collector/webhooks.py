"""The collector's webhook endpoints: Shopify, Meta (Facebook and Instagram), X and TikTok, each verified on the
raw body (``signatures``) before anything is landed. A mix-in of ``jobs.collector.app.Collector``, whose reading,
limits, landing and refusals they use."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from jobs.collector import records, signatures
from jobs.collector.records import Refused


class Webhooks:
    def secret(self, name: str, endpoint: str) -> str:
        value = getattr(self.cfg, name)
        if not value:
            raise Refused(401, "not_configured", f"{endpoint} webhooks are not configured "
                                                 f"(RAPPORT_{name.upper()} is not set)")
        return value

    async def verified(self, request: Request, endpoint: str, check) -> bytes:
        """The body, once ``check(body)`` (a ``signatures`` function with its secret and header) accepted it."""
        body = await self.read(request, endpoint)
        try:
            check(body)
        except signatures.SignatureError as exc:
            raise Refused(401, "bad_signature", str(exc)) from None
        return body

    async def shopify(self, request: Request) -> Response:
        endpoint = "shopify"
        try:
            body = await self.verified(request, endpoint, lambda b: signatures.shopify(
                self.secret("shopify_webhook_secret", endpoint), b, request.headers.get("x-shopify-hmac-sha256")))
            topic = request.headers.get("x-shopify-topic", "")
            if not topic.startswith("orders/"):
                self.metrics.rejected.labels("topic_not_collected").inc()
                return JSONResponse({"success": True, "landed": False,
                                     "note": f"topic {topic[:40]!r} is not collected; subscribe to orders/* only"})
            line = records.shopify(body, dict(request.headers), received_at=records.iso(time.time()),
                                   max_event=self.max_event)
            await self.land("orders", [line], endpoint)
        except Refused as exc:
            return self.refused(exc, endpoint)
        return JSONResponse({"success": True})

    async def meta(self, request: Request) -> Response:
        endpoint = "meta"
        if request.method == "GET":
            q = request.query_params
            token = self.cfg.meta_verify_token
            if q.get("hub.mode") == "subscribe" and token and q.get("hub.verify_token") == token:
                return PlainTextResponse(q.get("hub.challenge", ""))
            return self.refused(Refused(403, "bad_verify_token", "hub.verify_token does not match"), endpoint)
        try:
            body = await self.verified(request, endpoint, lambda b: signatures.meta(
                self.secret("meta_app_secret", endpoint), b, request.headers.get("x-hub-signature-256")))
            lines = records.meta(self.loads(body), received_at=records.iso(time.time()), max_event=self.max_event)
            await self.land("social", lines, endpoint)
        except Refused as exc:
            return self.refused(exc, endpoint)
        return JSONResponse({"success": True})

    async def x(self, request: Request) -> Response:
        endpoint = "x"
        try:
            secret = self.secret("x_consumer_secret", endpoint)
            if request.method == "GET":
                token = request.query_params.get("crc_token")
                if not token:
                    raise Refused(400, "malformed", "the CRC check needs crc_token")
                return JSONResponse({"response_token": signatures.x_crc(secret, token)})
            body = await self.verified(request, endpoint, lambda b: signatures.x(
                secret, b, request.headers.get("x-twitter-webhooks-signature")))
            lines = records.x(self.loads(body), received_at=records.iso(time.time()), max_event=self.max_event)
            await self.land("social", lines, endpoint)
        except Refused as exc:
            return self.refused(exc, endpoint)
        return JSONResponse({"success": True})

    async def tiktok(self, request: Request) -> Response:
        endpoint = "tiktok"
        try:
            body = await self.verified(request, endpoint, lambda b: signatures.tiktok(
                self.secret("tiktok_client_secret", endpoint), b, request.headers.get("tiktok-signature"),
                time.time(), self.cfg.tiktok_tolerance_seconds))
            line = records.tiktok(self.loads(body), received_at=records.iso(time.time()), max_event=self.max_event)
            await self.land("social", [line], endpoint)
        except Refused as exc:
            return self.refused(exc, endpoint)
        return JSONResponse({"success": True})
