"""A reader of the lake never loses a file: while refine, maintenance and an erasure (with its immediate vacuum) run
in other processes, a reader that registers (``lease.reading``, as ``rapport sql`` and ``timeline`` do) queries
the tables they rewrite in a loop and sees no error; the erasure waits for it and its proof still holds."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from jobs.config import Config
from jobs.generate import Params, generate
from jobs.lake import Lake
from jobs.runs import lease
from tests.lakes import PII_KEY

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # about a minute: make test-all
REPO = Path(__file__).resolve().parents[3]
TABLES = ("bronze.clickstream", "bronze.orders", "silver.clickstream_events", "silver.orders", "gold.customer_timeline")


def rapport(cfg: Config, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_LANDING_ROOT": cfg.landing_root,
           "RAPPORT_PII_KEY": PII_KEY, "PYTHONPATH": str(REPO)}
    env.pop("SPARK_REMOTE", None)
    return subprocess.run([sys.executable, "-m", "jobs.cli", *args], capture_output=True, text=True, env=env,
                          timeout=900, cwd=REPO)


def test_a_registered_reader_sees_no_error_through_refine_maintenance_and_erasure(spark, tmp_path):
    landing = tmp_path / "landing"
    generate(Params(customers=200, days=2, start=date(2026, 11, 1), seed=13), landing, workers=1, progress=False)
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(landing), pii_key=PII_KEY)
    first, rest = ("--from", "2026-11-01", "--to", "2026-11-02"), ("--from", "2026-11-02", "--to", "2026-11-07")
    for step in (("ingest", *first), ("refine", *first), ("curate",), ("ingest", *rest)):
        done = rapport(cfg, *step)
        assert done.returncode == 0, (step, done.stderr[-2000:])
    person = next(p for p in (json.loads(line) for f in sorted((landing / "_truth" / "persons").glob("*.gz"))
                              for line in gzip.open(f, "rt")) if p.get("email") and p.get("customer_id"))

    lake = Lake(cfg, spark)
    stop, reads, errors = threading.Event(), [], []

    def reader() -> None:
        while not stop.is_set():
            for name in TABLES:
                try:
                    with lease.reading(cfg, "test reader"):
                        df = lake.read(name)
                        # every data file is opened: a sum over a column of each row
                        reads.append(df.selectExpr(f"sum(length(cast({df.columns[0]} AS STRING)))").first()[0])
                except Exception as exc:  # what a person at `rapport sql` would see
                    errors.append(f"{name}: {str(exc).splitlines()[0][:300]}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        time.sleep(1)
        refined = rapport(cfg, "refine", *rest)
        maintained = subprocess.run([sys.executable, "-c", (
            "from jobs.config import Config; from jobs.maintenance import run; "
            f"print(run(None, Config(lake_root={cfg.lake_root!r})).files_removed)")],
            capture_output=True, text=True, timeout=600, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        erased = rapport(cfg, "privacy", "erase", "--email", person["email"], "--reason", "reader test")
    finally:
        stop.set()
        thread.join(timeout=300)
    assert refined.returncode == 0, refined.stderr[-2000:]
    assert maintained.returncode == 0, maintained.stderr[-2000:]
    assert erased.returncode == 0, erased.stderr[-2000:]
    assert "verified" in erased.stdout.lower(), erased.stdout[-2000:]
    print(f"reader: {len(reads)} queries through refine, maintenance and erasure, {len(errors)} errors")
    assert errors == [], errors[:5]
    assert len(reads) >= 2 * len(TABLES)  # the reader really read throughout
    assert "waits for" in erased.stderr and "test reader" in erased.stderr  # the vacuum waited for the reader
    assert lease.readers(cfg) == []  # nothing left registered
