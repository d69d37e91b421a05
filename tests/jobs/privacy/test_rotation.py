"""Key rotation: after `rotate-key` no stored value made with the old key remains in any file of the lake, every
timeline is intact, and later days hashed through the new chain join the people already there."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from jobs.config import Config, ConfigError
from jobs.lake import Lake
from schemas.tables import tables
from jobs.pii import keyring
from jobs.privacy import rotation
from tests.lakes import PII_KEY, curate, ingest_and_refine

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # about a minute: make test-all
NEW_KEY = "the-next-key-after-a-leak-0001"
DAY1, DAY2, DAY3 = (datetime(2026, 11, d, tzinfo=timezone.utc) for d in (1, 2, 8))
TOKEN = re.compile(rb"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])|h_[0-9a-f]{32}(?![0-9a-f])")


def keyed_values(spark, cfg) -> set[bytes]:
    """Every hash and pseudonym made with the lake's keys: the values of the registry's hashed and identifier
    columns (typed identifiers by their value) that look like one."""
    lake = Lake(cfg, spark)
    out = set()
    for t in lake.existing():
        for name in rotation.rewritten_columns(t, cfg):
            out |= {m.group(0) for r in rotation._values(lake.read(t), name).collect() if r.v
                    for m in TOKEN.finditer(r.v.split(":", 1)[-1].encode())}
    return out


def files_holding(root: Path, values: set[bytes]) -> dict[str, int]:
    """Files under the lake (data, logs, docs, records, any version) that hold one of the values, and how many."""
    found = {}
    for p in root.rglob("*"):
        if p.is_file():
            n = len({m.group(0) for m in TOKEN.finditer(p.read_bytes())} & values)
            if n:
                found[str(p.relative_to(root))] = n
    return found


def timeline(spark, cfg) -> list[tuple]:
    """gold.customer_timeline without the columns that hold identifiers (which a rotation rewraps)."""
    t = next(t for t in tables("gold") if t.qualified == "gold.customer_timeline")
    df = Lake(cfg, spark).read(t.qualified)
    cols = ["customer_key", "customer_bucket"] + sorted(
        c for c in df.columns if c not in set(t.pii("identifier")) | {"run_id", "customer_bucket"})
    return sorted(tuple(str(r[c]) for c in cols) for r in df.select(*cols).collect())


def people(rows: list[tuple]) -> list[tuple]:
    """Each customer's timeline rows without its key (and the bucket made from it): a customer keyed after the
    rotation gets a key made from wrapped identifiers, so customers are compared by what their timelines hold."""
    by_key: dict[str, list] = {}
    for r in rows:
        by_key.setdefault(r[0], []).append(r[2:])
    return sorted(tuple(sorted(v)) for v in by_key.values())


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    from jobs.generate import Params, generate

    root = tmp_path_factory.mktemp("rotation-landing")
    generate(Params(customers=300, days=2, start=date(2026, 11, 1), seed=21), root, workers=1, progress=False)
    return root


def test_a_rotation_leaves_no_old_hash_and_every_timeline_intact(spark, landing, tmp_path):
    cfg = Config(lake_root=str(tmp_path / "rotated"), landing_root=str(landing), pii_key=PII_KEY)
    plain = dataclasses.replace(cfg, lake_root=str(tmp_path / "plain"))
    for c in (cfg, plain):
        ingest_and_refine(spark, c, DAY1, DAY2)
        curate(spark, c)
    old = keyed_values(spark, cfg)
    before = timeline(spark, cfg)
    assert len(old) > 500 and len(before) > 100 and files_holding(tmp_path / "rotated", old)

    result = rotation.rotate(spark, dataclasses.replace(cfg, pii_key_next=NEW_KEY), progress=lambda *_: None)
    print(f"rotation: {result.old_values} old values, {len(result.tables)} tables, {sum(result.tables.values())} rows, "
          f"{result.files_removed} files removed, {result.seconds}s; left: {sum(result.old_values_left.values())}")
    assert result.proven and result.old_values > 500 and "silver.identity_map" in result.tables
    assert files_holding(tmp_path / "rotated", old) == {}  # no old value in any file, any version
    assert timeline(spark, cfg) == before  # every timeline row, customer keys included

    # the old configuration is refused; the new chain goes on, and the next days join the people already there
    with pytest.raises(ConfigError, match="key chain"):
        ingest_and_refine(spark, cfg, DAY2, DAY3)
    rotated = dataclasses.replace(cfg, pii_key=NEW_KEY, pii_key_retired=PII_KEY)
    for c in (rotated, plain):
        ingest_and_refine(spark, c, DAY2, DAY3)
        curate(spark, c)
    after, unrotated = timeline(spark, rotated), timeline(spark, plain)
    assert people(after) == people(unrotated)  # the same customers with the same rows as without a rotation
    known = {r[0] for r in before}
    assert [r for r in after if r[0] in known] == [r for r in unrotated if r[0] in known]  # earlier ones keep their keys
    email = b"someone@example.com"
    under_old = hmac.new(PII_KEY.encode(), email, hashlib.sha256).hexdigest()
    assert keyring.digest(email.decode(), keyring.hold(rotated.pii_keys())) == hmac.new(
        NEW_KEY.encode(), under_old.encode(), hashlib.sha256).hexdigest()  # the chain: HMAC(new, HMAC(old, x))
