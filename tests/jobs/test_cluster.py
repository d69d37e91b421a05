"""The job code on a multi-worker engine: the chain run by the CLI with Sail in ``local-cluster`` mode (a driver
and workers in one process, exchanging shuffle data over Arrow Flight, the Python functions of ingest run by the
workers) gives the same silver and gold as the default local mode."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from jobs.config import Config
from jobs.lake import Lake
from schemas.tables import tables
from tests.lakes import PII_KEY, curate, ingest_and_refine, table_rows

pytestmark = [pytest.mark.integration, pytest.mark.cluster]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def landing(tmp_path_factory):
    from jobs.generate import Params, generate

    root = tmp_path_factory.mktemp("cluster-landing")
    generate(Params(customers=300, days=2, start=date(2026, 11, 1), seed=5), root, progress=False)
    return root


def test_the_chain_on_a_local_cluster_gives_the_tables_of_local_mode(spark, landing, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAIL_", "SPARK_REMOTE"))}
    env.update(SAIL_MODE="local-cluster", RAPPORT_LAKE_ROOT=str(tmp_path / "cluster"), RAPPORT_LANDING_ROOT=str(landing),
               RAPPORT_PII_KEY=PII_KEY, PYTHONPATH=str(REPO),
               # the workers' servers log each batch of tasks they are sent: proof that workers ran the work
               RUST_LOG="warn,sail_execution::worker::server=debug,sail_execution::worker::actor=debug")
    for command in (["ingest"], ["refine"], ["curate", "--full"]):  # each with its gate
        proc = subprocess.run([sys.executable, "-m", "jobs.cli", *command], capture_output=True, text=True, env=env,
                              timeout=900, cwd=REPO)
        assert proc.returncode == 0, f"{command}: {proc.stderr[-3000:]}"
        workers = {line.split("worker ")[1].split()[0] for line in proc.stderr.splitlines() if "server is ready" in line}
        assert len(workers) >= 1 and proc.stderr.count("RunTaskBatchRequest") >= 10, (command, proc.stderr[-2000:])
    local = Config(lake_root=str(tmp_path / "local"), landing_root=str(landing), pii_key=PII_KEY)
    ingest_and_refine(spark, local)
    curate(spark, local, full=True)
    cluster = Config(lake_root=str(tmp_path / "cluster"), landing_root=str(landing), pii_key=PII_KEY)
    compared = 0
    for t in tables("silver") + tables("gold"):
        here, there = Lake(local).path(t.qualified), Lake(cluster).path(t.qualified)
        if not Lake(local, spark).exists(t.qualified):
            assert not Lake(cluster, spark).exists(t.qualified), t.qualified
            continue
        assert table_rows(spark, there) == table_rows(spark, here), t.qualified
        compared += 1
    assert compared >= 12
    gates = Lake(cluster, spark).read("ops.quality_gates").groupBy("layer").agg({"*": "count"}).collect()
    assert {r.layer for r in gates} == {"bronze", "silver", "gold"}
