"""The PII key stays in the process that holds it: equal hashes to the old SQL path, no key in any plan, log,
lake file, Data Docs page, export or error message."""

from __future__ import annotations

import hashlib
import hmac
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.config import Config
from jobs.pii import keyring
from tests.secrets import find_leaks, leak_forms

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]


def old_hmac_sql(column_sql: str, key: str) -> str:
    """The SQL path of Rapport before the keyring (the key's pads as hex literals): kept here to prove equality."""
    k = key.encode()
    if len(k) > 64:
        k = hashlib.sha256(k).digest()
    k = k.ljust(64, b"\0")
    ipad, opad = bytes(b ^ 0x36 for b in k).hex(), bytes(b ^ 0x5C for b in k).hex()
    value = f"cast(lower(trim({column_sql})) AS BINARY)"
    inner = f"unhex(sha2(concat(X'{ipad}', {value}), 256))"
    return f"CASE WHEN {column_sql} IS NULL OR trim({column_sql}) = '' THEN NULL ELSE sha2(concat(X'{opad}', {inner}), 256) END"


def texts(n: int, seed: int) -> list[str | None]:
    rnd = random.Random(seed)
    alphabet = "abcXYZ019 @.+-_\t\nÉéßİıΣσς日本🙂\u00a0\u200b'\\"
    out = [None, "", "   ", " A@B.co ", "+44 20 7946 0958", "İstanbul", "ΣΑΣ", "x" * 5000]
    out += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40))) for _ in range(n)]
    return out


@pytest.mark.parametrize("key", ["a-sixteen-char-key", "k" * 64, "a key longer than a SHA-256 block " * 3, "ключ-ключ-ключ-ключ"])
def test_hashes_equal_the_old_sql_path(spark, key):
    from pyspark.sql import functions as F

    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts(300, len(key)))], "i int, t string")
    both = df.select("i", "t", F.expr(old_hmac_sql("t", key)).alias("old"), F.expr(keyring.hmac_sql("t", key)).alias("new"),
                     F.expr(f"concat('h_', substr({old_hmac_sql('t', key)}, 1, 32))").alias("old_p"),
                     F.expr(keyring.pseudonym_sql("t", key)).alias("new_p"))
    rows = both.collect()
    assert len(rows) == 308
    assert sum(r.old is not None for r in rows) > 290  # the comparison is over real hashes, not NULLs
    assert [(r.i, r.old) for r in rows] == [(r.i, r.new) for r in rows]
    assert [(r.i, r.old_p) for r in rows] == [(r.i, r.new_p) for r in rows]  # pseudonyms (ids that held an email)
    # the Python digest (collector, erasure proof) is the same function
    for r in rows[:50]:
        if r.old is not None:
            norm = spark.sql(f"SELECT lower(trim({_lit(r.t)})) AS v").first().v
            assert keyring.digest(norm, keyring.hold(key)) == hmac.new(key.encode(), norm.encode(), hashlib.sha256).hexdigest() == r.old


