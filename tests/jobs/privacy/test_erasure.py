"""Right to erasure, with proof: a person with web, app, store and social history goes from every table, version,
quarantine row and export; others are untouched; aggregates drop by exactly their part; they stay out."""

from __future__ import annotations

import dataclasses
import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from jobs.lake import Lake
from jobs.pipeline.runner import run_stage, run_step
from jobs.runs.window import Window
from tests.lakes import PII_KEY

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def truth(landing: Path) -> list[dict]:
    return [json.loads(line) for p in sorted((landing / "_truth" / "persons").glob("*.gz"))
            for line in zlib.decompress(p.read_bytes(), 31).decode().splitlines()]


def pick(spark, cfg, landing: Path) -> tuple[dict, str]:
    """A person whose timeline has web, app, store and social rows, a CRM id and linked devices."""
    from pyspark.sql import functions as F

    from jobs.privacy.person import hash_identifiers

    lake = Lake(cfg, spark)
    people = [p for p in truth(landing) if p.get("email") and p.get("customer_id") and p.get("social_accounts")]
    hashes = {h: p for p in people for h in hash_identifiers(spark, cfg, [p["email"]])}
    im = lake.read("silver.identity_map").where(F.col("identifier").isin(list(hashes)))
    key_of = {r.identifier: r.customer_key for r in im.collect()}
    channels = {r.customer_key: set(r.c) for r in lake.read("gold.customer_timeline").groupBy("customer_key")
                .agg(F.collect_set("channel").alias("c")).where(F.col("customer_key").isin(list(key_of.values())))
                .collect()}
    devices = {r.customer_key: r.n for r in lake.read("silver.identity_map").where("id_type = 'anon'")
               .groupBy("customer_key").agg(F.count("*").alias("n")).collect()}
    ranked = sorted(((len(channels.get(k, ())), devices.get(k, 0), k, hashes[i]) for i, k in key_of.items()),
                    key=lambda t: (t[0], t[1], t[2]), reverse=True)
    n, devs, key, person = ranked[0]
    assert n == 4 and devs >= 2, ranked[:3]  # web, app, store and social; two or more devices
    return person, key


def raw_values(person: dict) -> list[str]:
    """What a scan must not find: the raw identifiers the landing zone holds for them."""
    out = [person["email"], person.get("phone")] + [a["handle"].lstrip("@") for a in person["social_accounts"]]
    out += [a["platform_user_id"] for a in person["social_accounts"] if len(a["platform_user_id"]) >= 8]
    return [v for v in out if v]


def scan(root: Path, needles: list[str], skip=("ops/privacy_requests", "ops/suppressions", "_privacy")) -> list[str]:
    """An independent scan: every Parquet and JSON file (and the rest, as bytes), for any needle."""
    import pyarrow.parquet as pq

    found = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or any(rel.startswith(s) for s in skip):
            continue
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        text = json.dumps(pq.read_table(path).to_pylist(), default=str) if path.suffix == ".parquet" else \
            data.decode("utf-8", "replace")
        found += [f"{rel}: {n[:12]}" for n in needles if n in text]
    return found


@pytest.fixture(scope="module")
def erased(spark, refined, s3_endpoint, tmp_path_factory):
    """A copy of the refined lake with exports published; one person erased through the CLI."""
    from jobs.config import Config
    from jobs.storage import s3_client

    cfg, _, _ = refined
    root = tmp_path_factory.mktemp("erase")
    shutil.copytree(Lake(cfg).root, root / "lake")
    shutil.copytree(cfg.landing_root, root / "landing")  # this module lands more files
    s3 = Config(s3_endpoint_url=s3_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
    s3_client(s3).create_bucket(Bucket="rapport-erase")
    cfg = dataclasses.replace(cfg, lake_root=str(root / "lake"), landing_root=str(root / "landing"), export_uri="s3://rapport-erase/exports",
                              s3_endpoint_url=s3_endpoint, aws_access_key_id="testing", aws_secret_access_key="testing")
    run_stage(spark, cfg, "export", Window(), datasets=("interactions", "customer_features", "timelines"),
              progress=lambda m: None)
    landing = Path(cfg.landing_root)
    person, key = pick(spark, cfg, landing)
    from jobs.report.build import customer_page

    run_step(spark, cfg, "report", Window())  # the marketing report, in the lake and the bucket
    page = Path(customer_page(spark, cfg, key))
    assert key in page.read_text()
    lake = Lake(cfg, spark)
    before = {name: lake.read(name).toPandas() for name in (
        "gold.customer_timeline", "gold.daily_product_trends", "gold.daily_platform_engagement",
        "gold.campaign_performance")}
    ids = [r.identifier for r in lake.read("silver.identity_map").where(f"customer_key = '{key}'").collect()]
    env = {**os.environ, "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_LANDING_ROOT": cfg.landing_root,
           "RAPPORT_PII_KEY": PII_KEY, "RAPPORT_EXPORT_URI": cfg.export_uri, "RAPPORT_S3_ENDPOINT_URL": s3_endpoint,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PYTHONPATH": str(REPO)}
    env.pop("SPARK_REMOTE", None)
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "-v", "privacy", "erase", "--email", person["email"],
                           "--reason", f"asked by {person['email']}"], capture_output=True, text=True, env=env,
                          timeout=900, cwd=REPO)
    return cfg, person, key, ids, before, proc


