"""Weekly maintenance of every Delta table through delta-rs: compaction, then vacuum.

Sail has no OPTIMIZE or VACUUM SQL; delta-rs works on the same files. Compaction
rewrites small files into larger ones (a new table version, same rows); vacuum deletes
files no version within the retention window still needs (default 7 days, so time
travel a week back keeps working).

It also removes the ``_staging/<run_id>`` folders of runs that were killed before they
could clean up (older than a day; run ids carry their start time).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

from jobs.catalog import existing_tables
from jobs.config import Config
from jobs.lake import Lake
from jobs.storage import arrow_filesystem, remove_tree

log = logging.getLogger(__name__)
RETENTION_HOURS = 168
STAGING_GRACE = timedelta(hours=24)
RUN_STARTED = re.compile(r"-(\d{8}T\d{6})-[0-9a-f]{8}$")


def run(cfg: Config, retention_hours: int = RETENTION_HOURS, dry_run: bool = False) -> dict:
    from deltalake import DeltaTable

    lake = Lake(cfg)
    opts = lake.storage_options() or None
    summary = {"tables": 0, "files_compacted": 0, "files_removed": 0,
               "staging_removed": len(clear_staging(cfg, dry_run=dry_run))}
    for layer, name, path in existing_tables(cfg):
        table = DeltaTable(path, storage_options=opts)
        if not dry_run:
            metrics = table.optimize.compact()
            summary["files_compacted"] += metrics.get("numFilesRemoved", 0)
        removed = table.vacuum(retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=True)
        summary["files_removed"] += len(removed)
        summary["tables"] += 1
        log.info("%s.%s: compacted, %d old files %s", layer, name, len(removed), "would go" if dry_run else "removed")
    return summary


def clear_staging(cfg: Config, now: datetime | None = None, grace: timedelta = STAGING_GRACE,
                  dry_run: bool = False) -> list[str]:
    """Remove staging folders of runs that started more than ``grace`` ago; return their run ids."""
    from pyarrow.fs import FileSelector, FileType

    root = f"{Lake(cfg).root}/_staging"
    fs, base = arrow_filesystem(cfg, root)
    cutoff = (now or datetime.now(timezone.utc)) - grace
    old = []
    for info in fs.get_file_info(FileSelector(base, allow_not_found=True)):
        started = RUN_STARTED.search(info.base_name)
        if info.type == FileType.Directory and started and \
                datetime.strptime(started.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc) < cutoff:
            old.append(info.base_name)
    for run_id in old if not dry_run else ():
        remove_tree(cfg, f"{root}/{run_id}")
        log.info("removed the staging folder of run %s (it never finished cleaning up)", run_id)
    return old
