"""Engine faults Rapport once worked around, kept as reproductions: each test fails if the fault comes back.

Sail 0.7.0: a checkpointed, filtered frame written inside a plan (silver quarantine of a windowed social
refine) got NULL ``reason`` values while ``collect()`` of the same frame was right. Silver quarantine went
through the client because of it; on 0.7.2 it stays on the engine (``jobs.silver.common.quarantine``).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

pytestmark = pytest.mark.integration


def test_a_filtered_checkpoint_keeps_its_reasons_inside_a_write(spark, tmp_path):
    from pyspark.sql import functions as F

    from jobs.config import Config
    from jobs.lake import Lake
    from jobs.silver import social
    from jobs.silver.common import quarantine
    from tests.lakes import PII_KEY

    cfg = Config(lake_root=str(tmp_path / "lake"), pii_key=PII_KEY)
    lake = Lake(cfg, spark)
    good = {"platform": "instagram", "event_id": "e", "interaction": "like", "actor": {"id": "a", "handle": "h"},
            "target": {"type": "post", "id": "p"}, "occurred_at": "2026-11-02T10:00:00Z",
            "collected_at": "2026-11-02T10:05:00Z"}
    lines = []
    for i in range(3000):  # enough rows for several batches and partitions
        kind = i % 4
        e = {**good, "event_id": f"e{i}"}
        if kind == 1:
            e["platform"] = "myspace"
        elif kind == 2:
            e.pop("actor")
        elif kind == 3:
            e["occurred_at"] = "not a time"
        lines.append((json.dumps(e), f"social/f{i % 7}.json.gz", i, 10 + i % 3))
    bronze = (spark.createDataFrame(lines, "value string, source_file string, line_number bigint, landing_hour int")
              .withColumn("landing_dt", F.lit("2026-11-02").cast("date")).withColumn("ingested_at", F.current_timestamp()))
    parsed = lake.checkpoint(social.parse(bronze.where("landing_hour >= 11"), cfg), "fault-run", "parsed")
    bad = parsed.where("reason IS NOT NULL")
    expected = sorted((r.source_file, r.line_number, r.reason) for r in bad.select("source_file", "line_number", "reason").collect())
    quarantine(lake, "social", bad, "fault-run", datetime.now(timezone.utc))
    written = sorted((r.source_file, r.line_number, r.reason) for r in
                     lake.read("ops.quarantine").select("source_file", "line_number", "reason").collect())
    assert len(expected) > 1000 and all(r for _, _, r in expected)
    assert written == expected
