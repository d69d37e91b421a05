"""The collector's Prometheus metrics (``GET /metrics``), one registry per app."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.accepted = Counter("rapport_collector_events", "events landed and acknowledged", ["source", "endpoint"],
                                registry=r)
        self.rejected = Counter("rapport_collector_rejected_requests", "requests refused, by reason", ["reason"],
                                registry=r)
        self.received_bytes = Counter("rapport_collector_received_bytes", "request bytes received (as sent)",
                                      ["endpoint"], registry=r)
        self.written_bytes = Counter("rapport_collector_written_bytes", "gzip bytes written to landing files",
                                     registry=r)
        self.suppressed = Counter("rapport_collector_suppressed_events",
                                  "events of people who asked not to be tracked: answered 200, not landed", registry=r)
        self.filled = Counter("rapport_collector_message_ids_filled", "events that came without a messageId",
                              registry=r)
        self.fsync = Histogram("rapport_collector_commit_seconds", "one group commit: write and fsync",
                               buckets=(.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5), registry=r)
        self.commit_events = Histogram("rapport_collector_commit_events", "events in one group commit",
                                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
                                       registry=r)
        self.queue = Gauge("rapport_collector_queue_events", "events waiting to be written", registry=r)
        self.files_closed = Counter("rapport_collector_files_closed", "landing files closed for ingest", registry=r)
        self.shipped = Counter("rapport_collector_shipped_bytes", "bytes uploaded to the landing bucket", registry=r)
        self.shipping_backlog = Gauge("rapport_collector_shipping_backlog_files", "closed files not yet uploaded",
                                      registry=r)

    def commit(self, seconds: float, events: int, written: int) -> None:
        self.fsync.observe(seconds)
        self.commit_events.observe(events)
        self.written_bytes.inc(written)
