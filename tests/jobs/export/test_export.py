"""Exports against a real S3 API on loopback (moto's server), with a proxy in front when the network must misbehave."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from jobs.export.snapshot import MANIFEST, SUCCESS, FileToPublish, SnapshotStore, verify
from jobs.lake import Lake
from jobs.storage import s3_client
from jobs.pipeline.runner import run_stage
from jobs.runs.window import Window
from tests.s3proxy import S3Proxy


def publish(spark, cfg, datasets, **options):
    """The export stage (its gold-gate check included), quietly."""
    options.setdefault("progress", lambda m: None)
    return run_stage(spark, cfg, "export", Window(), datasets=datasets, **options).reports["export"]

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
ALL = ("interactions", "customer_features", "timelines")


@pytest.fixture
def target(refined, s3_config):
    """The refined lake with exports going to a fresh bucket: (config, boto3 client)."""
    cfg, _, _ = refined
    s3, bucket = s3_config
    cfg = dataclasses.replace(cfg, s3_endpoint_url=s3.s3_endpoint_url, s3_region=s3.s3_region,
                              aws_access_key_id="testing", aws_secret_access_key="testing",
                              export_uri=f"s3://{bucket}/recs")
    return cfg, s3_client(cfg)


def objects(client, uri: str) -> dict[str, bytes]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    return {k[len(prefix):].lstrip("/"): client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def rows_of(files: dict[str, bytes]) -> list[dict]:
    import pyarrow.parquet as pq

    out = []
    for name, body in sorted(files.items()):
        if name.endswith(".parquet"):
            out += pq.read_table(io.BytesIO(body)).to_pylist()
        elif name.endswith(".jsonl.gz"):
            out += [json.loads(line) for line in gzip.decompress(body).splitlines()]
    return out


def test_a_complete_snapshot_verifies_and_holds_what_gold_says(spark, target):
    cfg, client = target
    report = publish(spark, cfg, ALL)
    assert set(report.published) == set(ALL)
    lake = Lake(cfg, spark)
    for name, uri in report.published.items():
        result = verify(client, uri)
        assert result.ok, result.problems
        files = objects(client, uri)
        assert SUCCESS in files and MANIFEST in files
        manifest = json.loads(files[MANIFEST])
        assert manifest["rows"] == result.rows == report.rows[name] > 0
        for source, version in manifest["sources"].items():
            assert version == lake.version(source)

    features = rows_of(objects(client, report.published["customer_features"]))
    relationship = lake.read("gold.customer_relationship")
    assert sorted(r["customer_key"] for r in features) == sorted(r.customer_key for r in relationship.collect())

    timelines = rows_of(objects(client, report.published["timelines"]))
    timeline = lake.read("gold.customer_timeline")
    assert sum(len(t["events"]) for t in timelines) == timeline.count()
    assert all([e["seq"] for e in t["events"]] == list(range(1, len(t["events"]) + 1)) for t in timelines)


def test_interaction_weights_follow_the_documented_decay(spark, target):
    """Recompute the interactions export in plain Python from gold and the order lines."""
    cfg, client = target
    report = publish(spark, cfg, ("interactions",))
    got = {(r["customer_key"], r["product_id"]): r for r in rows_of(objects(client, report.published["interactions"]))}

    lake = Lake(cfg, spark)
    weights, half_life = cfg.interaction_weights(), cfg.export_half_life_days
    as_of = lake.read("gold.customer_relationship").agg({"as_of": "max"}).first()[0]
    kept = defaultdict(set)
    for line in lake.read("silver.order_lines").collect():
        if line.status not in ("cancelled", "refunded") and line.product_id:
            kept[str(line.order_id)].add(line.product_id)
    expected = defaultdict(lambda: [0.0, 0, 0, datetime.min])
    for row in lake.read("gold.customer_timeline").collect():
        signals = []
        if row.event_type in ("order_placed", "store_purchase"):
            signals = [("purchase", p) for p in kept.get(row.order_id, ())]
        elif row.product_id and row.event_type in weights and row.event_type != "purchase":
            signals = [(row.event_type, row.product_id)]
        for signal_, product in signals:
            age = max((as_of - row.occurred_at.date()).days, 0)
            e = expected[(row.customer_key, product)]
            e[0] += weights[signal_] * 0.5 ** (age / half_life)
            e[1] += 1
            e[2] += signal_ == "purchase"
            e[3] = max(e[3], row.occurred_at.replace(tzinfo=None))
    assert set(got) == set(expected)
    for key, (weight, signals, purchases, last) in expected.items():
        r = got[key]
        assert math.isclose(r["weight"], weight, abs_tol=1e-5) and (r["signals"], r["purchases"]) == (signals, purchases)
        assert r["last_interaction_at"].replace(tzinfo=None) == last.replace(tzinfo=None)
    assert sum(r["purchases"] for r in got.values()) > 0 and any(r["weight"] < r["signals"] for r in got.values())


def test_interactions_read_from_product_signals_equal_those_from_every_interaction(spark, target):
    """The export reads gold.product_signals (the customers' product pairs); computed from every interaction and the
    identity in force instead (what it does when the table cannot serve), the rows are the same."""
    from jobs.export import datasets as ds
    from jobs.export import run as export
    from schemas import views

    cfg, _ = target
    lake = Lake(cfg, spark)
    names = ds.DATASETS["interactions"].sources
    tables = export._pinned(spark, lake, set(names))
    as_of = tables["gold.customer_relationship"][1].agg({"as_of": "max"}).first()[0]
    scored_from = export._scored_from(cfg, tables["gold.product_signals"][1], as_of)
    assert scored_from is not None  # the table serves this lake
    read = export._build("interactions", cfg, tables, as_of)
    timeline = views.timeline_frame(tables["gold.interactions"][1], tables["silver.identity_map"][1])
    every = ds.interactions(timeline, tables["silver.order_lines"][1], cfg.interaction_weights(),
                            cfg.export_half_life_days, as_of)
    assert read.columns == every.columns and read.schema == every.schema

    def rows(df):
        return {(r.customer_key, r.product_id): r for r in df.collect()}

    a, b = rows(read), rows(every)
    assert set(a) == set(b) and len(a) > 100
    for key, r in a.items():
        assert math.isclose(r.weight, b[key].weight, abs_tol=2e-6), key
        assert (r.signals, r.purchases, r.last_interaction_at, r.as_of) == (
            b[key].signals, b[key].purchases, b[key].last_interaction_at, b[key].as_of), key
    # an as_of before a stored signal (its age counts as 0), or other settings: computed from every interaction
    assert export._scored_from(cfg, tables["gold.product_signals"][1], scored_from) is None
    other = dataclasses.replace(cfg, export_half_life_days=cfg.export_half_life_days + 1)
    assert export._scored_from(other, tables["gold.product_signals"][1], as_of) is None


def _pii(landing: Path) -> set[str]:
    """Every email, phone, social handle and IP address in the landing zone, from the generator's truth and the raw clicks."""
    values = set()
    for path in (landing / "_truth" / "persons").glob("*.json.gz"):
        for line in gzip.open(path, "rt"):
            p = json.loads(line)
            values |= {v for v in (p.get("email"), p.get("phone")) if v}
            for account in p.get("social_accounts") or []:
                values |= {account["handle"], account["handle"].lstrip("@")}
    for path in (landing / "clickstream").rglob("*.json.gz"):
        with gzip.open(path, "rt", errors="replace") as fh:
            try:
                values |= set(re.findall(r'"ip": ?"([0-9.]+)"', fh.read()))
            except (EOFError, OSError):  # the generator cuts one gzip member on purpose
                pass
    return values


def test_no_export_holds_an_email_phone_ip_or_social_handle(spark, target, refined):
    cfg, client = target
    _, manifest, _ = refined
    pii = _pii(Path(cfg.landing_root))
    assert len(pii) > 1000 and any("@" in v for v in pii) and any(v.count(".") == 3 for v in pii)
    report = publish(spark, cfg, ALL)
    for name, uri in report.published.items():
        rows = rows_of(objects(client, uri))
        text = json.dumps(rows, default=str)
        tokens = set(re.findall(r"[\w.+@-]+", text))
        assert not tokens & pii, f"{name} holds PII: {sorted(tokens & pii)[:5]}"
        columns = set(rows[0])
        assert not {c for c in columns if re.search(r"email|phone|\bip\b|handle|identifier", c)}, columns


def test_retention_deletes_only_old_snapshots(spark, target):
    cfg, client = target
    cfg = dataclasses.replace(cfg, export_keep=2)
    store = SnapshotStore(client, cfg.export_uri)
    bucket = store.bucket
    abandoned = "recs/customer_features/snapshot=2000-01-01T000000.000Z/part-00000.parquet"  # a killed publish
    in_progress = "recs/customer_features/snapshot=2999-01-01T000000.000Z/part-00000.parquet"
    unrelated = ["recs/README.txt", "recs/customer_features/notes.txt", "other/customer_features/x"]
    for key in (abandoned, in_progress, *unrelated):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    published = [publish(spark, cfg, ("customer_features",), force=True)
                 .published["customer_features"] for _ in range(3)]
    left = store.snapshots("customer_features")
    assert [s.prefix for s in left if s.complete] == [u.split(f"{bucket}/", 1)[1] for u in published[1:]]
    assert [s.id for s in left if not s.complete] == ["2999-01-01T000000.000Z"]  # may still be publishing
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert abandoned not in keys and in_progress in keys and set(unrelated) <= keys
    assert all(verify(client, u).ok for u in published[1:])
    assert not verify(client, published[0]).ok  # gone


def test_an_unchanged_gold_is_not_published_twice(spark, target):
    cfg, client = target
    first = publish(spark, cfg, ("customer_features",))
    again = publish(spark, cfg, ("customer_features",))
    assert again.published == {} and again.unchanged == first.published
    assert len(SnapshotStore(client, cfg.export_uri).snapshots("customer_features")) == 1


def test_a_publish_killed_midway_leaves_no_manifest_and_the_previous_snapshot_stands(spark, target):
    cfg, client = target
    previous = publish(spark, cfg, ("interactions",)).published["interactions"]
    # freeze the next publish right after its first data file reached S3, then kill it
    first_part = []

    def rule(method, path, n):
        if first_part:
            return "hold"
        if method in ("PUT", "POST") and "/part-" in path:
            first_part.append(path)
        return None

    with S3Proxy(cfg.s3_endpoint_url, rule) as proxy:
        env = {**os.environ, "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_PII_KEY": cfg.pii_key,
               "RAPPORT_EXPORT_URI": cfg.export_uri, "RAPPORT_S3_ENDPOINT_URL": proxy.url,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "PYTHONPATH": str(REPO)}
        env.pop("SPARK_REMOTE", None)
        proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "export", "--dataset", "interactions", "--force"],
                                env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            assert proxy.held.wait(240), proc.communicate(timeout=60)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    store = SnapshotStore(client, cfg.export_uri)
    snapshots = store.snapshots("interactions")
    assert len(snapshots) == 2 and not snapshots[-1].complete
    assert MANIFEST not in snapshots[-1].names and any(n.startswith("part-") for n in snapshots[-1].names)
    assert store.latest("interactions").prefix == previous.split(f"{store.bucket}/")[1]
    assert verify(client, previous).ok
    assert not verify(client, store.uri(snapshots[-1].prefix)).ok
    # the next publish prunes the abandoned one
    newest = publish(spark, cfg, ("interactions",), force=True).published["interactions"]
    assert [s.id for s in store.snapshots("interactions")] == [snapshots[0].id, newest.rstrip("/").rsplit("=", 1)[1]]


