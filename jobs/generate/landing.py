"""Landing files as collectors write them: gzip JSON lines by ``source/dt=YYYY-MM-DD/hour=HH/``.

Lines are bucketed by arrival hour (so late events land in later partitions) and
ordered by arrival inside a file. A file is a series of gzip members of at most
``MEMBER_LINES`` lines, as log shippers append them; a truncated member damages only
its own lines. Bytes are deterministic: gzip headers carry no time or name.
"""

from __future__ import annotations

import hashlib
import os
import random
import zlib
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

MEMBER_LINES = 1000
# Tags of lines that may be lost to a truncated member without making the manifest ambiguous.
TRUNCATABLE = frozenset({"valid", "valid_late"})


def partition_of(hour_key: int) -> str:
    t = datetime.fromtimestamp(hour_key * 3600, tz=timezone.utc)
    return f"dt={t:%Y-%m-%d}/hour={t:%H}"


def gzip_member(lines: list[str]) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip wrapper, mtime 0, no name
    return compressor.compress(("\n".join(lines) + "\n").encode()) + compressor.flush()


class Sink:
    """Collects a shard's lines per source and arrival hour, each with its category tag."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[int, list[tuple[float, str, str]]]] = defaultdict(lambda: defaultdict(list))
        self.count = 0

    def add(self, source: str, arrival: float, line: str, tag: str) -> None:
        self.buckets[source][int(arrival // 3600)].append((arrival, line, tag))
        self.count += 1

    def write(self, root: Path, shard: int, rng: random.Random, truncate: bool) -> tuple[list[dict], dict]:
        """Write every bucket as ``part-<shard>.json.gz``; return file entries and per-source tag counts.

        With ``truncate``, one file per source gets its last gzip member cut in half.
        """
        files, stats = [], {}
        for source in sorted(self.buckets):
            buckets = self.buckets[source]
            victim = self._pick_victim(buckets, rng) if truncate else None
            tags: Counter = Counter()
            for hour_key in sorted(buckets):
                rows = sorted(buckets[hour_key], key=lambda r: r[0])
                members = [rows[i : i + MEMBER_LINES] for i in range(0, len(rows), MEMBER_LINES)]
                if hour_key == victim and len(members) == 1:
                    half = len(rows) // 2
                    members = [rows[:half], rows[half:]]
                blobs = [gzip_member([r[1] for r in m]) for m in members]
                if hour_key == victim:
                    blobs[-1] = blobs[-1][: len(blobs[-1]) // 2]
                    tags["truncated_member"] += 1
                    tags["truncated_line"] += len(members[-1])
                    members = members[:-1]
                for member in members:
                    tags.update(r[2] for r in member)
                rel = f"{source}/{partition_of(hour_key)}/part-{shard:05d}.json.gz"
                data = b"".join(blobs)
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
                files.append({
                    "path": rel,
                    "bytes": len(data),
                    "lines": len(rows),
                    "members": len(blobs),
                    "truncated_member": hour_key == victim,
                    "sha256": hashlib.sha256(data).hexdigest(),
                })
            stats[source] = dict(tags)
        return files, stats

    @staticmethod
    def _pick_victim(buckets: dict[int, list], rng: random.Random) -> int | None:
        """An hour whose last member holds only plain valid lines (at least two lines in the file)."""
        keys = sorted(buckets)
        rng.shuffle(keys)
        for key in keys:
            rows = sorted(buckets[key], key=lambda r: r[0])
            if len(rows) < 2:
                continue
            last = rows[(len(rows) - 1) // MEMBER_LINES * MEMBER_LINES :] if len(rows) > MEMBER_LINES else rows[len(rows) // 2 :]
            if all(r[2] in TRUNCATABLE for r in last):
                return key
        return None


def write_jsonl_gz(path: Path, lines: list[str]) -> dict:
    """A small single-member file (reference data, truth); returns its manifest entry."""
    data = gzip_member(lines) if lines else b""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"bytes": len(data), "lines": len(lines), "sha256": hashlib.sha256(data).hexdigest()}


def remove_generated(root: Path, sources: tuple[str, ...]) -> None:
    """Delete what an earlier run generated under ``root`` (only Rapport's own folders)."""
    import shutil

    for name in (*sources, "reference", "_truth", "manifest.json"):
        target = root / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            os.remove(target)
