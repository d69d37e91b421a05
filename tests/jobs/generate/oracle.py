"""An independent reader of a landing zone: classifies every line on disk from scratch.

It shares no code with the generator on purpose, so that a test comparing its
counts with ``manifest.json`` checks the generator's books against what is really
in the files.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

PLATFORMS = {
    "facebook": {"like", "reaction", "comment", "share", "recommendation", "checkin", "page_like", "mention"},
    "instagram": {"like", "comment", "share", "mention", "story_mention", "story_view", "follow"},
    "pinterest": {"pin", "repin", "comment", "reaction", "follow"},
    "x": {"like", "reply", "repost", "quote", "mention", "follow"},
    "yelp": {"review", "check_in", "tip"},
    "foursquare": {"checkin", "tip", "like"},
    "snapchat": {"story_view", "share", "subscribe", "mention"},
    "tiktok": {"like", "comment", "share", "follow", "mention"},
}
DAY = timedelta(days=1)


def members(data: bytes) -> list[tuple[str | None, int]]:
    """Split a multi-member gzip file: (text, None) per good member, (None, 0) for a damaged one."""
    out = []
    while data:
        d = zlib.decompressobj(31)
        try:
            text = d.decompress(data)
        except zlib.error:
            out.append((None, 0))
            break
        if not d.eof:
            out.append((None, 0))
            break
        out.append((text.decode(), 0))
        data = d.unused_data
    return out


def ts(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def times(source: str, rec: dict) -> tuple[datetime | None, datetime | None]:
    """(event time, arrival time) as the record states them; None where unparseable."""
    if source == "clickstream":
        t, sent, recv = ts(rec.get("timestamp")), ts(rec.get("sentAt")), ts(rec.get("receivedAt"))
        if None in (t, sent, recv):
            return None, recv
        return recv - (sent - t), recv  # device clock skew corrected, as Segment does
    if source == "social":
        return ts(rec.get("occurred_at")), ts(rec.get("collected_at"))
    return ts((rec.get("order") or {}).get("updated_at")), ts(rec.get("received_at"))


def defect(source: str, rec) -> str | None:
    if not isinstance(rec, dict):
        return "malformed_json"
    if source == "clickstream":
        if not rec.get("messageId") or (not rec.get("anonymousId") and rec.get("userId") is None):
            return "missing_ids"
        props = rec.get("properties") or {}
        if any(k in props and props[k] is not None and not _is_num(props[k]) for k in ("price", "quantity", "total", "revenue", "rating")):
            return "wrong_types"
    elif source == "social":
        if not (rec.get("actor") or {}).get("id"):
            return "missing_ids"
        if rec.get("rating") is not None and not isinstance(rec["rating"], int):
            return "wrong_types"
        if rec.get("platform") not in PLATFORMS:
            return "unknown_platform"
        if rec.get("interaction") not in PLATFORMS[rec["platform"]]:
            return "unknown_interaction"
    else:
        order = rec.get("order") or {}
        if not order.get("id"):
            return "missing_ids"
        if any(not isinstance(li.get("quantity"), int) for li in order.get("line_items") or []):
            return "wrong_types"
        if float(order.get("total_price", "0")) < 0:
            return "negative_amount"
    event, arrival = times(source, rec)
    if event is None or arrival is None:
        return "bad_timestamp"
    if event - arrival > DAY:
        return "future_timestamp"
    return None


def event_key(source: str, rec: dict):
    if source == "clickstream":
        return rec["messageId"]
    if source == "social":
        return (rec["platform"], rec["event_id"])
    return rec["webhook_id"]


def read_landing(root: Path, source: str) -> dict:
    """Counts by category for one source, plus the valid records with their partition hour."""
    counts: Counter = Counter()
    seen_lines: set[str] = set()
    seen_keys: dict = {}
    valid: list[tuple[str, dict]] = []
    outside_partition = 0
    for path in sorted((root / source).rglob("*.json.gz")):
        rel = path.relative_to(root).as_posix()
        part = rel.split("/")
        hour_start = datetime.strptime(f"{part[1][3:]} {part[2][5:]}", "%Y-%m-%d %H").replace(tzinfo=timezone.utc)
        counts["files"] += 1
        for text, _ in members(path.read_bytes()):
            if text is None:
                counts["truncated_members"] += 1
                continue
            for line in text.splitlines():
                counts["lines"] += 1
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    rec = None
                kind = defect(source, rec)
                if kind is not None:
                    counts[kind] += 1
                    continue
                key = event_key(source, rec)
                if line in seen_lines:
                    counts["exact_duplicates"] += 1
                    continue
                if key in seen_keys:
                    counts["id_conflicts"] += 1
                    continue
                seen_lines.add(line)
                seen_keys[key] = line
                event, arrival = times(source, rec)
                if not hour_start <= arrival < hour_start + timedelta(hours=1):
                    outside_partition += 1
                counts["valid"] += 1
                if arrival - event >= DAY:
                    counts["late_arrivals"] += 1
                valid.append((rel, rec))
    counts["outside_partition"] = outside_partition
    return {"counts": counts, "valid": valid}


def load_truth(root: Path) -> list[dict]:
    out = []
    for path in sorted((root / "_truth" / "persons").glob("*.json.gz")):
        out.extend(json.loads(line) for line in zlib.decompress(path.read_bytes(), 31).decode().splitlines())
    return out


def by_key(records: list[dict], key) -> dict:
    groups = defaultdict(list)
    for r in records:
        groups[key(r)].append(r)
    return groups
