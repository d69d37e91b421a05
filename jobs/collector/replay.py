"""Replay Segment-format files through a collector with segment-analytics-python, as a site's backend would
send them: the demo's ``--via-collector``, and a way to load a Segment archive into a fresh collector.

Each line's own ``messageId``, ``timestamp``, ids, properties, traits and context go with it; the library sets
``sentAt`` and the collector ``receivedAt``. A line the library cannot send (not JSON, no id, a timestamp that
is not a time: the defects the generator plants) is counted, not sent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

from jobs.bronze.decode import decode


@dataclass
class Replayed:
    files: int = 0
    sent: int = 0
    unsendable: int = 0
    failed: int = 0


def _time(value) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def replay(files: Iterable[Path], url: str, write_key: str) -> Replayed:
    try:
        from segment.analytics import Client
    except ImportError as exc:  # a test/bench extra
        raise RuntimeError("replaying needs segment-analytics-python: pip install -e '.[test]'") from exc

    out = Replayed()
    errors: list = []
    client = Client(write_key, host=url, upload_size=100, max_retries=5, max_queue_size=1_000_000,
                    on_error=lambda e, batch: errors.append(len(batch)))
    for path in files:
        out.files += 1
        for record in decode(path.read_bytes()).records:  # damaged gzip members and bad bytes are records too
            try:
                e = json.loads(record.value) if record.reason is None else None
            except ValueError:
                e = None
            if e is None:
                out.unsendable += 1
                continue
            at = _time(e.get("originalTimestamp") or e.get("timestamp")) if isinstance(e, dict) else None
            who = dict(user_id=e.get("userId"), anonymous_id=e.get("anonymousId")) if isinstance(e, dict) else {}
            if at is None or not (who.get("user_id") or who.get("anonymous_id")) or e.get("type") not in (
                    "track", "page", "identify", "screen") or not isinstance(e.get("context") or {}, dict):
                out.unsendable += 1
                continue
            common = dict(context=e.get("context") or {}, timestamp=at, message_id=e.get("messageId"), **who)
            try:
                if e["type"] == "track":
                    ok, _ = client.track(event=e.get("event"), properties=e.get("properties") or {}, **common)
                elif e["type"] in ("page", "screen"):
                    ok, _ = getattr(client, e["type"])(name=e.get("name"), properties=e.get("properties") or {},
                                                       **common)
                else:
                    ok, _ = client.identify(traits=e.get("traits") or {}, **common)
                if not ok:
                    raise RuntimeError("the library's queue refused an event")
                out.sent += 1
            except (AssertionError, TypeError, ValueError):  # the library's own checks
                out.unsendable += 1
    client.flush()
    client.shutdown()
    out.failed = sum(errors)
    return out
