"""What the benchmark measures with: wall time, peak memory of a process tree, bytes on disk."""

from __future__ import annotations

import os
import statistics
import threading
import time
from pathlib import Path

import psutil


def tree_rss(root: psutil.Process) -> int:
    """Resident memory of a process and all its descendants, in bytes."""
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


class Measure:
    """Wall time and peak resident memory of a process tree (default: this process, with an in-process
    engine, and its children such as a JVM) while the block runs, sampled every ``interval`` seconds."""

    def __init__(self, pid: int | None = None, interval: float = 0.05):
        self.process = psutil.Process(pid or os.getpid())
        self.interval = interval
        self.seconds = 0.0
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            try:
                self.peak_bytes = max(self.peak_bytes, tree_rss(self.process))
            except psutil.NoSuchProcess:
                return
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "Measure":
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self._started
        self._stop.set()
        self._thread.join()


def folder_bytes(*paths: Path | str) -> int:
    total = 0
    for path in paths:
        for root, _, names in os.walk(path):
            total += sum(os.path.getsize(os.path.join(root, n)) for n in names)
    return total


def data_files(path: Path | str) -> int:
    """Data files the current versions of a lake's Delta tables use (what a query has to open; files only older
    versions need are left out, they go at the next vacuum)."""
    from deltalake import DeltaTable

    return sum(len(DeltaTable(root).file_uris()) for root, dirs, _ in os.walk(path) if "_delta_log" in dirs
               and "_staging" not in root)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def written_bytes(lake: Path | str, since: float) -> dict[str, dict[str, int]]:
    """Per table, the bytes of data files the commits made after ``since`` (epoch seconds) added and removed, read
    from the Delta logs: what a run wrote, and how much of it rewrote files that were there before (removed)."""
    import json

    out: dict[str, dict[str, int]] = {}
    for root, dirs, _ in os.walk(lake):
        if "_delta_log" not in dirs or "_staging" in root:
            continue
        log = Path(root) / "_delta_log"
        name = f"{Path(root).parent.name}.{Path(root).name}"
        for commit in log.glob("*.json"):
            if commit.stat().st_mtime < since:
                continue
            for line in commit.read_text().splitlines():
                action = json.loads(line)
                for kind in ("add", "remove"):
                    if kind in action:
                        counts = out.setdefault(name, {"add": 0, "remove": 0})
                        counts[kind] += int(action[kind].get("size") or 0)
    return out
