"""Maintenance on a copy of a real lake: every registered table compacted and vacuumed, rows unchanged;
abandoned staging goes, live staging stays."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from jobs import maintenance
from jobs.lake import Lake
from schemas.tables import table
from jobs.runs.run_id import RunId
from tests.lakes import table_rows

pytestmark = pytest.mark.integration
MANY = ("bronze.clickstream", "silver.clickstream_events", "gold.interactions", "ops.quarantine")


@pytest.mark.slow
def test_maintenance_compacts_every_table_without_changing_rows_and_clears_abandoned_staging(spark, refined, tmp_path):
    cfg, _, _ = refined
    shutil.copytree(Lake(cfg).root, tmp_path / "lake")
    cfg = dataclasses.replace(cfg, lake_root=str(tmp_path / "lake"))
    lake = Lake(cfg, spark)
    staging = tmp_path / "lake" / "_staging"
    abandoned, running = "export-20260101T000000-0123abcd", str(RunId.new("export"))
    for run_id in (abandoned, running):
        (staging / run_id / "interactions").mkdir(parents=True)
        (staging / run_id / "interactions" / "part-0.parquet").write_bytes(b"x")
    (staging / "not-a-run").mkdir()
    from deltalake import write_deltalake

    for name in MANY:  # many small files in one table of each layer: the same rows, rewritten in eight appends
        rows = lake.delta_table(name).to_pyarrow_table()
        size = rows.num_rows // 8 + 1
        for i in range(8):
            write_deltalake(lake.path(name), rows.slice(i * size, size), mode="overwrite" if i == 0 else "append")
    before = {name: (table_rows(spark, lake.path(name)), len(lake.delta_table(name).file_uris())) for name in MANY}

    report = maintenance.run(spark, cfg)
    assert set(report.per_table) == {t.qualified for t in lake.existing()} and report.tables > 25
    assert report.staging_removed == 1
    assert not (staging / abandoned).exists() and (staging / running).exists() and (staging / "not-a-run").exists()
    for name, (rows, files) in before.items():
        assert table_rows(spark, lake.path(name)) == rows, name
        assert len(lake.delta_table(name).file_uris()) < files, name


def test_a_compaction_is_not_a_change_to_the_runs_that_read_since(spark, refined, tmp_path):
    """Compaction rewrites files with the same rows (``dataChange: false`` in the log): the next curate finds no
    date whose rows changed, and the next gate no partition to read, though files of every one of those tables were replaced."""
    from deltalake import write_deltalake

    from jobs.gold import changes
    from jobs.quality import batch
    from tests.lakes import curate

    cfg, _, _ = refined
    shutil.copytree(Lake(cfg).root, tmp_path / "lake")
    cfg = dataclasses.replace(cfg, lake_root=str(tmp_path / "lake"))
    lake = Lake(cfg, spark)
    names = ("silver.clickstream_events", "silver.sessions", "gold.interactions")
    for name in names:  # the same rows in many small files
        rows = lake.delta_table(name).to_pyarrow_table()
        size = rows.num_rows // 6 + 1
        parts = table(name).partitioned_by
        for i in range(6):
            write_deltalake(lake.path(name), rows.slice(i * size, size), mode="overwrite" if i == 0 else "append",
                            partition_by=list(parts))
    curate(spark, cfg, gates=False)  # reads the rewritten tables, records their versions
    read = {name: lake.version(name) for name in names}
    files = {name: set(lake.delta_table(name).file_uris()) for name in names}
    rows = {name: sorted(map(repr, lake.read(name).collect())) for name in names}

    report = maintenance.run(spark, cfg)
    assert report.checkpoints >= len(names)
    for name in names:
        assert lake.version(name) > read[name] and files[name] - set(lake.delta_table(name).file_uris()), name
        assert lake.changed_partitions(name, read[name]) == set(), name
        assert batch.touched(lake, name, read[name], lake.version(name)).where == "FALSE", name
        # the compacted version has a log checkpoint, and the version read before it is still the same rows (Sail
        # cannot read a version just before a checkpoint, gap 7: only compaction since, so the rows are now's)
        last = json.loads((Path(lake.path(name)) / "_delta_log" / "_last_checkpoint").read_text())
        assert last["version"] == lake.version(name), name
        assert lake.same_rows_until(name, read[name]) == lake.version(name), name
        assert lake.same_rows_until(name, read[name] - 1) == read[name] - 1, name  # a data change at read[name]
        assert sorted(map(repr, lake.read(name, version=read[name]).collect())) == rows[name], name
    assert changes.changed_dates(lake, changes.previous_run(lake)["reference_versions"]) == []
    # a day's new rows after the compaction: the version read before it still reads as its rows
    name = "silver.clickstream_events"
    write_deltalake(lake.path(name), lake.delta_table(name).to_pyarrow_table().slice(0, 5), mode="append",
                    partition_by=list(table(name).partitioned_by))
    assert lake.same_rows_until(name, read[name]) == lake.version(name) - 1
    assert sorted(map(repr, lake.read(name, version=read[name]).collect())) == rows[name]


def test_a_table_from_an_earlier_release_gets_the_declared_statistics_and_new_files_follow_them(spark, refined,
                                                                                                  tmp_path):
    """A table created when every non-personal column got statistics: maintenance sets the declared properties,
    and the engine's next write logs statistics of the declared columns only."""
    cfg, _, _ = refined
    shutil.copytree(Lake(cfg).root, tmp_path / "lake")
    cfg = dataclasses.replace(cfg, lake_root=str(tmp_path / "lake"))
    lake = Lake(cfg, spark)
    name = "silver.clickstream_events"
    t = table(name)
    before = ",".join(c.name for c in t.columns if c.pii == "none" and c.name not in t.partitioned_by)
    lake.delta_table(name).alter.set_table_properties({"delta.dataSkippingStatsColumns": before})

    report = maintenance.run(spark, cfg)
    assert report.properties_aligned == 1
    assert lake.delta_table(name).metadata().configuration["delta.dataSkippingStatsColumns"] == \
        ",".join(t.stats_columns)
    assert maintenance.run(spark, cfg).properties_aligned == 0  # aligned once
    lake.read(name).limit(3).write.format("delta").mode("append").save(lake.path(name))
    newest = Path(lake.path(name)) / "_delta_log" / f"{lake.version(name):020d}.json"
    stats = [json.loads(json.loads(line)["add"]["stats"]) for line in newest.open() if '"add"' in line]
    assert stats and all(set(s["minValues"]) <= set(t.stats_columns) for s in stats)
    assert "message_id" in before and all("message_id" not in s["minValues"] for s in stats)


