"""A run killed at any point (SIGKILL, after its N-th table write) loses and duplicates nothing once it is run
again; two runs started at once on one lake take turns and leave what one run leaves."""

from __future__ import annotations

import hashlib
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
from tests.lakes import PII_KEY, table_rows

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
LOGS = {"ops.runs", "ops.quality_results", "ops.quality_gates"}  # logs of attempts, by design
STAGES = ("ingest", "refine", "curate")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    landing = tmp_path_factory.mktemp("crash") / "landing"
    generate(Params(customers=150, days=2, start=date(2026, 11, 1), seed=5), landing, workers=1, progress=False)
    return landing


def rapport(lake: Path, landing: Path, *args: str, crash_after: int | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RAPPORT_LAKE_ROOT": str(lake),
           "RAPPORT_LANDING_ROOT": str(landing), "RAPPORT_PII_KEY": PII_KEY, "PYTHONPATH": str(REPO)}
    runner = ["-m", "tests.crashpoint", str(crash_after)] if crash_after else ["-m", "jobs.cli"]
    return subprocess.run([sys.executable, *runner, *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=REPO)


def fingerprint(spark, lake_root: Path) -> dict[str, str]:
    """A hash of every table's sorted rows (run ids and run times aside), per table."""
    lake = Lake(Config(lake_root=str(lake_root)), spark)
    return {t.qualified: hashlib.sha256(repr(table_rows(spark, lake.path(t))).encode()).hexdigest()
            for t in lake.existing() if t.qualified not in LOGS}


@pytest.fixture(scope="module")
def uninterrupted(spark, tiny, tmp_path_factory):
    lake = tmp_path_factory.mktemp("whole") / "lake"
    for stage in STAGES:
        assert rapport(lake, tiny, stage).returncode == 0
    return fingerprint(spark, lake)


def _killed_then_rerun(spark, tiny, tmp_path, kills: dict[str, tuple[int, ...]]) -> dict[str, str]:
    lake = tmp_path / "lake"
    for stage in STAGES:
        for n in kills.get(stage, ()):
            proc = rapport(lake, tiny, stage, crash_after=n)
            assert proc.returncode == -9, (stage, n, proc.returncode, proc.stderr[-2000:])  # it really was killed
        done = rapport(lake, tiny, stage)
        assert done.returncode == 0, (stage, done.stderr[-3000:])
    return fingerprint(spark, lake)


@pytest.mark.slow
def test_runs_killed_mid_write_leave_the_tables_an_uninterrupted_run_leaves(spark, tiny, uninterrupted, tmp_path):
    got = _killed_then_rerun(spark, tiny, tmp_path, {"ingest": (6,), "refine": (9,), "curate": (3,)})
    assert got == uninterrupted


@pytest.mark.slow
def test_killed_at_many_points(spark, tiny, uninterrupted, tmp_path):
    got = _killed_then_rerun(spark, tiny, tmp_path, {"ingest": (1, 3, 12, 20), "refine": (2, 5, 14, 22, 30),
                                                     "curate": (1, 2, 4, 6, 8)})
    assert got == uninterrupted


@pytest.mark.slow
def test_two_runs_at_once_take_turns(spark, tiny, uninterrupted, tmp_path):
    lake = tmp_path / "lake"
    assert rapport(lake, tiny, "ingest").returncode == 0
    for stage in ("refine", "curate"):  # started together on the same lake
        procs: list = []
        threads = [threading.Thread(target=lambda: procs.append(rapport(lake, tiny, stage))) for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.2)
        for t in threads:
            t.join()
        assert [p.returncode for p in procs] == [0, 0], [p.stderr[-2000:] for p in procs]
        assert any("waiting for the lake lease" in p.stderr for p in procs)  # one of them waited its turn
    assert fingerprint(spark, lake) == uninterrupted


def test_a_lease_left_by_a_killed_run_is_taken_over(tiny, tmp_path):
    import json
    import socket

    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "_lease.json").write_text(json.dumps({"owner": "refine killed", "pid": 2**22 + 12345,
                                                  "host": socket.gethostname(), "acquired": time.time()}))
    proc = rapport(lake, tiny, "ingest", "--source", "orders")
    assert proc.returncode == 0 and "taking over the lake lease of refine killed" in proc.stderr
    assert not (lake / "_lease.json").exists()
