"""Snapshots on S3: publish atomically for readers, verify against the manifest, keep the last N.

Layout: ``<prefix>/<dataset>/snapshot=<YYYY-MM-DDTHHMMSS.mmmZ>/`` holding the data files
(``part-00000.parquet`` …), then ``manifest.json`` (files, row counts, schema, SHA-256 per
file, source table versions), then an empty ``_SUCCESS``. The order is the contract:

- A reader trusts a snapshot only when both ``manifest.json`` and ``_SUCCESS`` exist; the
  newest such snapshot is the current one. ``rapport export verify`` checks one.
- A publish that fails deletes what it uploaded (manifest first); one that is killed
  leaves data files without a manifest, which readers ignore and pruning removes.
- Pruning keeps the newest ``keep`` complete snapshots. It deletes older complete ones
  and incomplete ones older than the newest complete snapshot (abandoned publishes);
  an incomplete snapshot newer than that may be a publish in progress and is left alone.
  It deletes ``_SUCCESS`` first, then the manifest, then the data, so a reader never
  trusts a snapshot whose files are going.

All traffic goes through boto3: uploads of large files in parts, and retries with
back-off on throttling and 5xx responses (the client's adaptive retry mode).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Callable, Iterable
from urllib.parse import urlparse

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
SNAPSHOT = "snapshot="
MB = 1024 * 1024
CHUNK = 8 * MB
MANIFEST_VERSION = 1


class ExportError(RuntimeError):
    """An export could not be published or does not verify; the message says what and what to do."""


def snapshot_id(moment: datetime) -> str:
    """Sortable, and safe in S3 keys and Hadoop paths (no colons)."""
    return f"{moment:%Y-%m-%dT%H%M%S}.{moment.microsecond // 1000:03d}Z"


def split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ExportError(f"{uri!r} is not an S3 location; use s3://bucket/prefix")
    return parsed.netloc, parsed.path.strip("/")


@dataclass(frozen=True)
class FileToPublish:
    name: str  # its name in the snapshot
    open: Callable[[], IO[bytes]]  # a fresh binary stream of its bytes
    size: int
    rows: int
    sha256: str


@dataclass(frozen=True)
class Snapshot:
    dataset: str
    id: str
    prefix: str  # key prefix, ending in "/"
    names: frozenset[str]  # object names under it

    @property
    def complete(self) -> bool:
        return MANIFEST in self.names and SUCCESS in self.names


def sha256_of(stream: IO[bytes]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def count_rows(path: str, name: str) -> int:
    """Rows in a local data file: the Parquet footer's count, or the lines of (gzipped) JSON lines."""
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_metadata(path).num_rows
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(CHUNK), b""))


