"""The collector: an HTTP service tracking libraries and the platforms' webhooks post to, writing the landing
files the pipeline reads, and never answering 200 for an event it could lose.

- ``app``: the ASGI application (Starlette): Segment's HTTP Tracking API (RudderStack's SDKs speak it too),
  Snowplow's tracker protocol, Shopify, Meta, X and TikTok webhooks; health, readiness and Prometheus metrics.
- ``records``: what a request lands: one JSON line per event, with the collector's ``receivedAt``.
- ``signatures``: each platform's webhook signature, checked on the raw bytes in constant time.
- ``spool``: durable group commit: gzip members appended to per-source, per-hour files under an in-progress
  name, fsynced before any request is answered; files closed by renaming; what a crash left is finished at start.
- ``shipper``: with an ``s3://`` landing root, closed files are uploaded and removed only once the upload is
  confirmed.
"""