def test_a_vacuum_that_removes_files_leaves_a_checkpoint_without_their_tombstones(spark, refined, tmp_path):
    """Every read of a table parses its newest checkpoint, removed-file records (tombstones) included: a table that
    maintenance vacuumed but had nothing to compact gets a new checkpoint too, without the expired ones."""
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    cfg, _, _ = refined
    shutil.copytree(Lake(cfg).root, tmp_path / "lake")
    cfg = dataclasses.replace(cfg, lake_root=str(tmp_path / "lake"))
    lake = Lake(cfg, spark)
    name = "silver.identity_map"  # one file, nothing to compact
    rows = lake.delta_table(name).to_pyarrow_table()
    for _ in range(3):  # the same rows written again: each write removes the file before it
        write_deltalake(lake.path(name), rows, mode="overwrite")
    for t in lake.existing():  # tombstones expire at once, and a vacuum with no retention is allowed
        lake.delta_table(t).alter.set_table_properties({"delta.deletedFileRetentionDuration": "interval 0 seconds"})
    expected = table_rows(spark, lake.path(name))
    log = Path(lake.path(name)) / "_delta_log"
    before = lake.version(name)

    report = maintenance.run(spark, cfg, retention_hours=0)
    assert report.per_table[name]["files_compacted"] == 0 and report.per_table[name]["files_removed"] >= 3
    last = json.loads((log / "_last_checkpoint").read_text())["version"]
    assert last == lake.version(name) > before
    removes = pq.read_table(log / f"{last:020d}.checkpoint.parquet", columns=["remove"]).column("remove")
    assert len(removes) - removes.null_count == 0
    assert table_rows(spark, lake.path(name)) == expected
