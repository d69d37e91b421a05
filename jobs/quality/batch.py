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
Keys are checked against the rest of the table where a twin can be: in a table partitioned by one date, the
partitions within ``RAPPORT_LATE_DAYS`` of the batch's (``near``). No run writes a key further from where it
already is: refine quarantines what arrives later than that, merges an order into its creation date (a moved one
against the whole table) and derives a session's id from its start. The weekly whole-table gate (``gate.full``,
``rapport quality validate --full``) checks every key against every other, and every other rule on every row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from jobs.lake import Lake, partitions_sql, record_count
from schemas.tables import table


@dataclass(frozen=True)
class Batch:
    version: int  # the table version validated
    since: int | None  # the version of the last passed verdict; None: the whole table is the batch
    where: str | None  # the batch as a SQL condition on partition columns; None: every row
    files: int  # partitions with rows added since ``since`` (all files when ``since`` is None)
    rows: int | None  # the whole table's rows at ``version``, from the log's record counts
    values: frozenset = field(default=frozenset())  # the partitions of ``where``, as tuples of partition values

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
    return Batch(version, since, partitions_sql(partitions, values), added, rows, frozenset(values))


def near(name: str, values: frozenset, days: int) -> str | None:
    """The partitions of ``name`` within ``days`` of the batch's partitions ``values`` (a condition of date ranges),
    where a key of the batch can have a twin; None when ``name`` is not partitioned by one date (every partition
    can hold one)."""
    t = table(name)
    if len(t.partitioned_by) != 1 or not values:
        return None
    column = t.partitioned_by[0]
    if next(c.type for c in t.columns if c.name == column) != "date":
        return None
    dates = sorted(v[0] for v in values if v[0] is not None)
    spans: list[list[date]] = []
    for d in dates:
        lo, hi = d - timedelta(days=days), d + timedelta(days=days)
        if spans and lo <= spans[-1][1] + timedelta(days=1):
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    parts = [f"{column} BETWEEN DATE'{lo}' AND DATE'{hi}'" for lo, hi in spans]
    if any(v[0] is None for v in values):
        parts.append(f"{column} IS NULL")
    return " OR ".join(parts)
