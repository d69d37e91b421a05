"""Bad input, injected on purpose and counted, so that ingest can be held to the manifest.

Each emitted line falls in exactly one category: ``valid``, one of ``BAD_KINDS``,
``exact_duplicate`` (a byte-identical copy of a valid line, possibly days later) or
``id_conflict`` (same event id as a valid line, different content). A record carries
at most one defect, so a reader can classify it without ambiguity. Truncated gzip
members are a property of files and are handled by the landing writer.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

COMMON_KINDS = ("malformed_json", "missing_ids", "wrong_types", "bad_timestamp", "future_timestamp")
BAD_KINDS = {
    "clickstream": COMMON_KINDS,
    "social": COMMON_KINDS + ("unknown_platform", "unknown_interaction"),
    "orders": COMMON_KINDS + ("negative_amount",),
}
FUTURE_SHIFT = timedelta(days=400)
UNPARSEABLE_TIMES = ("yesterday", "2026-13-45T25:61:00Z", "not a date", "31/02/2026 10:00")
UNKNOWN_PLATFORMS = ("myspace", "friendster", "orkut", "vine")
UNKNOWN_INTERACTIONS = ("poke", "nudge", "superlike")

# Where each source keeps the event id and the event time.
TIME_FIELD = {"clickstream": ("timestamp",), "social": ("occurred_at",), "orders": ("order", "updated_at")}


def dumps(record: dict) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _parent(record: dict, path: tuple[str, ...]) -> dict:
    for key in path[:-1]:
        record = record[key]
    return record


def _shift_iso(value: str, delta: timedelta) -> str:
    t = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc) + delta
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def applicable(source: str, kind: str, record: dict) -> bool:
    if kind != "wrong_types":
        return True
    if source == "clickstream":
        return "price" in (record.get("properties") or {})
    if source == "social":
        return record.get("rating") is not None
    return bool(record["order"].get("line_items"))


def corrupt(source: str, kind: str, record: dict, rng: random.Random) -> str:
    """Apply one defect to a freshly built record (its top level may be changed) and serialise it."""
    if kind == "malformed_json":
        line = dumps(record)
        return line[: rng.randint(1, len(line) - 2)]  # any strict prefix of an object is invalid JSON
    if kind == "missing_ids":
        if source == "clickstream":
            if rng.random() < 0.5:
                del record["messageId"]
            else:
                record.pop("anonymousId", None)
                record.pop("userId", None)
        elif source == "social":
            record["actor"] = {k: v for k, v in record["actor"].items() if k != "id"}
        else:
            record["order"] = {k: v for k, v in record["order"].items() if k != "id"}
    elif kind == "wrong_types":
        if source == "clickstream":
            record["properties"] = {**record["properties"], "price": rng.choice(("twelve", "N/A", "$19.99"))}
        elif source == "social":
            record["rating"] = rng.choice(("five", "4 stars", "great"))
        else:
            items = [dict(item) for item in record["order"]["line_items"]]
            items[0]["quantity"] = rng.choice(("two", "1 pc", "several"))
            record["order"] = {**record["order"], "line_items": items}
    elif kind in ("bad_timestamp", "future_timestamp"):
        path = TIME_FIELD[source]
        if len(path) > 1:
            record[path[0]] = dict(record[path[0]])
        parent = _parent(record, path)
        if kind == "bad_timestamp":
            parent[path[-1]] = rng.choice(UNPARSEABLE_TIMES)
        else:
            parent[path[-1]] = _shift_iso(parent[path[-1]], FUTURE_SHIFT)
    elif kind == "unknown_platform":
        record["platform"] = rng.choice(UNKNOWN_PLATFORMS)
    elif kind == "unknown_interaction":
        record["interaction"] = rng.choice(UNKNOWN_INTERACTIONS)
    elif kind == "negative_amount":
        record["order"] = {**record["order"], "total_price": "-" + record["order"]["total_price"]}
    else:
        raise ValueError(f"unknown defect kind {kind!r}")
    return dumps(record)


def conflicting_copy(record: dict, rng: random.Random) -> str:
    """The same messageId with different content, as a buggy client retry would send."""
    copy = dict(record)
    copy["properties"] = {**(record.get("properties") or {}), "list_id": f"conflict-{rng.randint(1, 10**6)}"}
    return dumps(copy)


class Injector:
    """Decides, record by record, which defect (if any) a record gets.

    With ``force_each`` the first records a kind applies to get that kind, so that a
    small data set still shows every kind at least once.
    """

    def __init__(self, rng: random.Random, bad_rate: float, dup_rate: float, force_each: bool):
        self.rng = rng
        self.bad_rate = bad_rate
        self.dup_rate = dup_rate
        self.pending = {src: list(kinds) for src, kinds in BAD_KINDS.items()} if force_each else {}
        self.pending_copies = {"clickstream": ["exact_duplicate", "id_conflict"], "social": ["exact_duplicate"],
                               "orders": ["exact_duplicate"]} if force_each else {}

    def defect_for(self, source: str, record: dict) -> str | None:
        pending = self.pending.get(source)
        if pending:
            for kind in pending:
                if applicable(source, kind, record):
                    pending.remove(kind)
                    return kind
        if self.rng.random() >= self.bad_rate:
            return None
        kinds = [k for k in BAD_KINDS[source] if applicable(source, k, record)]
        return self.rng.choice(kinds)

    def copy_for(self, source: str) -> str | None:
        """Whether a valid record also gets a duplicate or a conflicting copy."""
        pending = self.pending_copies.get(source)
        if pending:
            return pending.pop(0)
        if self.rng.random() >= self.dup_rate:
            return None
        if source == "clickstream" and self.rng.random() < 0.2:
            return "id_conflict"
        return "exact_duplicate"