def test_the_request_is_verified_and_nothing_remains_anywhere(spark, erased):
    cfg, person, key, ids, _, proc = erased
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ": verified (erase)" in proc.stdout and "Proof: file://" in proc.stdout
    needles = raw_values(person) + [key] + [i.split(":", 1)[1] for i in ids if len(i.split(":", 1)[1]) >= 8]
    assert scan(Path(cfg.lake_root), needles) == []  # every file of the lake, referenced by a version or not
    bucket = Path(cfg.lake_root).parent / "bucket"
    from jobs.storage import s3_client

    client = s3_client(cfg)
    for page in client.get_paginator("list_objects_v2").paginate(Bucket="rapport-erase"):
        for obj in page.get("Contents", []):
            target = bucket / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file("rapport-erase", obj["Key"], str(target))
    assert scan(bucket, needles) == []  # and every object of the exports
    proof = json.loads((Path(cfg.lake_root) / "_privacy").glob("*/proof.json").__next__().read_text())
    assert proof["found"] == [] and proof["where"]["files"] > 100
    # the landing zone is not Rapport's to rewrite: the files that still hold them are listed for their owner
    at_source = {f["path"] for f in proof["at_source"]}
    assert at_source and all("/landing/" in "/" + p for p in at_source)
    assert "landing file(s) still hold the person" in proc.stdout
    # their customer page is gone; the reports were rebuilt, in the lake and the bucket
    assert not (Path(cfg.lake_root) / "_reports" / "customers" / f"{key}.html").exists()
    assert list((Path(cfg.lake_root) / "_reports").glob("*/index.html"))
    assert list(bucket.glob("exports/reports/*/index.html"))


def test_no_raw_identifier_in_the_request_the_commit_log_or_the_output(spark, erased):
    cfg, person, _, _, _, proc = erased
    lake = Lake(cfg, spark)
    request = json.dumps([r.asDict() for r in lake.read("ops.privacy_requests").collect()], default=str)
    assert person["email"] not in request and "asked by <email>" in request
    logs = list(Path(cfg.lake_root).rglob("_delta_log/*.json"))
    assert logs and not [p for p in logs if person["email"].encode() in p.read_bytes()]
    assert person["email"] not in proc.stdout + proc.stderr  # -v: the logs too


def test_everyone_else_is_untouched_and_aggregates_drop_by_exactly_their_part(spark, erased, refined):
    import pandas as pd

    cfg, person, key, ids, before, _ = erased
    lake = Lake(cfg, spark)
    after_tl = lake.read("gold.customer_timeline").toPandas()
    others = before["gold.customer_timeline"][before["gold.customer_timeline"].customer_key != key]
    cols = sorted(others.columns)
    assert others[cols].sort_values(cols).reset_index(drop=True).equals(
        after_tl[cols].sort_values(cols).reset_index(drop=True))
    mine = before["gold.customer_timeline"][before["gold.customer_timeline"].customer_key == key]
    # product views: theirs, per day and product, came off the trends
    theirs = mine[(mine.event_type == "product_view")].groupby(["occurred_date", "product_id"]).size()
    trends_before = before["gold.daily_product_trends"].set_index(["date", "product_id"])["views"]
    trends_after = lake.read("gold.daily_product_trends").toPandas().set_index(["date", "product_id"])["views"]
    assert len(theirs) > 0  # the loops below check something: they viewed products, acted on social, in campaigns
    for (d, p), n in theirs.items():
        assert trends_before[(d, p)] - trends_after.get((d, p), 0) == n, (d, p)
    social = mine[mine.channel == "social"].groupby(["occurred_date", "platform"]).size()
    assert len(social) > 0
    eng_b = before["gold.daily_platform_engagement"].set_index(["date", "platform"])["interactions"]
    eng_a = lake.read("gold.daily_platform_engagement").toPandas().set_index(["date", "platform"])["interactions"]
    for (d, p), n in social.items():
        assert eng_b[(d, p)] - eng_a.get((d, p), 0) == n, (d, p)
    camp = mine[(mine.channel == "social") & mine.campaign.notna()].groupby(["campaign", "platform"]).size()
    assert len(camp) > 0
    cp_b = before["gold.campaign_performance"].set_index(["campaign_id", "platform"])["interactions"]
    cp_a = lake.read("gold.campaign_performance").toPandas().set_index(["campaign_id", "platform"])["interactions"]
    for (c, p), n in camp.items():
        assert cp_b[(c, p)] - cp_a[(c, p)] == n
    assert len(pd.unique(mine.channel)) == 4
    refined_again = run_stage(spark, cfg, "refine", Window(), gate=False).reports
    assert all(refined_again[f"refine.{s}"].balanced for s in ("clickstream", "social", "orders"))
    assert refined_again["refine.clickstream"].erased > 0


