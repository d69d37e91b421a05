"""The generator: deterministic bytes, books that balance against the files, every defect, realistic shape."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from schemas.sources import EVENT_SOURCES as SOURCES

from jobs.generate import GeneratorError, Params, generate
from tests.conftest import SMALL
from tests.jobs.generate import oracle

pytestmark = pytest.mark.integration


def digest_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes_whatever_the_worker_count(tmp_path, small_landing):
    root, _ = small_landing
    again = generate(Params(**SMALL), tmp_path / "again", workers=2, progress=False)
    assert again["generator"]["shards"] == 3  # two processes really shared the work
    first, second = digest_tree(root), digest_tree(tmp_path / "again")
    assert len(first) > 100
    assert first == second


def test_another_seed_gives_other_data(tmp_path, small_landing):
    root, manifest = small_landing
    other = generate(Params(**{**SMALL, "seed": SMALL["seed"] + 1}), tmp_path / "other", progress=False)
    assert other["sources"]["clickstream"]["lines"] != manifest["sources"]["clickstream"]["lines"]
    crm = "reference/customers/dt=2026-11-01/hour=00/part-00000.json.gz"
    assert (root / crm).read_bytes() != (tmp_path / "other" / crm).read_bytes()


def test_manifest_file_entries_match_disk(small_landing):
    root, manifest = small_landing
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*.json.gz") if not p.relative_to(root).as_posix().startswith("_truth/")}
    listed = {f["path"] for f in manifest["files"]}
    assert on_disk == listed
    for f in manifest["files"]:
        data = (root / f["path"]).read_bytes()
        assert len(data) == f["bytes"], f["path"]
        assert hashlib.sha256(data).hexdigest() == f["sha256"], f["path"]
    assert json.loads((root / "manifest.json").read_text())["sources"] == manifest["sources"]


@pytest.mark.parametrize("source", SOURCES)
def test_manifest_counts_equal_an_independent_reading_of_the_files(small_landing, source):
    root, manifest = small_landing
    expected = manifest["sources"][source]
    got = oracle.read_landing(root, source)["counts"]
    assert got["files"] == expected["files"]
    assert got["valid"] == expected["valid"]
    assert got["late_arrivals"] == expected["late_arrivals"]
    assert got["exact_duplicates"] == expected["exact_duplicates"]
    assert got["id_conflicts"] == expected["id_conflicts"]
    assert got["truncated_members"] == expected["truncated_gzip"]["members"]
    for kind, n in expected["bad"].items():
        assert got[kind] == n, kind
    readable = expected["lines"] - expected["truncated_gzip"]["lines"]
    assert got["lines"] == readable
    assert got["outside_partition"] == 0  # every line lands in the hour it arrived


@pytest.mark.parametrize("source", SOURCES)
def test_every_kind_of_bad_input_is_present(small_landing, source):
    _, manifest = small_landing
    s = manifest["sources"][source]
    assert all(n > 0 for n in s["bad"].values()), s["bad"]
    assert s["exact_duplicates"] > 0
    assert s["late_arrivals"] > 0
    assert s["truncated_gzip"]["members"] > 0 and s["truncated_gzip"]["lines"] > 0
    if source == "clickstream":
        assert s["id_conflicts"] > 0
    bad_share = sum(s["bad"].values()) / s["lines"]
    assert bad_share < 0.05  # a controlled share, not a flood


def test_shape_is_realistic(small_landing):
    root, _ = small_landing
    clicks = [r for _, r in oracle.read_landing(root, "clickstream")["valid"]]
    social = [r for _, r in oracle.read_landing(root, "social")["valid"]]
    orders = [r for _, r in oracle.read_landing(root, "orders")["valid"]]
    truth = oracle.load_truth(root)

    # daily rhythm: the evening is far busier than the small hours
    hours = Counter(oracle.ts(r["receivedAt"]).hour for r in clicks)
    assert sum(hours[h] for h in (18, 19, 20)) > 3 * sum(hours[h] for h in (2, 3, 4))

    # skew: the busiest tenth of people make a large share of the activity
    person_of = {a: t["person"] for t in truth if t["person"] for a in t["anonymous_ids"]}
    per_person = sorted(Counter(person_of[r["anonymousId"]] for r in clicks if r["anonymousId"] in person_of).values(),
                        reverse=True)
    assert sum(per_person[: len(per_person) // 10]) > 0.35 * sum(per_person)

    # the Segment funnel and social login are all there
    events = Counter(r.get("event") for r in clicks)
    for name in ("Product Viewed", "Product Added", "Checkout Started", "Order Completed", "Signed In", "Product Shared"):
        assert events[name] > 0, name
    assert any(r.get("properties", {}).get("method") in oracle.PLATFORMS for r in clicks if r.get("event") == "Signed In")
    assert any((r["context"].get("campaign") or {}).get("medium") == "social" for r in clicks)

    # cross-device: a registered person identifies on two devices; a kiosk is shared by several users
    users_by_anon = oracle.by_key([r for r in clicks if r["type"] == "identify"], lambda r: r["anonymousId"])
    anons_by_user = oracle.by_key([r for r in clicks if r["type"] == "identify"], lambda r: r["userId"])
    assert any(len({r["anonymousId"] for r in rs}) >= 2 for rs in anons_by_user.values())
    kiosks = {a for t in truth if t["kind"] == "kiosk" for a in t["anonymous_ids"]}
    assert any(len({r["userId"] for r in users_by_anon.get(k, [])}) >= 2 for k in kiosks)

    # social: all eight platforms, reviews with ratings, and people known only through social
    assert {r["platform"] for r in social} == set(oracle.PLATFORMS)
    assert {r["rating"] for r in social if r["rating"] is not None} <= {1, 2, 3, 4, 5}
    social_only = {a["platform_user_id"] for t in truth if t["kind"] == "social_only" for a in t["social_accounts"]}
    assert sum(r["actor"]["id"] in social_only for r in social) > 0

    # orders: every channel, a lifecycle, and updates that overtake earlier ones
    assert {r["order"]["source_name"] for r in orders} >= {"web", "pos", "iphone", "android"}
    assert {r["topic"] for r in orders} >= {"orders/create", "orders/updated", "orders/paid", "orders/fulfilled",
                                             "orders/cancelled"}
    overtaken = 0
    for deliveries in oracle.by_key(orders, lambda r: r["order"]["id"]).values():
        by_arrival = sorted(deliveries, key=lambda r: r["received_at"])
        updated = [r["order"]["updated_at"] for r in by_arrival]
        overtaken += updated != sorted(updated)
    assert overtaken > 0


def test_refuses_to_mix_with_earlier_data_unless_told(tmp_path):
    params = Params(customers=200, days=1, start=date(2026, 11, 1))
    generate(params, tmp_path, progress=False)
    with pytest.raises(GeneratorError, match="--overwrite"):
        generate(params, tmp_path, progress=False)
    (tmp_path / "clickstream" / "stray.json.gz").write_bytes(b"")
    generate(params, tmp_path, overwrite=True, progress=False)
    assert not (tmp_path / "clickstream" / "stray.json.gz").exists()


@pytest.mark.parametrize("bad", [dict(customers=0), dict(days=0), dict(bad_rate=0.9), dict(shard_size=5)])
def test_rejects_impossible_parameters(tmp_path, bad):
    with pytest.raises(GeneratorError):
        generate(Params(**{**SMALL, **bad}), tmp_path, progress=False)


def test_cli_generate_prints_a_summary(tmp_path):
    out = tmp_path / "landing"
    proc = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "generate", "--customers", "300", "--days", "2", "--start", "2026-11-01",
         "--out", str(out), "--no-progress"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "clickstream" in proc.stdout and "manifest:" in proc.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert f"{manifest['sources']['orders']['lines']:,}" in proc.stdout