def test_a_failed_publish_removes_what_it_uploaded(spark, target):
    cfg, client = target
    cfg = dataclasses.replace(cfg, s3_max_attempts=2)
    staging = set(Path(Lake(cfg).root, "_staging").glob("export-*"))
    with S3Proxy(cfg.s3_endpoint_url, lambda method, path, n: 500 if path.endswith(MANIFEST) else None) as proxy:
        with pytest.raises(Exception, match="InternalError"):
            publish(spark, dataclasses.replace(cfg, s3_endpoint_url=proxy.url), ("customer_features",),
                       progress=lambda m: None)
    assert SnapshotStore(client, cfg.export_uri).snapshots("customer_features") == []
    assert set(Path(Lake(cfg).root, "_staging").glob("export-*")) == staging  # its staging removed too


def test_throttling_and_server_errors_are_retried(spark, target):
    cfg, client = target
    with S3Proxy(cfg.s3_endpoint_url, lambda method, path, n: (503, 500)[n % 2] if n % 3 == 1 else None) as proxy:
        report = publish(spark, dataclasses.replace(cfg, s3_endpoint_url=proxy.url), ("interactions", "customer_features"),
                            progress=lambda m: None)
        assert proxy.injected() >= 3
    assert all(verify(client, uri).ok for uri in report.published.values())