def test_their_new_events_are_suppressed_and_appear_nowhere(spark, erased):
    from tests.handmade import T0, land, seg

    cfg, person, key, ids, _, _ = erased
    device = next(i.split(":", 1)[1] for i in ids if i.startswith("anon:"))
    later = T0.replace(day=20)
    event = seg(device, None, later, props={"product_id": "P000001"})
    event["messageId"] = "after-erasure-1"
    land(Path(cfg.landing_root), "clickstream", later, [event])
    window = Window(later.replace(minute=0), None)
    run_stage(spark, cfg, "ingest", window, gate=False)
    refine = run_stage(spark, cfg, "refine", window, gate=False).reports["refine.clickstream"]
    assert refine.suppressed == 1 and refine.silver_rows == 0 and refine.balanced
    lake = Lake(cfg, spark)
    assert lake.read("bronze.clickstream").where(f"value LIKE '%{device}%'").count() == 0
    assert scan(Path(cfg.lake_root), [device, "after-erasure-1"]) == []


@pytest.mark.slow
def test_a_request_killed_part_way_completes_on_the_next_run(spark, refined, tmp_path):
    from jobs.privacy.person import hash_identifiers

    cfg, _, _ = refined
    shutil.copytree(Lake(cfg).root, tmp_path / "lake")
    cfg = dataclasses.replace(cfg, lake_root=str(tmp_path / "lake"))
    person, key = pick(spark, cfg, Path(cfg.landing_root))
    env = {**os.environ, "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_LANDING_ROOT": cfg.landing_root,
           "RAPPORT_PII_KEY": PII_KEY, "PYTHONPATH": str(REPO)}
    env.pop("SPARK_REMOTE", None)
    killed = subprocess.run([sys.executable, "-m", "tests.crashpoint", "6", "privacy", "erase", "--email", person["email"]],
                            capture_output=True, text=True, env=env, timeout=900, cwd=REPO)
    assert killed.returncode == -9, killed.stderr[-2000:]
    again = subprocess.run([sys.executable, "-m", "jobs.cli", "privacy", "erase", "--later", "--email",
                            person["email"]], capture_output=True, text=True, env=env, timeout=900, cwd=REPO)
    assert again.returncode == 0  # a second request for the same person, to be processed with the first

    report = run_step(spark, cfg, "privacy", Window())
    assert set(report.processed.values()) == {"verified"} and len(report.processed) == 2
    lake = Lake(cfg, spark)
    assert lake.read("gold.customer_timeline").where(f"customer_key = '{key}'").count() == 0
    assert hash_identifiers(spark, cfg, [person["email"]])[0] not in {
        r.identifier for r in lake.read("silver.identity_map").collect()}
    logging.getLogger(__name__).info("erased after a kill: %s", report.processed)


def test_verify_finds_what_is_left_in_any_file_however_it_is_written(spark, erased):
    """The proof is only worth something if the scan finds the person: plant them, written differently, and
    the verification fails, naming each file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cfg, person, key, _, _, _ = erased
    request_id = json.loads(next((Path(cfg.lake_root) / "_privacy").glob("*/proof.json")).read_text())["request_id"]
    planted = Path(cfg.lake_root) / "gold" / "interactions"
    phone = person.get("phone")
    assert phone
    spaced = f"{phone[:3]} {phone[3:6]}-{phone[6:]}"  # written as a person would
    files = {
        planted / "notes.json.gz": gzip.compress(json.dumps({"note": f"write to {person['email'].upper()}"}).encode()),
        planted / "_delta_log" / "99999999999999999999.json": json.dumps({"commitInfo": {"k": key}}).encode(),
    }
    for path, body in files.items():
        path.write_bytes(body)
    pq.write_table(pa.table({"x": [f"call {spaced} now"]}), planted / "part-planted.parquet")
    env = {**os.environ, "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_LANDING_ROOT": cfg.landing_root,
           "RAPPORT_PII_KEY": PII_KEY, "PYTHONPATH": str(REPO)}
    env.pop("SPARK_REMOTE", None)
    try:
        proc = subprocess.run([sys.executable, "-m", "jobs.cli", "privacy", "verify", request_id], capture_output=True,
                              text=True, env=env, timeout=900, cwd=REPO)
    finally:
        for path in [*files, planted / "part-planted.parquet"]:
            path.unlink()
    assert proc.returncode == 1, proc.stdout + proc.stderr[-2000:]
    found = {line.split(": ", 1)[0].strip().rsplit("/", 1)[-1]: line for line in proc.stdout.splitlines()
             if line.startswith("  ")}
    assert "email" in found["notes.json.gz"] and "identifier" in found["99999999999999999999.json"]
    assert "phone" in found["part-planted.parquet"]
    assert person["email"] not in proc.stdout and phone not in proc.stdout  # fingerprints, not values
