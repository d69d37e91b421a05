"""What a gate reads of a table whose suite has scope ``touched``: the partitions a run changed, from the Delta log.

A gate records, per table, the Delta version it validated (``ops.quality_gates.table_version``). The next gate
reads the commits since the version of the latest *passed* verdict (the log only, no row data) and validates the
table's rows in the partitions their added files belong to; a compaction's files (``dataChange: false``) hold
rows already validated and are left out. So a day's gate costs what
the day's writes touched, not the table's history:

- a date-partitioned table (trends, sessions, orders) is read for the dates a run rewrote;
- an unpartitioned table written whole (``snapshot``: relationship scores, the identity map) is read whole,
  which is what its write cost too;
- nothing added since the last passed verdict: no rows to validate (the table did not change);
- no passed verdict yet, or its version no longer readable (log cleaned up): the whole table.

A failed verdict does not move the base: the next gate validates everything since the last passed one again.
Whole-table checks run weekly (``gate.full``, ``rapport quality validate --full``).
"""

from __future__ import annotations

from dataclasses import dataclass
from jobs.lake import Lake, partitions_sql, record_count
from schemas.tables import table


@dataclass(frozen=True)
class Batch:
    version: int  # the table version validated
    since: int | None  # the version of the last passed verdict; None: the whole table is the batch
    where: str | None  # the batch as a SQL condition on partition columns; None: every row
    files: int  # partitions with rows added since ``since`` (all files when ``since`` is None)
    rows: int | None  # the whole table's rows at ``version``, from the log's record counts

    def describe(self) -> str:
        if self.since is None:
            return f"whole table at version {self.version}"
        if self.files == 0:
            return f"no row added since version {self.since}, the last passed gate's: nothing to read"
        return f"{self.files} partition(s) with rows added in versions {self.since + 1}..{self.version}" + (
            "" if self.where is None else f" ({self.where})")


def touched(lake: Lake, name: str, since: int | None, version: int) -> Batch:
    """The batch of ``name`` at ``version``: the partitions of the files added after version ``since``."""
    now = lake.files(name, version)
    rows = record_count(now)
    if since is None or since > version:
        return Batch(version, None, None, now.num_rows, rows)
    # the partitions of files added with new rows (a compaction's files hold rows already validated)
    values = lake.changed_partitions(name, since, version, kinds=("add",))
    if values is None:  # a commit since is no longer in the log: validate everything
        return Batch(version, None, None, now.num_rows, rows)
    partitions = table(name).partitioned_by
    added = len(values)
    if not values:
        return Batch(version, since, "FALSE", 0, rows)
    if not partitions:
        return Batch(version, since, None, added, rows)
    return Batch(version, since, partitions_sql(partitions, values), added, rows)
