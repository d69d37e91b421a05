"""Clickstream where Segment and RudderStack already put it: their S3 layouts, on disk and on a real S3 API,
read in place; the same events give the same silver as Rapport's own layout; nothing is taken twice."""

from __future__ import annotations

import dataclasses
import gzip
import json
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from jobs.bronze.landing import place
from jobs.config import Config
from jobs.lake import Lake
from jobs.pipeline.runner import run_stage, run_step
from jobs.runs.window import Window
from tests.lakes import PII_KEY, table_rows

SOURCE_ID = "Xq3PmK2pLw"
CONTENT = ("source_file", "line_number", "landing_dt", "landing_hour", "ingested_at", "run_id", "fingerprint")


@pytest.mark.unit
@pytest.mark.parametrize("layout, path, hour, why", [
    ("rapport", "dt=2026-11-03/hour=07/part-0.json.gz", "2026-11-03T07", None),
    ("rapport", "dt=2026-13-45/hour=01/part-0.json.gz", None, "dt=2026-13-45 is not a date"),
    ("rapport", "dt=2026-11-03/hour=25/part-0.json.gz", None, "hour=25 is not an hour"),
    ("rapport", "2026-11-03/part-0.json.gz", None, "outside the layout"),
    ("segment-s3", f"{SOURCE_ID}/1793664000000/1793689200000.9b1d.gz", "2026-11-03T07", None),
    ("segment-s3", "1793664000000/batch-0001.gz", None, None),  # hour from the newest receivedAt inside
    ("segment-s3", f"{SOURCE_ID}/1793664000123/x.gz", None, "is not a UTC midnight"),
    ("rudderstack-s3", f"{SOURCE_ID}/2026-11-03/1793689200.{SOURCE_ID}.6f1c.json.gz", "2026-11-03T07", None),
    ("rudderstack-s3", f"{SOURCE_ID}/11-03-2026/1793689200.{SOURCE_ID}.6f1c.json.gz", "2026-11-03T07", None),
    ("rudderstack-s3", f"{SOURCE_ID}/2026-11-03/events.json.gz", None, "does not start with unix seconds"),
])
def test_where_a_file_says_it_arrived(layout, path, hour, why):
    got_hour, day, got_why = place(layout, path.split("/"))
    assert (got_hour.strftime("%Y-%m-%dT%H") if got_hour else None) == hour
    assert (got_why is None) if why is None else (why in got_why)
    if why is None:
        assert day is not None


def _calls(landing: Path) -> list[dict]:
    """The generator's clickstream lines (valid JSON objects only), as parsed calls."""
    from jobs.bronze.decode import decode

    out = []
    for path in sorted((landing / "clickstream").rglob("*.json.gz")):
        for line in decode(path.read_bytes()).lines:  # what survives the generator's truncated member too
            try:
                call = json.loads(line)
            except ValueError:
                continue
            if isinstance(call, dict) and call.get("receivedAt") and call.get("messageId"):
                out.append(call)
    return out


def _archive(call: dict) -> dict:
    """A call as Segment's S3 destination writes it: ``originalTimestamp`` is the device's time and
    ``timestamp`` the corrected one."""
    out = dict(call)
    out["originalTimestamp"] = call["timestamp"]
    try:
        t = lambda k: datetime.fromisoformat(call[k].replace("Z", "+00:00"))  # noqa: E731
        corrected = t("receivedAt") - (t("sentAt") - t("timestamp"))
        out["timestamp"] = corrected.strftime("%Y-%m-%dT%H:%M:%S.") + f"{corrected.microsecond // 1000:03d}Z"
    except (KeyError, TypeError, ValueError):
        pass
    return out


def _write(root: Path, layout: str, calls: list[dict]) -> int:
    """Segment- or RudderStack-style files, grouped by hour of receipt as their uploaders do; returns files."""
    by_hour: dict[datetime, list[dict]] = {}
    for c in calls:
        at = datetime.fromisoformat(c["receivedAt"].replace("Z", "+00:00"))
        by_hour.setdefault(at.replace(minute=0, second=0, microsecond=0), []).append(c)
    files = 0
    for i, (hour, batch) in enumerate(sorted(by_hour.items())):
        body = gzip.compress("".join(json.dumps(_archive(c)) + "\n" for c in batch).encode(), mtime=0)
        midnight = int(datetime(hour.year, hour.month, hour.day, tzinfo=timezone.utc).timestamp() * 1000)
        if layout == "segment-s3":  # half the files named by upload time, half not (their content decides)
            name = f"{int(hour.timestamp() * 1000) + 59_000}.{uuid.UUID(int=i)}.gz" if i % 2 else f"part-{i:05d}.gz"
            path = root / "segment-logs" / SOURCE_ID / str(midnight) / name
        else:
            path = root / "rudder-logs" / SOURCE_ID / f"{hour:%Y-%m-%d}" / \
                f"{int(hour.timestamp()) + 59}.{SOURCE_ID}.{uuid.UUID(int=i)}.json.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        files += 1
    return files