class SnapshotStore:
    """The exports under one ``s3://bucket/prefix``."""

    def __init__(self, client, uri: str, multipart_mb: int = 64):
        self.client = client
        self.bucket, self.prefix = split_uri(uri)
        self.multipart_mb = multipart_mb

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def dataset_prefix(self, dataset: str) -> str:
        return f"{self.prefix}/{dataset}/" if self.prefix else f"{dataset}/"

    def snapshots(self, dataset: str) -> list[Snapshot]:
        """Every snapshot of a dataset, complete or not, oldest first."""
        base = self.dataset_prefix(dataset)
        names: dict[str, set[str]] = {}
        for key in self._keys(base):
            head, _, rest = key[len(base):].partition("/")
            if head.startswith(SNAPSHOT) and rest:
                names.setdefault(head, set()).add(rest)
        return [Snapshot(dataset, head[len(SNAPSHOT):], f"{base}{head}/", frozenset(n)) for head, n in sorted(names.items())]

    def latest(self, dataset: str) -> Snapshot | None:
        complete = [s for s in self.snapshots(dataset) if s.complete]
        return complete[-1] if complete else None

    def manifest(self, snapshot: Snapshot) -> dict:
        return json.loads(self.client.get_object(Bucket=self.bucket, Key=snapshot.prefix + MANIFEST)["Body"].read())

    def publish(self, dataset: str, snapshot: str, files: Iterable[FileToPublish], manifest: dict,
                progress: Callable[[str], None] = log.info) -> str:
        """Upload the files, then the manifest, then ``_SUCCESS``; on any failure remove what was uploaded."""
        from boto3.s3.transfer import TransferConfig

        prefix = f"{self.dataset_prefix(dataset)}{SNAPSHOT}{snapshot}/"
        if any(True for _ in self._keys(prefix)):
            raise ExportError(f"{self.uri(prefix)} already exists; snapshots are never overwritten. Publish again "
                              "(a new snapshot id is taken from the clock).")
        transfer = TransferConfig(multipart_threshold=self.multipart_mb * MB, multipart_chunksize=self.multipart_mb * MB)
        uploaded: list[str] = []
        try:
            for f in files:
                key = prefix + f.name
                uploaded.append(key)
                with f.open() as stream:
                    self.client.upload_fileobj(stream, self.bucket, key, Config=transfer)
                progress(f"  {dataset}: uploaded {f.name} ({f.size / MB:,.1f} MB, {f.rows:,} rows)")
            uploaded.insert(0, prefix + MANIFEST)  # removed first if what follows fails
            self.client.put_object(Bucket=self.bucket, Key=prefix + MANIFEST, ContentType="application/json",
                                   Body=json.dumps(manifest, indent=2, sort_keys=True).encode())
            self.client.put_object(Bucket=self.bucket, Key=prefix + SUCCESS, Body=b"")
        except BaseException:
            self._delete_quietly(uploaded)
            raise
        return self.uri(prefix)

    def prune(self, dataset: str, keep: int) -> list[str]:
        """Apply retention (see the module docstring); return the ids of the snapshots deleted."""
        snapshots = self.snapshots(dataset)
        complete = [s for s in snapshots if s.complete]
        kept = {s.id for s in complete[-keep:]}
        newest = complete[-1].id if complete else None
        doomed = [s for s in snapshots if s.id not in kept and (s.complete or (newest is not None and s.id < newest))]
        for s in doomed:
            self.remove(s)
        return [s.id for s in doomed]

    def remove(self, snapshot: Snapshot) -> None:
        """Delete a snapshot: ``_SUCCESS`` first, then the manifest, then the data, so no reader trusts it meanwhile."""
        first = [snapshot.prefix + n for n in (SUCCESS, MANIFEST) if n in snapshot.names]
        self._delete(first)
        self._delete([k for k in self._keys(snapshot.prefix) if k not in first])

    def _keys(self, prefix: str) -> Iterable[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def _delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            batch = keys[i:i + 1000]
            out = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch],
                                                                         "Quiet": True})
            if out.get("Errors"):
                raise ExportError(f"could not delete {len(out['Errors'])} objects under s3://{self.bucket}, e.g. "
                                  f"{out['Errors'][0]}; check the credentials allow s3:DeleteObject")

    def _delete_quietly(self, keys: list[str]) -> None:
        try:
            self._delete(keys)
        except Exception as exc:  # the publish already failed; say what is left behind, raise the first error
            log.error("a failed publish could not remove %d uploaded objects (%s); readers ignore them (no "
                      "manifest) and the next publish prunes them", len(keys), exc)


@dataclass
class Verification:
    uri: str
    manifest: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    files: int = 0
    rows: int = 0
    bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(client, uri: str) -> Verification:
    """What a consumer runs before trusting a snapshot: every file there, of the size, hash and rows listed."""
    bucket, prefix = split_uri(uri.rstrip("/"))
    prefix += "/"
    result = Verification(uri)
    present = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            present[obj["Key"][len(prefix):]] = obj["Size"]
    if not present:
        result.problems.append(f"nothing at {uri}; list the dataset's snapshots with `rapport export list`")
        return result
    if SUCCESS not in present:
        result.problems.append(f"no {SUCCESS}: the snapshot is incomplete (a publish failed or is running)")
    if MANIFEST not in present:
        result.problems.append(f"no {MANIFEST}: the snapshot is incomplete and cannot be checked")
        return result
    manifest = json.loads(client.get_object(Bucket=bucket, Key=prefix + MANIFEST)["Body"].read())
    result.manifest = manifest
    listed = {f["path"]: f for f in manifest.get("files", [])}
    for extra in sorted(set(present) - set(listed) - {MANIFEST, SUCCESS}):
        result.problems.append(f"{extra}: in the snapshot but not in the manifest")
    for name, entry in sorted(listed.items()):
        if name not in present:
            result.problems.append(f"{name}: in the manifest but missing")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            local = os.path.join(tmp, os.path.basename(name))
            client.download_file(bucket, prefix + name, local)
            with open(local, "rb") as fh:
                digest, size = sha256_of(fh)
            rows = count_rows(local, name)
            if name.endswith(".parquet"):
                import pyarrow.parquet as pq

                columns = pq.read_schema(local).names
                expected = [c["name"] for c in manifest.get("schema", [])]
                if columns != expected:
                    result.problems.append(f"{name}: columns {columns} differ from the manifest's {expected}")
        for what, got, want in (("size", size, entry.get("bytes")), ("sha256", digest, entry.get("sha256")),
                                ("rows", rows, entry.get("rows"))):
            if got != want:
                result.problems.append(f"{name}: {what} is {got}, the manifest says {want}")
        result.files += 1
        result.rows += rows
        result.bytes += size
    if result.rows != manifest.get("rows"):
        result.problems.append(f"the files hold {result.rows} rows, the manifest's total says {manifest.get('rows')}")
    return result
