"""Webhook signatures, each as its platform documents it, compared in constant time on the raw body.

- Shopify: ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the body, keyed by the app's secret.
- Meta (Facebook Pages, Instagram): ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``, keyed by the
  app secret; the subscription is verified by a GET echoing ``hub.challenge`` when ``hub.verify_token`` matches.
- X (Account Activity API): ``x-twitter-webhooks-signature: sha256=<base64 HMAC-SHA256 of the body>`` keyed by
  the consumer secret; the CRC check answers ``{"response_token": "sha256=<base64 HMAC-SHA256 of crc_token>"}``.
- TikTok: ``TikTok-Signature: t=<unix seconds>,s=<hex HMAC-SHA256 of "<t>.<body>">`` keyed by the client secret;
  a timestamp outside the tolerance is refused as a replay.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


class SignatureError(ValueError):
    """The signature is missing, malformed, wrong or stale; the message says which (never the secret)."""


def _mac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _same(expected: bytes, given: bytes) -> bool:
    return hmac.compare_digest(expected, given)


def shopify(secret: str, body: bytes, header: str | None) -> None:
    if not header:
        raise SignatureError("X-Shopify-Hmac-Sha256 is missing")
    if not _same(base64.b64encode(_mac(secret, body)), header.strip().encode()):
        raise SignatureError("X-Shopify-Hmac-Sha256 does not match the body")


def _sha256_value(header: str | None, name: str, form: str) -> str:
    """The value of a ``sha256=<value>`` signature header, or why there is none."""
    if not header:
        raise SignatureError(f"{name} is missing")
    scheme, _, value = header.strip().partition("=")
    if scheme != "sha256" or not value:
        raise SignatureError(f"{name} is not sha256=<{form}>")
    return value


def meta(secret: str, body: bytes, header: str | None) -> None:
    value = _sha256_value(header, "X-Hub-Signature-256", "hex")
    if not _same(_mac(secret, body).hex().encode(), value.lower().encode()):
        raise SignatureError("X-Hub-Signature-256 does not match the body")


def x_crc(secret: str, crc_token: str) -> str:
    """The response token of X's challenge-response check."""
    return "sha256=" + base64.b64encode(_mac(secret, crc_token.encode())).decode()


def x(secret: str, body: bytes, header: str | None) -> None:
    value = _sha256_value(header, "x-twitter-webhooks-signature", "base64")
    if not _same(base64.b64encode(_mac(secret, body)), value.encode()):
        raise SignatureError("x-twitter-webhooks-signature does not match the body")


def tiktok(secret: str, body: bytes, header: str | None, now: float, tolerance_seconds: int) -> None:
    if not header:
        raise SignatureError("TikTok-Signature is missing")
    parts = dict(p.strip().partition("=")[::2] for p in header.split(","))
    t, s = parts.get("t", ""), parts.get("s", "")
    if not t.isdigit() or not s:
        raise SignatureError("TikTok-Signature is not t=<unix seconds>,s=<hex>")
    if not _same(_mac(secret, t.encode() + b"." + body).hex().encode(), s.lower().encode()):
        raise SignatureError("TikTok-Signature does not match the body")
    if abs(now - int(t)) > tolerance_seconds:
        raise SignatureError(f"TikTok-Signature is {int(now - int(t))} s old; the tolerance is {tolerance_seconds} s "
                             "(a replay, or a clock far off)")