@pytest.fixture(scope="module")
def rapport_layout(spark, small_landing, tmp_path_factory):
    """The generator's clickstream in Rapport's own layout, refined: what the other layouts must equal."""
    landing, _ = small_landing
    cfg = Config(lake_root=str(tmp_path_factory.mktemp("own")), landing_root=str(landing), pii_key=PII_KEY)
    for stage in ("ingest", "refine"):
        run_stage(spark, cfg, stage, Window(), only=[f"{stage}.clickstream"])
    return cfg


def _silver(spark, cfg) -> list[tuple]:
    df = Lake(cfg, spark).read("silver.clickstream_events")
    cols = sorted(c for c in df.columns if c not in CONTENT)
    return sorted(tuple(str(r[c]) for c in cols) for r in df.select(*cols).collect())


@pytest.mark.integration
@pytest.mark.slow  # make test reads Segment files on S3 below; both vendor layouts in make test-all
@pytest.mark.parametrize("layout", ["segment-s3", "rudderstack-s3"])
def test_a_vendor_layout_is_read_in_place_and_gives_the_same_events(spark, small_landing, rapport_layout, layout,
                                                                   tmp_path):
    landing, _ = small_landing
    files = _write(tmp_path / "bucket", layout, _calls(landing))
    folder = "segment-logs" if layout == "segment-s3" else "rudder-logs"
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(tmp_path / "bucket"), pii_key=PII_KEY,
                 landing_layouts=f"clickstream={layout}", landing_paths=f"clickstream={folder}")
    # day by day, as a daily schedule would, then once more over everything: each file is taken exactly once
    start = datetime(2026, 10, 31, tzinfo=timezone.utc)
    taken = 0
    for d in range(10):
        report = run_step(spark, cfg, "ingest.clickstream", Window(start + timedelta(days=d), start + timedelta(days=d + 1)))
        taken += report.files_taken
    assert taken == files and run_step(spark, cfg, "ingest.clickstream", Window()).files_taken == 0
    assert run_step(spark, cfg, "ingest.clickstream", Window()).files_unrecognised == 0
    run_step(spark, cfg, "refine.clickstream", Window())
    assert _silver(spark, cfg) == _silver(spark, rapport_layout)
    hours = Lake(cfg, spark).read("ops.ingest_log").select("landing_dt", "landing_hour").distinct().count()
    assert hours > 24  # arrival hours came from names or content, not one per day


@pytest.mark.integration
def test_segment_files_on_a_real_s3_api_are_read_by_the_engine_and_not_taken_twice(spark, small_landing, s3_config,
                                                                                 tmp_path):
    from jobs.storage import s3_client

    landing, _ = small_landing
    local = tmp_path / "bucket"
    files = _write(local, "segment-s3", _calls(landing)[:3000])
    s3, bucket = s3_config
    client = s3_client(s3)
    for path in sorted(local.rglob("*.gz")):
        client.upload_file(str(path), bucket, f"archive/{path.relative_to(local).as_posix()}")
    cfg = dataclasses.replace(s3, lake_root=str(tmp_path / "lake"), landing_root=f"s3://{bucket}/rapport-landing",
                              pii_key=PII_KEY, landing_layouts="clickstream=segment-s3",
                              landing_paths=f"clickstream=s3://{bucket}/archive/segment-logs")
    first = run_step(spark, cfg, "ingest.clickstream", Window())
    assert first.files_taken == files and first.lines >= 3000 and first.bronze_rows == first.lines
    assert run_step(spark, cfg, "ingest.clickstream", Window()).files_taken == 0  # ETags already logged
    assert date(2026, 11, 1) <= Lake(cfg, spark).read("bronze.clickstream").agg({"landing_dt": "min"}).first()[0]

