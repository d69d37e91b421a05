"""Files outside Delta: listing and reading landing files, and staging Parquet, on a folder or S3.

Landing files are ``<landing_root>/<source>/dt=YYYY-MM-DD/hour=HH/<name>``. Each has a
``version`` (modification time in ns locally, the ETag on S3) so that ingestion can
tell a file it already took from a file that was replaced.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlparse

from jobs.config import Config

if TYPE_CHECKING:
    import pyarrow.fs

    from jobs.pipeline.window import Window

PARTITION = re.compile(r"dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/[^/]+$")


@dataclass(frozen=True)
class LandingFile:
    uri: str  # where to read it: a local path or s3://bucket/key
    rel: str  # relative to the landing root: source/dt=.../hour=.../name
    size: int
    version: str
    hour: datetime  # the landing (arrival) hour, UTC

    @property
    def dt(self):
        return self.hour.date()


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme == "s3"


def local_root(uri: str) -> str:
    """Absolute path of a local root, so a Spark server with another working directory finds it."""
    return str(Path(uri.removeprefix("file://")).resolve())


def s3_client(cfg: Config):
    import boto3
    from botocore.config import Config as BotoConfig

    return boto3.client(
        "s3",
        endpoint_url=cfg.s3_endpoint_url,
        region_name=cfg.s3_region,
        aws_access_key_id=cfg.aws_access_key_id,
        aws_secret_access_key=cfg.aws_secret_access_key,
        config=BotoConfig(retries={"max_attempts": cfg.s3_max_attempts, "mode": "adaptive"}),
    )


def _hour_of(rel: str) -> datetime | None:
    m = PARTITION.search(rel)
    if not m:
        return None
    return datetime.strptime(f"{m.group(1)} {m.group(2)}", "%Y-%m-%d %H").replace(tzinfo=timezone.utc)


class Landing:
    """The landing zone of one configuration."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.root = cfg.landing_root.rstrip("/") if is_s3(cfg.landing_root) else local_root(cfg.landing_root)

    def list(self, source: str, window: "Window | None" = None) -> list[LandingFile]:
        """Files of ``source`` whose landing hour is in the window, in path order."""
        files = self._list_s3(source) if is_s3(self.root) else self._list_local(source)
        return sorted((f for f in files if window is None or window.contains(f.hour)), key=lambda f: f.rel)

    def _list_local(self, source: str) -> Iterator[LandingFile]:
        base = Path(self.root) / source
        if not base.is_dir():
            return
        for day in sorted(base.glob("dt=*")):
            for path in sorted(day.glob("hour=*/*")):
                if not path.is_file() or path.name.startswith((".", "_")):
                    continue
                rel = path.relative_to(self.root).as_posix()
                hour = _hour_of(rel)
                if hour is not None:
                    st = path.stat()
                    yield LandingFile(str(path), rel, st.st_size, str(st.st_mtime_ns), hour)

    def _list_s3(self, source: str) -> Iterator[LandingFile]:
        parsed = urlparse(self.root)
        bucket, prefix = parsed.netloc, parsed.path.strip("/")
        client = s3_client(self.cfg)
        base = f"{prefix}/{source}/" if prefix else f"{source}/"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for obj in page.get("Contents", []):
                rel = obj["Key"][len(prefix) + 1 :] if prefix else obj["Key"]
                hour = _hour_of(rel)
                if hour is not None and not rel.rsplit("/", 1)[-1].startswith((".", "_")):
                    yield LandingFile(f"s3://{bucket}/{obj['Key']}", rel, obj["Size"], obj["ETag"].strip('"'), hour)

    def read(self, f: LandingFile) -> bytes:
        if is_s3(f.uri):
            parsed = urlparse(f.uri)
            return s3_client(self.cfg).get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
        with open(f.uri, "rb") as fh:
            return fh.read()


def arrow_filesystem(cfg: Config, uri: str) -> tuple["pyarrow.fs.FileSystem", str]:
    """A pyarrow filesystem and path for writing staging files under ``uri``."""
    from pyarrow import fs

    if is_s3(uri):
        parsed = urlparse(uri)
        s3 = fs.S3FileSystem(
            access_key=cfg.aws_access_key_id, secret_key=cfg.aws_secret_access_key, region=cfg.s3_region,
            endpoint_override=cfg.s3_endpoint_url,
            scheme=urlparse(cfg.s3_endpoint_url).scheme if cfg.s3_endpoint_url else "https",
        )
        return s3, f"{parsed.netloc}{parsed.path}"
    path = local_root(uri)
    os.makedirs(path, exist_ok=True)
    return fs.LocalFileSystem(), path


def remove_tree(cfg: Config, uri: str) -> None:
    """Delete a staging folder, locally or on S3; missing is fine."""
    import shutil

    if is_s3(uri):
        fs, path = arrow_filesystem(cfg, uri)
        try:
            fs.delete_dir(path)
        except FileNotFoundError:
            pass
    else:
        shutil.rmtree(local_root(uri), ignore_errors=True)
