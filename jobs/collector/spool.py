"""Durable group commit into landing files.

Requests hand their lines to ``Spool.submit`` and wait. One writer gathers what arrived (for at most
``commit_ms``, and whatever came while the previous write was on disk), appends it to each source's current
file as one gzip member per source, ``fsync``s, and only then lets the requests answer. So an acknowledged
event is on disk, and a crash can only tear the member being written, which nobody was told was kept.

Files are ``<spool>/<source>/dt=YYYY-MM-DD/hour=HH/<instance>-<seq>.json.gz``: the ``rapport`` landing layout,
a name unique to this collector process (several may share a spool or a bucket), written as
``<name>.inprogress`` and renamed when closed: at the hour, after ``roll_seconds``, past ``roll_bytes``, and at
shutdown. Ingest never reads an ``.inprogress`` name.

Each process holds an exclusive lock on ``_collector/locks/<instance>.lock``. At start, a collector finishes the
in-progress files of every instance whose lock nobody holds (a crashed process): complete gzip members are kept
and the file closed; a torn last member is cut off and kept apart under ``_collector/torn/`` with a log line
(its events were never acknowledged, so their clients send them again).
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)
IN_PROGRESS = ".inprogress"
STATE = "_collector"


class SpoolFull(Exception):
    """Too many events are waiting to be written: the request should be retried later (503)."""


@dataclass
class _Open:
    path: Path  # the in-progress name
    fd: int
    hour: int  # hours since the epoch
    opened: float
    size: int = 0


@dataclass
class Recovered:
    files: int = 0
    members: int = 0
    torn_bytes: int = 0
    removed_empty: int = 0


def new_instance_id() -> str:
    host = "".join(c if c.isalnum() else "-" for c in socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def gzip_member(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def complete_members(data: bytes, chunk: int = 1 << 16) -> tuple[int, int]:
    """(bytes of the leading complete gzip members, how many): where a torn file is cut."""
    view, pos, count, n = memoryview(data), 0, 0, len(data)
    while pos < n:
        d, p = zlib.decompressobj(31), pos
        try:
            while not d.eof and p < n:
                d.decompress(view[p: p + chunk])
                p = min(n, p + chunk)
        except zlib.error:
            break
        if not d.eof:
            break
        pos = p - len(d.unused_data)
        count += 1
    return pos, count


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Spool:
    root: Path
    instance: str = field(default_factory=new_instance_id)
    commit_ms: int = 2
    roll_seconds: int = 300
    roll_bytes: int = 128 * 1024 * 1024
    max_pending: int = 50_000
    on_closed: Callable[[Path], None] | None = None  # a closed file (the shipper uploads it)
    on_commit: Callable[[float, int, int], None] | None = None  # (fsync seconds, events, bytes) for metrics
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._queue: list[tuple[str, list[bytes], asyncio.Future]] = []
        self._pending = 0
        self._open: dict[str, _Open] = {}
        self._seq = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._lock_fd: int | None = None
        self._stopping = False
        self._io = threading.Lock()  # the writer thread and close() never touch files at once
        self.healthy = True
        self.last_error: str | None = None

    # ---- lifecycle
    def open(self) -> Recovered:
        """Take this instance's lock and finish what crashed instances left. Call before ``start``."""
        locks = self.root / STATE / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(locks / f"{self.instance}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return self.recover()

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._writer(), name="rapport-collector-writer")

    async def stop(self) -> None:
        """Write what is queued, close every file, release the lock."""
        self._stopping = True
        if self._wake is not None:
            self._wake.set()
        if self._task is not None:
            await self._task
        await asyncio.to_thread(self.close_all)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            (self.root / STATE / "locks" / f"{self.instance}.lock").unlink(missing_ok=True)
            self._lock_fd = None

    @property
    def pending(self) -> int:
        return self._pending

    # ---- the request side
    async def submit(self, source: str, lines: list[bytes]) -> None:
        """Returns once the lines are on disk (fsynced); raises ``SpoolFull`` at once if too much is waiting."""
        if not lines:
            return
        if self._stopping or self._task is None or self._task.done():
            raise SpoolFull("the collector is stopping")
        if self._pending + len(lines) > self.max_pending:
            raise SpoolFull(f"{self._pending:,} events are waiting to be written")
        future = asyncio.get_running_loop().create_future()
        self._queue.append((source, lines, future))
        self._pending += len(lines)
        self._wake.set()
        await future

    # ---- the writer
    async def _writer(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            if self._queue and self.commit_ms and self._pending < 1000 and not self._stopping:
                await asyncio.sleep(self.commit_ms / 1000)  # gather a little more into this write
            self._wake.clear()
            batch, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self._commit, batch)
                self.healthy, self.last_error = True, None
                for _, _, future in batch:
                    if not future.done():
                        future.set_result(None)
            except Exception as exc:  # the disk is full or gone: nothing in this batch was acknowledged
                self.healthy, self.last_error = False, f"{type(exc).__name__}: {exc}"
                log.error("collector write failed: %s", self.last_error)
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            finally:
                self._pending -= sum(len(lines) for _, lines, _ in batch)
            if self._stopping and not self._queue:
                return

    def _commit(self, batch: list[tuple[str, list[bytes], asyncio.Future]]) -> None:
        with self._io:
            now = self.clock()
            self._roll_due(now)
            if not batch:
                return
            by_source: dict[str, list[bytes]] = {}
            for source, lines, _ in batch:
                by_source.setdefault(source, []).extend(lines)
            started, written, events = time.perf_counter(), 0, 0
            touched = []
            for source, lines in by_source.items():
                f = self._file(source, now)
                member = gzip_member(b"".join(lines))
                view = memoryview(member)
                while view:
                    n = os.write(f.fd, view)
                    view = view[n:]
                f.size += len(member)
                written += len(member)
                events += len(lines)
                touched.append(f)
            for f in touched:
                os.fsync(f.fd)
            if self.on_commit:
                self.on_commit(time.perf_counter() - started, events, written)

    def _file(self, source: str, now: float) -> _Open:
        hour = int(now // 3600)
        f = self._open.get(source)
        if f is not None and (f.hour != hour or f.size >= self.roll_bytes):
            self._close(source)
            f = None
        if f is None:
            at = datetime.fromtimestamp(hour * 3600, timezone.utc)
            folder = self.root / source / f"dt={at:%Y-%m-%d}" / f"hour={at:%H}"
            folder.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            path = folder / f"{self.instance}-{self._seq:05d}.json.gz{IN_PROGRESS}"
            f = _Open(path, os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644), hour, now)
            _fsync_dir(folder)
            self._open[source] = f
        return f

    def _roll_due(self, now: float) -> None:
        hour = int(now // 3600)
        for source, f in list(self._open.items()):
            if f.hour != hour or now - f.opened >= self.roll_seconds or f.size >= self.roll_bytes:
                self._close(source)

    def _close(self, source: str) -> None:
        f = self._open.pop(source)
        os.fsync(f.fd)
        os.close(f.fd)
        final = f.path.with_name(f.path.name[: -len(IN_PROGRESS)])
        if f.size == 0:
            f.path.unlink()
        else:
            os.rename(f.path, final)
        _fsync_dir(f.path.parent)
        if f.size and self.on_closed:
            self.on_closed(final)

    def close_all(self) -> None:
        with self._io:
            for source in list(self._open):
                self._close(source)

    # ---- recovery
    def recover(self) -> Recovered:
        """Finish the in-progress files of instances that are gone (their lock is free)."""
        out = Recovered()
        torn_dir = self.root / STATE / "torn"
        for path in sorted(self.root.rglob(f"*{IN_PROGRESS}")):
            if STATE in path.relative_to(self.root).parts:
                continue
            owner = path.name[: -len(IN_PROGRESS)].rsplit("-", 1)[0]
            if owner == self.instance or not self._is_gone(owner):
                continue
            data = path.read_bytes()
            good, members = complete_members(data)
            if good < len(data):
                torn_dir.mkdir(parents=True, exist_ok=True)
                (torn_dir / f"{path.name}.tail").write_bytes(data[good:])
                with open(path, "r+b") as fh:
                    fh.truncate(good)
                    fh.flush()
                    os.fsync(fh.fileno())
                out.torn_bytes += len(data) - good
                log.warning("collector recovery: %s ended in a torn gzip member (%d bytes, never acknowledged), kept "
                            "apart in %s", path.name, len(data) - good, torn_dir)
            if good == 0:
                path.unlink()
                out.removed_empty += 1
            else:
                final = path.with_name(path.name[: -len(IN_PROGRESS)])
                os.rename(path, final)
                out.files += 1
                out.members += members
                if self.on_closed:
                    self.on_closed(final)
            _fsync_dir(path.parent)
        for lock in (self.root / STATE / "locks").glob("*.lock"):
            if lock.stem != self.instance and self._is_gone(lock.stem):
                lock.unlink(missing_ok=True)
        if out.files or out.removed_empty:
            log.info("collector recovery: %d file(s) finished (%d members), %d empty removed, %d torn bytes kept apart",
                     out.files, out.members, out.removed_empty, out.torn_bytes)
        return out

    def _is_gone(self, instance: str) -> bool:
        lock = self.root / STATE / "locks" / f"{instance}.lock"
        if not lock.exists():
            return True
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
        finally:
            os.close(fd)
