"""The same jobs through SPARK_REMOTE (a separately started server) give the same silver as embedded."""

from __future__ import annotations

from datetime import date

import pytest

from jobs.config import Config
from jobs.engine import spark_session
from jobs.generate import Params, generate
from jobs.lake import Lake
from tests.lakes import PII_KEY, ingest_and_refine, table_rows

pytestmark = pytest.mark.integration
TABLES = ("clickstream_events", "social_interactions", "order_status_history", "orders", "order_lines",
          "identity_map", "sessions")


@pytest.mark.slow
def test_remote_engine_builds_the_same_silver(spark, served_engine, tmp_path):
    url, _ = served_engine
    landing = tmp_path / "landing"
    generate(Params(customers=400, days=2, start=date(2026, 11, 1), seed=3), landing, progress=False)
    embedded = Config(lake_root=str(tmp_path / "embedded"), landing_root=str(landing), pii_key=PII_KEY)
    remote = Config(lake_root=str(tmp_path / "remote"), landing_root=str(landing), pii_key=PII_KEY,
                    engine="remote", spark_remote=url)
    local_reports = ingest_and_refine(spark, embedded)
    with spark_session(remote) as remote_spark:
        remote_reports = ingest_and_refine(remote_spark, remote)
    for source in ("clickstream", "social", "orders"):
        assert remote_reports[source].balanced
        assert remote_reports[source].silver_rows == local_reports[source].silver_rows > 0
    for table in TABLES:
        assert table_rows(spark, Lake(remote).path(f"silver.{table}")) == table_rows(spark, Lake(embedded).path(f"silver.{table}")), table
