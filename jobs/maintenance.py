"""Maintenance of every registered Delta table through delta-rs: compaction, then vacuum.

Sail has no OPTIMIZE or VACUUM SQL; delta-rs works on the same files. Compaction
rewrites small files into larger ones (a new table version, same rows); vacuum deletes
files no version within the retention window still needs (default 7 days, so time
travel a week back keeps working). The tables are the ones ``schemas/<layer>.yaml`` declares.
A compacted table gets a log checkpoint at once: every read of a table replays its log from the
newest checkpoint, and a compaction's commit lists every file it removed and added, so without
one each read of a year-old table replayed thousands of file actions until ten more commits
came (``Lake.read`` still reads the versions before it: ``Lake.same_rows_until``). So does a table whose vacuum
removed files: a checkpoint keeps the records of removed files (tombstones) for the table's retention, a week, and
each read parses them; a new one leaves out those that expired.

A table created by an earlier release gets the table properties its declaration now implies (which columns carry
statistics: ``Table.properties``); files written from then on follow them.

It also removes the ``_staging/<run_id>`` folders of runs that were killed before they
could clean up (older than a day; run ids carry their start time).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import STAGING, Lake
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from jobs.runs.window import Window
from jobs.storage import arrow_filesystem, remove_tree

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
RETENTION_HOURS = 168
STAGING_GRACE = timedelta(hours=24)


@dataclass
class MaintenanceReport(Report):
    tables: int = 0
    files_compacted: int = 0
    files_removed: int = 0
    staging_removed: int = 0
    checkpoints: int = 0  # log checkpoints written after a compaction or a vacuum that removed files
    properties_aligned: int = 0  # tables whose Delta properties were set to what the declaration implies
    per_table: dict[str, dict[str, int]] = field(default_factory=dict)


def run(spark: "SparkSession | None", cfg: Config, window: Window | None = None, *, run_id: str | None = None,
        retention_hours: int = RETENTION_HOURS, dry_run: bool = False) -> MaintenanceReport:
    """Compact and vacuum every registered table that exists; clear abandoned staging. Needs no engine."""
    lake = Lake(cfg)
    report = MaintenanceReport("maintenance", run_id or str(RunId.new("maintenance")), window or Window())
    report.staging_removed = len(clear_staging(cfg, dry_run=dry_run))
    for t in lake.existing():
        dt = lake.delta_table(t)
        wanted = t.properties()
        if not dry_run and any(dt.metadata().configuration.get(k) != v for k, v in wanted.items()):
            dt.alter.set_table_properties(wanted)
            dt = lake.delta_table(t)
            report.properties_aligned += 1
        compacted = 0 if dry_run else dt.optimize.compact().get("numFilesRemoved", 0)
        removed = dt.vacuum(retention_hours=retention_hours, dry_run=dry_run, enforce_retention_duration=True)
        if compacted or (removed and not dry_run):
            # a log checkpoint: a read replays it, not the compaction's long commit; and it leaves out the
            # tombstones of the files vacuum removed (expired), which every read would still parse
            lake.delta_table(t).create_checkpoint()
            report.checkpoints += 1
        report.per_table[t.qualified] = {"files_compacted": compacted, "files_removed": len(removed)}
        report.files_compacted += compacted
        report.files_removed += len(removed)
        report.tables += 1
        log.info("%s: %d files compacted, %d old files %s", t.qualified, compacted, len(removed),
                 "would go" if dry_run else "removed")
    return report


def clear_staging(cfg: Config, now: datetime | None = None, grace: timedelta = STAGING_GRACE,
                  dry_run: bool = False) -> list[str]:
    """Remove staging folders of runs that started more than ``grace`` ago; return their run ids."""
    from pyarrow.fs import FileSelector, FileType

    root = f"{Lake(cfg).root}/{STAGING}"
    fs, base = arrow_filesystem(cfg, root)
    cutoff = (now or datetime.now(timezone.utc)) - grace
    old = []
    for info in fs.get_file_info(FileSelector(base, allow_not_found=True)):
        run_id = RunId.parse(info.base_name)
        if info.type == FileType.Directory and run_id is not None and run_id.started < cutoff:
            old.append(info.base_name)
    for name in old if not dry_run else ():
        remove_tree(cfg, f"{root}/{name}")
        log.info("removed the staging folder of run %s (it never finished cleaning up)", name)
    return old
