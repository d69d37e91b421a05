"""Files outside Delta, on a folder or S3: listings (names, sizes, versions), staging folders, clients.

A listed file has a ``version`` (modification time in ns locally, the ETag on S3) so that ingestion
can tell a file it already took from a file that changed since.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator
from urllib.parse import urlparse

from jobs.config import Config

if TYPE_CHECKING:
    import pyarrow.fs

@dataclass(frozen=True)
class StoredObject:
    uri: str  # a local path or s3://bucket/key
    key: str  # relative to the folder that was listed, with "/" separators
    size: int
    version: str  # modification time in ns locally, the ETag on S3


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme == "s3"


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> (``bucket``, ``a/b``)."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.strip("/")


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


def list_objects(cfg: Config, base: str, skip: Callable[[str], bool] | None = None) -> Iterator[StoredObject]:
    """Every file under a folder or S3 prefix, recursively: a listing (names, sizes, versions), no contents.

    ``skip(name)``: first-level folders it names are not listed at all (on S3, the first level is listed with a
    delimiter and each kept folder under it): what a listing costs then follows the folders kept, not all of
    them."""
    if is_s3(base):
        parsed = urlparse(base)
        bucket, prefix = parsed.netloc, parsed.path.strip("/")
        start = f"{prefix}/" if prefix else ""
        client = s3_client(cfg)

        def files(page) -> Iterator[StoredObject]:
            for obj in page.get("Contents", []):
                if not obj["Key"].endswith("/"):
                    yield StoredObject(f"s3://{bucket}/{obj['Key']}", obj["Key"][len(start):], obj["Size"],
                                       obj["ETag"].strip('"'))

        prefixes = [start]
        if skip is not None:
            prefixes = []
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start, Delimiter="/"):
                yield from files(page)  # the files at the first level
                prefixes += [c["Prefix"] for c in page.get("CommonPrefixes", [])
                             if not skip(c["Prefix"][len(start):].rstrip("/"))]
        for folder in prefixes:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=folder):
                yield from files(page)
        return
    root = Path(local_root(base))
    if not root.is_dir():
        return
    for folder, dirs, names in os.walk(root):
        if skip is not None and Path(folder) == root:
            dirs[:] = [d for d in dirs if not skip(d)]
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            try:
                st = path.stat()
            except OSError:  # removed while listing
                continue
            yield StoredObject(str(path), path.relative_to(root).as_posix(), st.st_size, str(st.st_mtime_ns))


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


def check_root(cfg: Config, name: str, write: bool) -> None:
    """Refuse a lake or landing root that cannot be used: a file where a folder belongs, a folder that does
    not exist (landing) or cannot be written (lake), a bucket that does not exist or cannot be reached."""
    value = getattr(cfg, name)
    if is_s3(value):
        from botocore.exceptions import BotoCoreError, ClientError

        bucket = urlparse(value).netloc
        try:
            s3_client(cfg).head_bucket(Bucket=bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise cfg.error(name, f"bucket {bucket} {'does not exist' if code in ('404', 'NoSuchBucket') else 'cannot be read (' + code + ')'}; create it or check the S3 credentials and RAPPORT_S3_ENDPOINT_URL") from None
        except BotoCoreError as exc:
            raise cfg.error(name, f"S3 cannot be reached ({exc}); check RAPPORT_S3_ENDPOINT_URL and the network") from None
        return
    path = Path(local_root(value))
    if path.exists() and not path.is_dir():
        raise cfg.error(name, "is a file, not a folder; point it at a folder or at s3://bucket/prefix")
    if not write:
        if not path.exists():
            raise cfg.error(name, "does not exist; point it at the folder the sources land in")
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".rapport-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise cfg.error(name, f"cannot be written ({exc.strerror or exc}); point it at a folder Rapport may "
                               "write to") from None
