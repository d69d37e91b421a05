"""The lake's write lease: one run writes a lake at a time; another waits its turn, never interleaves.

Two refines (or a refine and a curate) started at once on the same lake would each read what the other is
half-way through writing. So every step runs under the lease: a small file ``<lake>/_lease.json`` created
atomically (``O_EXCL`` on a folder; a conditional put, ``If-None-Match: *``, on S3) and removed when the run
ends. A run that finds it held waits (``RAPPORT_LEASE_WAIT_SECONDS``, default an hour), saying who holds it.
A lease outlives a killed holder only until it expires (``RAPPORT_LEASE_TTL_SECONDS``, default 6 hours, or at
once when its holder was a process on this machine that no longer runs); then the next run takes it over.

The lease is re-entrant within a process, so a stage holds it once for all its steps.

Readers that take no write lease (``rapport sql``, ``timeline``, ``report``) register while they read
(``reading``: a file under ``<lake>/_readers/``). A vacuum that deletes files at once (erasure, suppressed lines)
first waits for every reader that began before the deletion was committed (``wait_for_readers``): a reader that
began later reads the new version, which no longer needs the files. Ordinary maintenance keeps a week of versions.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse

from jobs.config import Config
from jobs.storage import is_s3, local_root

log = logging.getLogger(__name__)
NAME = "_lease.json"
READERS = "_readers"
_held: dict[str, int] = {}
_guard = threading.Lock()


class LeaseTimeout(RuntimeError):
    """Another run held the lake's lease for longer than this run may wait."""


def _root(cfg: Config) -> str:
    return cfg.lake_root.rstrip("/") if is_s3(cfg.lake_root) else local_root(cfg.lake_root)


def _path(cfg: Config) -> str:
    return f"{_root(cfg)}/{NAME}"


def _expired(holder: dict, ttl: float) -> bool:
    if time.time() - float(holder.get("acquired", 0)) > ttl:
        return True
    if holder.get("host") == socket.gethostname() and holder.get("pid"):
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return True  # its process on this machine is gone
        except PermissionError:
            return False
    return False


class _Store:
    """Create-if-absent, read and delete of the lease object, on a folder or S3."""

    def __init__(self, cfg: Config, path: str | None = None):
        self.cfg, self.path = cfg, path or _path(cfg)

    def create(self, body: bytes) -> bool:
        if is_s3(self.path):
            from botocore.exceptions import ClientError

            from jobs.storage import s3_client

            parsed = urlparse(self.path)
            try:
                s3_client(self.cfg).put_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"), Body=body,
                                               IfNoneMatch="*")
                return True
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                    return False
                raise
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        return True

    def read(self) -> dict | None:
        try:
            if is_s3(self.path):
                from jobs.storage import s3_client

                parsed = urlparse(self.path)
                body = s3_client(self.cfg).get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
            else:
                body = Path(self.path).read_bytes()
            return json.loads(body or b"{}")
        except Exception:  # gone, or half-written by a holder that died while writing it
            return None

    def delete(self) -> None:
        if is_s3(self.path):
            from jobs.storage import s3_client

            parsed = urlparse(self.path)
            s3_client(self.cfg).delete_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))
        else:
            Path(self.path).unlink(missing_ok=True)


@contextmanager
def hold(cfg: Config, owner: str) -> Iterator[None]:
    """Hold the lake's write lease for the block (re-entrant in this process)."""
    key = _path(cfg)
    with _guard:
        if _held.get(key):
            _held[key] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                _held[key] -= 1
        return
    store = _Store(cfg)
    token = uuid.uuid4().hex
    body = json.dumps({"owner": owner, "token": token, "pid": os.getpid(), "host": socket.gethostname(),
                       "acquired": time.time(),
                       "acquired_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode()
    deadline = time.monotonic() + cfg.lease_wait_seconds
    said = False
    while not store.create(body):
        holder = store.read()
        if holder is None or _expired(holder, cfg.lease_ttl_seconds):
            log.warning("taking over the lake lease of %s (expired, or its process is gone)",
                        (holder or {}).get("owner", "an unreadable lease"))
            store.delete()
            continue
        if time.monotonic() > deadline:
            raise LeaseTimeout(
                f"the lake {cfg.lake_root} is being written by {holder.get('owner')} (pid {holder.get('pid')} on "
                f"{holder.get('host')}, since {holder.get('acquired_at')}); waited {cfg.lease_wait_seconds}s. "
                f"Run again when it has finished, or remove {key} if that run is known to be dead.")
        if not said:
            log.warning("waiting for the lake lease held by %s since %s", holder.get("owner"), holder.get("acquired_at"))
            said = True
        time.sleep(0.5)
    with _guard:
        _held[key] = 1
    try:
        yield
    finally:
        with _guard:
            _held.pop(key, None)
        current = store.read()
        if current is None or current.get("token") == token:
            store.delete()


def _stamp(owner: str, **more) -> bytes:
    return json.dumps({"owner": owner, "pid": os.getpid(), "host": socket.gethostname(), "acquired": time.time(),
                       "acquired_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **more}).encode()


@contextmanager
def reading(cfg: Config, owner: str) -> Iterator[None]:
    """Register this process as a reader of the lake for the block: an immediate vacuum waits for it to finish."""
    store = _Store(cfg, f"{_root(cfg)}/{READERS}/{uuid.uuid4().hex}.json")
    store.create(_stamp(owner))
    try:
        yield
    finally:
        store.delete()


def readers(cfg: Config) -> list[dict]:
    """The registered readers whose process may still run (an expired or dead one is removed)."""
    from jobs.storage import list_objects

    root = f"{_root(cfg)}/{READERS}"
    paths = ([o.uri for o in list_objects(cfg, root)] if is_s3(root)
             else [str(p) for p in Path(root).glob("*.json")] if Path(root).is_dir() else [])
    alive = []
    for path in paths:
        store = _Store(cfg, path)
        holder = store.read()
        if holder is not None and _expired(holder, cfg.lease_ttl_seconds):
            store.delete()
        elif holder is not None:
            alive.append(holder)
    return alive


def wait_for_readers(cfg: Config, since: float, what: str) -> None:
    """Wait until every reader registered before ``since`` (a time.time()) has finished; ``LeaseTimeout`` after
    RAPPORT_LEASE_WAIT_SECONDS (the caller's work is idempotent: run it again)."""
    deadline = time.monotonic() + cfg.lease_wait_seconds
    said = False
    while True:
        early = [r for r in readers(cfg) if float(r.get("acquired", 0)) <= since]
        if not early:
            return
        if time.monotonic() > deadline:
            raise LeaseTimeout(
                f"{what} waited {cfg.lease_wait_seconds}s for {len(early)} reader(s) of {cfg.lake_root} to finish "
                f"({', '.join(sorted({str(r.get('owner')) for r in early}))}); run it again when they have")
        if not said:
            log.warning("%s waits for %d reader(s) that began before it (%s)", what, len(early),
                        ", ".join(sorted({str(r.get("owner")) for r in early})))
            said = True
        time.sleep(0.2)
