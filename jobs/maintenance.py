"""Weekly maintenance of every Delta table through delta-rs: compaction, then vacuum.

Sail has no OPTIMIZE or VACUUM SQL; delta-rs works on the same files. Compaction
rewrites small files into larger ones (a new table version, same rows); vacuum deletes
files no version within the retention window still needs (default 7 days, so time
travel a week back keeps working).
"""

from __future__ import annotations

import logging

from jobs.catalog import existing_tables
from jobs.config import Config
from jobs.lake import Lake

log = logging.getLogger(__name__)
RETENTION_HOURS = 168


def run(cfg: Config, retention_hours: int = RETENTION_HOURS, dry_run: bool = False) -> dict:
    from deltalake import DeltaTable

    lake = Lake(cfg)
    opts = lake.storage_options() or None
    summary = {"tables": 0, "files_compacted": 0, "files_removed": 0}
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
