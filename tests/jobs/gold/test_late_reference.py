"""Reference extracts that land after the events they describe: incremental curate still equals a full rebuild."""

from __future__ import annotations

from datetime import date

import pytest

from jobs.config import Config
from jobs.generate import Params, generate
from jobs.lake import Lake
from tests.lakes import PII_KEY, curate, day_by_day, ingest_and_refine, table_rows

pytestmark = pytest.mark.integration
GOLD = ("customer_timeline", "customer_facts", "daily_product_trends", "campaign_performance")


@pytest.mark.slow
def test_late_campaign_posts_and_catalogue_attribute_what_came_before(spark, tmp_path):
    landing = tmp_path / "landing"
    params = Params(customers=800, days=3, start=date(2026, 11, 1), seed=9,
                    late_reference=(("campaign_posts", 2), ("products", 1)))
    generate(params, landing, workers=1, progress=False)
    assert (landing / "reference" / "campaign_posts" / "dt=2026-11-03").is_dir()  # two days after the events began
    daily = Config(lake_root=str(tmp_path / "daily"), landing_root=str(landing), pii_key=PII_KEY)
    day_by_day(spark, daily, params.start, params.days + 2)
    full = Config(lake_root=str(tmp_path / "full"), landing_root=str(landing), pii_key=PII_KEY)
    ingest_and_refine(spark, full, gates=False)
    curate(spark, full, gates=False, full=True)
    for table in GOLD:
        assert table_rows(spark, Lake(daily).path(f"gold.{table}")) == table_rows(spark, Lake(full).path(f"gold.{table}")), table
    timeline = Lake(daily, spark).read("gold.customer_timeline")
    assert timeline.where("channel = 'social' AND campaign IS NOT NULL AND occurred_date < DATE'2026-11-03'").count() > 0
    assert Lake(daily, spark).read("gold.daily_product_trends").where(
        "date = DATE'2026-11-01' AND title IS NOT NULL").count() > 0  # titles reached the days before the catalogue
