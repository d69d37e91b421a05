"""The passage of time the benchmark compresses: a bench "day" takes seconds, so Delta's one-week retention of
removed-file records (tombstones) never runs out on a bench lake, and a lake built in an afternoon carries every
tombstone of its whole history.

Why it matters: each read of a table replays its newest log checkpoint, tombstones included. On a lake a year old
that has run every day, the weekly maintenance's checkpoint (and the engine's own, every 10 commits) leaves out the
tombstones older than the table's ``delta.deletedFileRetentionDuration`` (one week by default): a week of them, as
on a young lake. The year-old bench lake built in bulk and compacted once instead held 10,654 (3,177 in
``gold.interactions`` alone, against 365 live files), young ones a few hundred; profiled, those cost its daily run
about 3.5 s of 18 (docs/benchmark.md, "Tombstones").

``expire_tombstones`` is what the checkpoints would have done once the bench's clock (its days, not the wall
clock) has moved past them: a checkpoint without the tombstones written before ``before``. The files themselves
stay (delta-rs vacuums by the hour, and no read lists them); the bench removes its lakes afterwards.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

from jobs.bench.pipeline import config_for

RETENTION = "delta.deletedFileRetentionDuration"
DEFAULT_RETENTION = "interval 1 week"  # Delta's default, which every Rapport table has


def expire_tombstones(landing: Path, lake: Path, before: datetime, now: datetime | None = None) -> dict[str, int]:
    """Checkpoint every table of the lake without the tombstones written before ``before``: for the checkpoint,
    the table's retention is the time since ``before``, then back to a week. Returns the tombstones each table's
    checkpoint keeps (those written since ``before``)."""
    from jobs.lake import Lake

    lk = Lake(config_for(landing, lake, None, "aging"))
    seconds = max(0, math.ceil(((now or datetime.now(timezone.utc)) - before).total_seconds()))  # keeps, if anything, more
    kept = {}
    for t in lk.existing():
        dt = lk.delta_table(t)
        retention = dt.metadata().configuration.get(RETENTION) or DEFAULT_RETENTION
        dt.alter.set_table_properties({RETENTION: f"interval {seconds} seconds"})
        dt = lk.delta_table(t)
        dt.create_checkpoint()
        kept[t.qualified] = _tombstones(lk, t, dt.version())
        dt.alter.set_table_properties({RETENTION: retention})
    return kept


def _tombstones(lk, t, version: int) -> int:
    """The remove actions in the table's checkpoint at ``version``."""
    import pyarrow.parquet as pq

    from jobs.storage import arrow_filesystem

    fs, root = arrow_filesystem(lk.cfg, lk.path(t))
    with fs.open_input_file(f"{root}/_delta_log/{version:020d}.checkpoint.parquet") as f:
        removes = pq.read_table(f, columns=["remove"]).column("remove")
    return len(removes) - removes.null_count
