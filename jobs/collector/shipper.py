"""With an ``s3://`` landing root: closed files go up to the bucket, and are removed locally only once the
bucket holds them whole (the object's size checked after the upload). Multipart for large files (boto3's
transfer manager, ``RAPPORT_EXPORT_MULTIPART_MB``). A file whose upload fails stays in the spool and is tried
again; at start, every closed file left in the spool is shipped first.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Callable

from jobs.config import Config
from jobs.storage import s3_client, split_s3

log = logging.getLogger(__name__)


class Shipper:
    def __init__(self, cfg: Config, spool: Path, target: str, on_shipped: Callable[[int], None] | None = None,
                 retry_seconds: float = 5.0):
        from boto3.s3.transfer import TransferConfig

        self.spool, self.on_shipped, self.retry_seconds = Path(spool), on_shipped, retry_seconds
        self.bucket, self.prefix = split_s3(target.rstrip("/"))
        self.client = s3_client(cfg)
        mb = cfg.export_multipart_mb * 1024 * 1024
        self.transfer = TransferConfig(multipart_threshold=mb, multipart_chunksize=mb)
        self._queue: queue.Queue[Path | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="rapport-collector-shipper", daemon=True)
        self.failures = 0

    def start(self) -> None:
        for path in sorted(self.spool.rglob("*.json.gz")):  # closed files a stopped collector left behind
            if "_collector" not in path.relative_to(self.spool).parts:
                self._queue.put(path)
        self._thread.start()

    def ship(self, path: Path) -> None:
        self._queue.put(path)

    def stop(self, timeout: float = 60.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    def _key(self, path: Path) -> str:
        rel = path.relative_to(self.spool).as_posix()
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _run(self) -> None:
        while True:
            path = self._queue.get()
            if path is None:
                return
            try:
                size = path.stat().st_size
                key = self._key(path)
                self.client.upload_file(str(path), self.bucket, key, Config=self.transfer)
                landed = self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
                if landed != size:
                    raise OSError(f"s3://{self.bucket}/{key} holds {landed} bytes, the file {size}")
                path.unlink()
                if self.on_shipped:
                    self.on_shipped(size)
            except FileNotFoundError:
                continue
            except Exception as exc:  # kept in the spool; tried again
                self.failures += 1
                log.warning("upload of %s failed (%s: %s); it stays in the spool and is tried again", path.name,
                            type(exc).__name__, exc)
                retry = threading.Timer(self.retry_seconds, self._queue.put, args=(path,))
                retry.daemon = True  # a stopping collector leaves it in the spool for the next start
                retry.start()