def _lit(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def test_an_array_is_hashed_as_each_element(spark):
    from pyspark.sql import functions as F

    key = "an-array-test-key-0001"
    df = spark.createDataFrame([(["A@b.co", None, " ", "x"],), (None,), ([],)], "a array<string>")
    got = df.select(F.expr(keyring.hmac_all_sql("a", "e", "e", key)).alias("h")).collect()
    one = spark.createDataFrame([("A@b.co",), ("x",)], "t string").select(F.expr(keyring.hmac_sql("t", key)).alias("h")).collect()
    assert got[0].h == [one[0].h, None, None, one[1].h]
    assert got[1].h is None and got[2].h == []


def test_no_plan_carries_the_key(spark):
    """What the client sends (the serialised plan, pickled UDFs included) holds no form of the key."""
    from pyspark.sql import functions as F

    key = "plan-test-key-" + os.urandom(8).hex()
    df = spark.createDataFrame([("a@b.co",)], "t string")
    frame = df.select(F.expr(keyring.hmac_sql("t", key)).alias("h"),
                      F.expr(keyring.hmac_all_sql("array(t)", "x", "x", key)).alias("hs"))
    plan = frame._plan.to_proto(spark.client).SerializeToString()
    assert frame.first().h == hmac.new(key.encode(), b"a@b.co", hashlib.sha256).hexdigest()
    assert keyring.key_id(key).encode() in plan  # the plan names the key by its id ...
    assert [name for name, form in leak_forms(key).items() if form in plan] == []  # ... and holds nothing of it


def test_an_engine_without_the_key_says_how_to_give_it(spark):
    unknown = keyring.key_id("a key nobody holds 123")
    with pytest.raises(Exception) as err:
        spark.sql(f"SELECT rapport_hmac('x', '{unknown}') AS h").collect()
    assert "RAPPORT_PII_KEY" in str(err.value) and unknown in str(err.value)


def test_a_worker_reads_its_key_from_a_secret_file(tmp_path, monkeypatch):
    key = "file-key-" + os.urandom(8).hex()
    (tmp_path / "pii_key").write_text(key + "\n")
    (tmp_path / "none.yaml").write_text("{}\n")
    monkeypatch.delenv("RAPPORT_PII_KEY", raising=False)
    monkeypatch.setenv("RAPPORT_PII_KEY_FILE", str(tmp_path / "pii_key"))
    assert keyring.digest("x", keyring.key_id(key)) == hmac.new(key.encode(), b"x", hashlib.sha256).hexdigest()
    cfg = Config.load(env={"RAPPORT_PII_KEY_FILE": str(tmp_path / "pii_key")}, config_file=tmp_path / "none.yaml")
    assert cfg.pii_key == key and "RAPPORT_PII_KEY_FILE" in cfg.sources["pii_key"]


def test_no_trace_of_the_key_anywhere(tmp_path, s3_endpoint):
    """ingest, refine, curate, quality, export and privacy erase with the engine's log at trace level, and a command
    that fails on the key: no form of the key in any output, lake file, Data Docs page or export object."""
    from jobs.generate import Params, generate
    from jobs.storage import s3_client

    key = "leak-test-" + os.urandom(12).hex()
    landing = tmp_path / "landing"
    generate(Params(customers=150, days=1, start=__import__("datetime").date(2026, 11, 1), seed=11, shard_size=1000),
             landing, workers=1, progress=False)
    cfg = Config(s3_endpoint_url=s3_endpoint, s3_region="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing")
    s3_client(cfg).create_bucket(Bucket="leak-exports")
    env = {**os.environ, "RAPPORT_PII_KEY": key, "RAPPORT_LAKE_ROOT": str(tmp_path / "lake"),
           "RAPPORT_LANDING_ROOT": str(landing), "RUST_LOG": "trace", "RAPPORT_S3_ENDPOINT_URL": s3_endpoint,
           "RAPPORT_EXPORT_URI": "s3://leak-exports/rapport", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "RAPPORT_CONFIG": str(tmp_path / "none.yaml")}
    (tmp_path / "none.yaml").write_text("{}\n")
    person = __import__("json").loads(__import__("gzip").open(next((landing / "_truth" / "persons").glob("*.gz")), "rt").readline())
    logs = tmp_path / "logs"
    logs.mkdir()
    steps = [("ingest",), ("refine",), ("curate",), ("quality", "validate"), ("export",),
             ("privacy", "erase", "--email", person["email"], "--reason", "test"),
             ("sql", f"SELECT rapport_hmac('x', '{keyring.key_id('not the key 12345')}') AS h")]
    codes = {}
    for step in steps:
        with open(logs / f"{step[0]}-{len(codes)}.log", "wb") as out:
            codes[step] = subprocess.run([sys.executable, "-m", "jobs.cli", *step], cwd=REPO, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, timeout=600).returncode
    assert [c for s, c in codes.items() if s[0] != "sql"] == [0] * 6, {s[0]: c for s, c in codes.items()}
    assert codes[steps[-1]] != 0 and "RAPPORT_PII_KEY" in (logs / "sql-6.log").read_text(errors="replace")
    assert (logs / "refine-1.log").stat().st_size > 1_000_000  # the engine really logged at trace level
    exported = tmp_path / "exported"
    s3 = s3_client(cfg)
    for obj in s3.list_objects_v2(Bucket="leak-exports").get("Contents", []):
        target = exported / obj["Key"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket="leak-exports", Key=obj["Key"])["Body"].read())
    assert any(exported.rglob("_SUCCESS")) and any((tmp_path / "lake").rglob("*.html"))  # exports and Data Docs exist
    assert find_leaks(key, [logs, tmp_path / "lake", exported]) == []