def test_large_files_upload_in_parts_and_verify(s3_config, tmp_path):
    import secrets

    cfg, bucket = s3_config
    client = s3_client(cfg)
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wt", compresslevel=1) as fh:
        for i in range(120_000):
            fh.write(json.dumps({"i": i, "noise": secrets.token_hex(48)}) + "\n")
    import hashlib

    data = path.read_bytes()
    assert len(data) > 6 * 1024 * 1024
    f = FileToPublish("part-00000.jsonl.gz", lambda: open(path, "rb"), len(data), 120_000, hashlib.sha256(data).hexdigest())
    manifest = {"dataset": "big", "rows": 120_000, "files": [{"path": f.name, "rows": f.rows, "bytes": f.size,
                                                               "sha256": f.sha256}], "schema": []}
    uri = SnapshotStore(client, f"s3://{bucket}/x", multipart_mb=5).publish("big", "2026-11-24T000000.000Z", [f], manifest)
    head = client.head_object(Bucket=bucket, Key=uri.split(f"{bucket}/")[1] + f.name)
    assert head["ETag"].strip('"').endswith("-2")  # uploaded as two parts
    assert verify(client, uri).ok


def test_export_refuses_after_a_failed_gold_gate(spark, target, tmp_path):
    from jobs.runs.guards import PromotionRefused
    from jobs.quality import gate
    from jobs.quality.gate import QualityGateError
    from tests.jobs.quality.test_gate import inject

    cfg, client = target
    shutil.copytree(Lake(cfg).root, tmp_path / "lake")
    cfg = dataclasses.replace(cfg, lake_root=str(tmp_path / "lake"))
    inject(spark, Lake(cfg, spark), "gold", "interactions", summary="'twice'")
    with pytest.raises(QualityGateError):
        gate.run(spark, cfg, Window(), layer="gold")
    with pytest.raises(PromotionRefused, match="gold.interactions: the gold gate failed"):
        publish(spark, cfg, ALL)
    assert "Contents" not in client.list_objects_v2(Bucket=SnapshotStore(client, cfg.export_uri).bucket)


def test_the_cli_publishes_lists_and_verifies(target, monkeypatch, capsys):
    from jobs.cli import main

    cfg, client = target
    for var, value in (("RAPPORT_LAKE_ROOT", cfg.lake_root), ("RAPPORT_PII_KEY", cfg.pii_key),
                       ("RAPPORT_EXPORT_URI", cfg.export_uri), ("RAPPORT_S3_ENDPOINT_URL", cfg.s3_endpoint_url),
                       ("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    assert main(["export", "--format", "jsonl"]) == 0
    out = capsys.readouterr().out
    uri = re.search(r"(s3://\S+/customer_features/snapshot=\S+)", out).group(1)
    assert main(["export", "list"]) == 0 and "current" in capsys.readouterr().out
    assert main(["export", "verify", uri]) == 0 and capsys.readouterr().out.startswith("OK ")
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    client.delete_object(Bucket=bucket, Key=key + SUCCESS)
    assert main(["export", "verify", uri]) == 1
    assert "incomplete" in capsys.readouterr().err
    monkeypatch.delenv("RAPPORT_EXPORT_URI")
    assert main(["export"]) == 2 and "RAPPORT_EXPORT_URI is not set" in capsys.readouterr().err
