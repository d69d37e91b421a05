"""A tiny benchmark run: well-formed results, fair peers (equal outputs), and a comparison that can say no."""

from __future__ import annotations

import json

import pytest

from jobs.bench.peers import compare
from jobs.bench.pipeline import PIPELINE_STAGES, Settings
from jobs.bench.run import run

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # about two minutes: `make test-all`


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out, work = tmp_path_factory.mktemp("bench-out"), tmp_path_factory.mktemp("bench-work")
    run(Settings(scales=(4000,), repeats=1, days=3, incremental_days=2, incremental_events_per_day=1500, history_days=8, out=out,
                 workdir=work, keep_data=True, collector_seconds=0.3, bounded_memory="64m", bounded_at=4000,
                 compare_with="HEAD", freshness_seconds=8, freshness_rate=100, freshness_interval=5),
        progress=lambda m: None)
    return out, work


def test_a_tiny_bench_writes_well_formed_results(tiny):
    out, _ = tiny
    r = json.loads((out / "results.json").read_text())
    assert r["machine"]["cores"] >= 1 and r["machine"]["memory_gib"] > 0
    (scale,) = r["scales"]
    md = (out / "results.md").read_text()
    assert scale["events"] > 2000
    for stage in PIPELINE_STAGES:
        s = scale["stages"][stage]
        assert s["seconds"] > 0 and s["events_per_second"] > 0 and s["peak_memory_bytes"] > 50 * 2**20, stage
        assert s["bytes_in"] > 0, stage
    assert scale["stages"]["ingest"]["bytes_out"] > 0 and scale["stages"]["export"]["bytes_out"] > 0
    (race,) = r["peers"]
    assert set(race["engines"]) == {"embedded", "jvm", "duckdb"}
    for engine in ("jvm", "duckdb"):
        e = race["engines"][engine]
        assert e["equal"] is True and e["vs_embedded"] > 0, e["comparison"]
        assert e["comparison"]["customer_timeline"]["rows"][0] > 1000
    assert set(scale["local_cluster"]) >= {"ingest", "refine", "curate", "quality", "total"}  # the multi-worker run
    assert all(v["seconds"] > 0 for v in scale["local_cluster"].values())
    bounded = scale["bounded"]  # the run with a small engine memory pool (64 MiB here, above these few lines)
    assert bounded["pool_bytes"] == 64 * 2**20 and bounded["window_bytes"] > 1_000_000
    assert all(v["seconds"] > 0 for v in bounded["stages"].values()) and "memory pool" in md
    peer = scale["refine_peer"]  # the DuckDB peer of refine's clickstream core, beside silver
    assert peer["seconds"] > 0 and peer["rapport_seconds"] > 0 and peer["events"] > 1000
    assert peer["comparison"]["events_same"] > 0.9 * peer["events"]
    fresh = r["freshness"]  # steady load on the collector while micro-batches run: every event reaches gold
    assert fresh["acknowledged"] > 500 and fresh["not_visible"] == 0 and 0 < fresh["p50_seconds"] <= fresh["p95_seconds"]
    assert len(fresh["batches"]) >= 2 and "## Freshness under steady load" in md
    compared = scale["comparison"]  # the same landing built by the committed code's own CLI: the same figures
    assert compared["revision"] == "HEAD" and compared["figures"] > 40 and compared["differ"] == {}, compared
    assert scale["figures"]["rows silver.clickstream_events"] > 1000 and "against the code of an earlier" in md
    identity = scale["identity"]
    assert identity["people"] > 50 and identity["false_merged_keys"] == 0
    assert identity["split_joinable"] + identity["split_unlinked"] == identity["split_people"]
    days = r["incremental"]["days"]
    assert [d["day"] for d in days] == [1, 2] and all(d["events"] > 0 and d["seconds"] > 0 for d in days)
    assert all(d["lake_files"] > 10 for d in days) and r["incremental"]["full_gate"]["seconds"] > 0
    assert set(r["incremental"]["stages_late_vs_early"]) >= {"ingest", "refine", "curate", "quality"}
    again = r["incremental"]["early_again"]  # day 2 again at the end, on the lake as it was before it: the same work
    assert [a["day"] for a in again] == [2] and again[0]["events"] == days[1]["events"]
    assert r["incremental"]["late_vs_early_again"] > 0 and "run again after the last day" in md
    hist = r["history"]  # 8 days of history against 7, 3 daily runs on each lake
    assert [run["day"] for run in hist["lakes"]["old"]["runs"]] == [1, 2, 3] == [
        run["day"] for run in hist["lakes"]["young"]["runs"]]
    assert all(run["written_bytes"] >= run["rewritten_bytes"] >= 0 and run["written_bytes"] > 0
               for lake in hist["lakes"].values() for run in lake["runs"])
    assert hist["old_vs_young"] > 0 and "## History independence" in md
    assert all(d["written_bytes"] > 0 for d in days)
    assert "| ingest |" in md and "| jvm |" in md and "## Incremental" in md and "- report at " in md
    assert "local-cluster" in md and "## Identity stitching" in md and "data files" in md and "DuckDB peer" in md
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    cells = r["collector"]
    assert len(cells) == 18 and {c["sink"] for c in cells} == {"disk", "memory"}
    assert all(c["events_per_second"] > 0 and c["errors"] == 0 and 0 < c["p50_ms"] <= c["p99_ms"] for c in cells)
    assert "## Collector under load" in md and (out / "collector.png").read_bytes()[:4] == b"\x89PNG"


def test_the_comparison_finds_a_single_changed_value(tiny, tmp_path):
    import shutil

    import duckdb

    _, work = tiny
    peer = next(work.glob("scale-*/peer-embedded-0"))
    changed = tmp_path / "changed"
    shutil.copytree(peer, changed)
    timeline = changed / "customer_timeline"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * REPLACE (CASE WHEN seq = 1 AND customer_key = (SELECT min(customer_key) FROM "
                f"read_parquet('{timeline}/*.parquet')) THEN summary || '!' ELSE summary END AS summary) "
                f"FROM read_parquet('{timeline}/*.parquet')) TO '{tmp_path / 'one.parquet'}' (FORMAT parquet)")
    shutil.rmtree(timeline)
    timeline.mkdir()
    shutil.move(tmp_path / "one.parquet", timeline / "part-0.parquet")
    result = compare(peer, changed)
    assert result["customer_relationship"]["equal"]
    t = result["customer_timeline"]
    assert not t["equal"] and t["only_in_first"] == 1 and t["only_in_second"] == 1
