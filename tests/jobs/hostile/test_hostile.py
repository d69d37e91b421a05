"""Hostile input, misuse and mistakes never wedge the pipeline, lose a line, or let personal data past bronze."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.lake import Lake
from jobs.pipeline.runner import run_stage
from jobs.runs.window import Window
from tests.jobs.hostile.conftest import EMAIL, SECRETS
from tests.lakes import PII_KEY

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def quarantined(spark, cfg, where: str) -> dict[str, str]:
    rows = Lake(cfg, spark).read("ops.quarantine").where(where).collect()
    return {(json.loads(r.raw).get("messageId") if r.raw and r.raw.startswith("{") and '"messageId"' in r.raw
             else r.raw[:12] if r.raw else "bytes"): r.reason for r in rows}


def test_every_window_reconciles_and_every_gate_passed(hostile):
    _, results, _ = hostile
    refine = results["refine"].reports
    assert all(refine[f"refine.{s}"].balanced for s in ("clickstream", "social", "orders"))
    assert all(r.gate.passed for r in results.values())


def test_impossible_times_are_quarantined_and_a_reset_clock_is_corrected(spark, hostile):
    cfg, _, _ = hostile
    q = quarantined(spark, cfg, "source_file LIKE '%hostile-times%'")
    assert q == {"hostile-1": "bad_timestamp", "hostile-2": "bad_timestamp"}  # year 9999; before 2000
    kept = Lake(cfg, spark).read("silver.clickstream_events").where("message_id = 'hostile-3'").first()
    assert kept.event_time.year == 2026 and kept.device_timestamp.year == 1970
    for full in (False, True):  # later runs are not wedged: curate, and a full rebuild, still work
        assert run_stage(spark, cfg, "curate", Window(), full=full).gate.passed
    first_seen = Lake(cfg, spark).read("gold.customer_relationship").agg({"first_seen": "min"}).first()[0]
    assert first_seen.year == 2026


def test_urls_whose_host_is_not_a_host_are_kept_without_their_parts(spark, hostile):
    """Sail's ``parse_url`` raises on them (IdnaError, EmptyHost), which failed the window's whole refine."""
    cfg, _, _ = hostile
    lake = Lake(cfg, spark)
    kept = lake.read("silver.clickstream_events").where("message_id IN ('hostile-30', 'hostile-31', 'hostile-32')")
    assert sorted((r.message_id, r.referrer_host) for r in kept.collect()) == [
        ("hostile-30", None), ("hostile-31", None), ("hostile-32", None)]
    order = lake.read("silver.orders").where("order_id = 4242424242425").first()
    assert order is not None and order.referring_host is None


def test_every_shape_of_bad_line_has_its_own_reason_and_bytes_are_kept(spark, hostile):
    cfg, _, _ = hostile
    lake = Lake(cfg, spark)
    rows = lake.read("ops.quarantine").where("source_file LIKE '%hostile-shapes%'").collect()
    reasons = sorted(r.reason for r in rows)
    assert reasons == sorted(["wrong_types", "json_too_deep", "json_nonstandard", "json_array", "json_nonstandard",
                              "not_utf8"])
    (raw,) = [r for r in rows if r.reason == "not_utf8"]
    assert raw.raw is None and bytes(raw.raw_bytes) == b'{"type": "track", "messageId": "caf\xe9"}'
    (props,) = [r for r in rows if r.reason == "wrong_types"]
    assert "properties is not an object" in props.detail
    bronze = {json.loads(r.value)["messageId"] for r in lake.read("bronze.clickstream")
              .where("source_file LIKE '%hostile-shapes%' OR source_file LIKE '%plain-text%'").collect()}
    assert {"hostile-10", "hostile-13"} <= bronze  # the first line, behind a byte-order mark, is kept
    assert {f"hostile-{20 + i}" for i in range(5)} <= bronze  # a plain-text file named .json.gz: all five lines


def test_no_file_goes_unseen(spark, hostile):
    cfg, results, _ = hostile
    listed = {r.path: r.reason for r in Lake(cfg, spark).read("ops.landing_unrecognised").collect()}
    assert "dt=2026-13-45 is not a date" in listed["clickstream/dt=2026-13-45/hour=01/a.json.gz"]
    assert "hour=25 is not an hour" in listed["clickstream/dt=2026-11-02/hour=25/b.json.gz"]
    assert "outside the layout" in listed["orders/2026-11-02/outside.json.gz"]
    assert "hidden" in listed["social/dt=2026-11-02/hour=05/_hidden.json.gz"]
    assert "hidden" in listed["social/dt=2026-11-02/hour=05/.DS_Store"]
    assert "in no source's folder" in listed["clikstream/dt=2026-11-02/hour=05/misspelled.json.gz"]
    assert not [p for p in listed if p.endswith(".inprogress")]  # being written: taken once renamed
    ingest = results["ingest"].reports
    assert ingest["ingest.clickstream"].files_unrecognised == 2 and ingest["ingest.survey"].unrecognised >= 1


def test_personal_data_stops_at_bronze(spark, hostile):
    """Every Parquet file and Delta log of silver, gold and ops (raw-class columns aside) and the Data Docs,
    scanned for the secrets the landing zone hid in every free-text field and id."""
    import pyarrow.parquet as pq

    from schemas.tables import table

    cfg, _, _ = hostile
    root = Path(Lake(cfg).root)
    found = []
    for path in root.rglob("*"):
        if not path.is_file() or "_staging" in path.parts:
            continue
        layer = path.relative_to(root).parts[0]
        if path.suffix == ".parquet" and layer in ("bronze", "silver", "gold", "ops"):
            t = table(f"{layer}.{path.relative_to(root).parts[1]}")
            raw = set(t.pii("raw"))
            data = pq.read_table(path)
            text = json.dumps(data.drop([c for c in data.column_names if c in raw]).to_pylist(), default=str)
        elif path.suffix in (".json", ".html", ".crc", ".checkpoint") or "_delta_log" in path.parts:
            text = path.read_bytes().decode("utf-8", "replace")
        else:
            continue
        found += [(str(path.relative_to(root)), s) for s in SECRETS if s in text]
    assert found == []
    lake = Lake(cfg, spark)
    pii = lake.read("silver.clickstream_events").where("message_id IN ('pii-1', 'pii-3')").orderBy("message_id").collect()
    assert [r.ip_truncated for r in pii] == ["198.51.100.0", "2001:db8:85a3::"]
    assert pii[0].search_query == "<email> <phone>" and pii[0].referrer == "https://mail.example/?utm_campaign=spring"
    summary = lake.read("gold.customer_timeline").where("event_type = 'search' AND summary LIKE '%<email>%'").count()
    assert summary >= 1  # the timeline's summary reads the scrubbed query


def test_analysts_read_and_do_not_write(spark, hostile):
    cfg, _, _ = hostile
    env = {"PATH": "/usr/bin:/bin", "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_PII_KEY": PII_KEY}
    lake = Lake(cfg, spark)
    before = {t: lake.version(t) for t in ("gold.interactions", "ops.audit", "ops.quarantine")}

    def sql(query: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "jobs.cli", "sql", query, *extra], capture_output=True, text=True,
                              env=env, timeout=180, cwd=REPO)

    for query in ("DELETE FROM gold.customer_timeline", "UPDATE gold.customer_timeline SET seq = 0",
                  "INSERT INTO ops.audit SELECT * FROM ops.audit", "DELETE FROM ops.quarantine",
                  "SELECT 1; DROP TABLE gold.customer_timeline", "SELECT * FROM delta.`/tmp/x`"):
        proc = sql(query)
        assert proc.returncode == 2 and "refused" in proc.stderr, (query, proc.stderr)
    raw = sql("SELECT count(*) AS n FROM bronze.clickstream")
    assert raw.returncode == 2 and "--role engineer" in raw.stderr
    ok = sql("SELECT count(*) AS n FROM bronze.clickstream", "--role", "engineer", "--format", "json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["n"] > 0
    assert {t: lake.version(t) for t in before} == before  # nothing changed


@pytest.mark.parametrize("who", ["x' OR '1'='1", "O'Brien", "ck_0000000000000000' OR 1=1 --"])
def test_timeline_takes_its_argument_as_data(hostile, who):
    cfg, _, _ = hostile
    env = {"PATH": "/usr/bin:/bin", "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_PII_KEY": PII_KEY}
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "timeline", who], capture_output=True, text=True, env=env,
                          timeout=180, cwd=REPO)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert "neither a customer key" in proc.stderr


def test_mistakes_get_one_clear_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "RAPPORT_PII_KEY": PII_KEY, "RAPPORT_LANDING_ROOT": str(tmp_path)}
    run = lambda *a, **e: subprocess.run([sys.executable, "-m", "jobs.cli", *a], capture_output=True, text=True,  # noqa
                                         env={**env, **e}, timeout=180, cwd=REPO)
    reversed_ = run("refine", "--from", "2026-11-05", "--to", "2026-11-01", RAPPORT_LAKE_ROOT=str(tmp_path / "lake"))
    assert reversed_.returncode == 2 and "is reversed" in reversed_.stderr and "Traceback" not in reversed_.stderr
    afile = tmp_path / "lake-file"
    afile.write_text("not a folder")
    wrong = run("ingest", RAPPORT_LAKE_ROOT=str(afile))
    assert wrong.returncode == 2 and "RAPPORT_LAKE_ROOT" in wrong.stderr and "is a file" in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_file_replaced_in_place_is_a_new_version_deduped_by_event_id(spark, tmp_path):
    """Same size, other content: taken as version 2; its unchanged lines are duplicates, its changed line an id
    conflict; every window still reconciles and gold is built."""
    import gzip

    from jobs.config import Config
    from jobs.pipeline.runner import run_pipeline
    from tests.handmade import T0, land, seg

    landing = tmp_path / "landing"
    events = [seg(f"dev-{i}", None, T0) for i in range(5)]
    land(landing, "clickstream", T0, events)
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    run_pipeline(spark, cfg, Window(), stages=("ingest", "refine", "curate"))
    path = next((landing / "clickstream").rglob("*.json.gz"))
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    changed = lines[2].replace('"Product Viewed"', '"Product Viewer"')  # one letter: same size, other content
    assert len(changed) == len(lines[2])
    body = gzip.compress(("\n".join(lines[:2] + [changed] + lines[3:]) + "\n").encode(), mtime=0)
    path.write_bytes(body)
    results = run_pipeline(spark, cfg, Window(), stages=("ingest", "refine", "curate"))
    ingest, refine = results["ingest"].reports["ingest.clickstream"], results["refine"].reports["refine.clickstream"]
    assert (ingest.files_taken, ingest.files_changed) == (1, 1)
    assert refine.balanced and refine.duplicates == 4 and refine.quarantined.get("id_conflict") == 1
    lake = Lake(cfg, spark)
    assert lake.read("silver.clickstream_events").count() == 5  # the first version's content stands
    assert lake.read("ops.quarantine").where("reason = 'id_conflict'").first().source_file.endswith("@v2")
    assert results["curate"].gate.passed
