"""The bench's clock for Delta's tombstones: a checkpoint without those written before a time, rows unchanged."""

from __future__ import annotations

import dataclasses
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jobs.bench.aging import DEFAULT_RETENTION, RETENTION, expire_tombstones
from jobs.lake import Lake
from tests.lakes import table_rows

pytestmark = pytest.mark.integration


def test_tombstones_written_before_the_bench_time_leave_the_checkpoint_and_the_rest_stay(spark, refined, tmp_path):
    from deltalake import write_deltalake

    cfg, _, _ = refined
    shutil.copytree(Lake(cfg).root, tmp_path / "lake")
    cfg = dataclasses.replace(cfg, lake_root=str(tmp_path / "lake"))
    lake = Lake(cfg, spark)
    name = "silver.identity_map"
    rows = lake.delta_table(name).to_pyarrow_table()
    for _ in range(3):  # three tombstones before the bench time …
        write_deltalake(lake.path(name), rows, mode="overwrite")
    time.sleep(1.1)
    middle = datetime.now(timezone.utc)
    time.sleep(1.1)
    for _ in range(2):  # … and two after it
        write_deltalake(lake.path(name), rows, mode="overwrite")
    expected = table_rows(spark, lake.path(name))

    kept = expire_tombstones(Path(cfg.landing_root), Path(cfg.lake_root), middle)
    assert kept[name] == 2
    assert set(kept) == {t.qualified for t in lake.existing()}
    assert lake.delta_table(name).metadata().configuration[RETENTION] == DEFAULT_RETENTION
    assert table_rows(spark, lake.path(name)) == expected
    # now: every tombstone is older, none is kept
    assert expire_tombstones(Path(cfg.landing_root), Path(cfg.lake_root), datetime.now(timezone.utc))[name] == 0
