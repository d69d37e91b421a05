"""The marketing report and the customer page: built from gold, opened in headless Chromium with no network,
every chart drawn, the numbers equal to the gold tables they come from, no personal data."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from jobs.lake import Lake
from jobs.pipeline.runner import run_step
from jobs.runs.window import Window
from jobs.pii.scrub import PATTERNS, scrub
from tests.lakes import PII_KEY

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[3]
SECTIONS = {"trends", "networks", "campaigns", "relationships", "quality"}


@pytest.fixture(scope="module")
def built(spark, refined, tmp_path_factory):
    """The report step run on a copy of the small lake (curated, gates passed): (config, report)."""
    cfg, _, _ = refined
    root = tmp_path_factory.mktemp("report")
    shutil.copytree(Lake(cfg).root, root / "lake")
    cfg = dataclasses.replace(cfg, lake_root=str(root / "lake"))
    return cfg, run_step(spark, cfg, "report", Window())


def chromium() -> str:
    from tests.browser import chromium_path

    return chromium_path()


def open_offline(uri: str, shot: Path) -> dict:
    """Open a page in headless Chromium with the network off: what it drew, said and asked for."""
    from playwright.sync_api import sync_playwright

    seen: dict = {"errors": [], "requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True, viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))
            page.on("request", lambda r: seen["requests"].append(r.url))
            page.goto(uri, wait_until="load")
            seen["charts"] = page.eval_on_selector_all(
                "section [data-chart]", """els => els.map(e => ({section: e.closest('section').dataset.section,
                    name: e.dataset.chart, marks: e.querySelectorAll('svg path, svg rect, svg line, svg circle, svg symbol').length,
                    words: e.querySelectorAll('svg text[aria-roledescription="text mark"]').length,
                    width: e.querySelector('svg') ? e.querySelector('svg').getBoundingClientRect().width : 0}))""")
            seen["tables"] = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('table[data-table]')]
                .map(t => [t.dataset.table, [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.innerText.trim()))]))""")
            seen["fixes"] = page.eval_on_selector_all("[data-list=fixes] li", "els => els.map(e => e.innerText)")
            seen["readings"] = page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('section[data-section]')]
                .map(s => [s.dataset.section, s.querySelector('.reading').innerText]))""")
            seen["text"] = page.inner_text("body")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    return seen


def number(cell: str) -> float:
    return float(re.sub(r"[^0-9.\-]", "", cell))


def test_the_report_renders_offline_with_every_chart_and_the_numbers_of_gold(spark, built, tmp_path):
    cfg, report = built
    assert Path(report.location).is_file() and report.location.endswith(f"_reports/{report.day}/index.html")
    seen = open_offline(Path(report.location).as_uri(), tmp_path / "report.png")
    assert seen["errors"] == []
    assert all(u.startswith(("file://", "data:")) for u in seen["requests"]), seen["requests"]
    assert {c["section"] for c in seen["charts"]} == SECTIONS
    drawn = {c["name"]: c["marks"] for c in seen["charts"]}
    assert all(c["marks"] >= 3 and c["width"] > 100 for c in seen["charts"]), drawn
    assert (tmp_path / "report.png").stat().st_size > 50_000  # a page with charts, not a blank one

    lake, tables, day = Lake(cfg, spark), seen["tables"], report.day
    since = day - timedelta(days=27)
    products = lake.read("gold.daily_product_trends").where(f"date = DATE'{day}'")
    top = products.orderBy(F.desc("trending"), F.asc_nulls_last("trend_rank"), F.desc("views_7d"), "product_id") \
        .limit(10).collect()
    assert [(r[1], r[3], number(r[4])) for r in tables["trending"]] == [
        (p.title or p.product_id, "▲ trending" if p.trending else "–", p.views_7d) for p in top]
    trending = products.where("trending").count()
    assert (f"{trending:,} product" if trending else "No product trending") in seen["readings"]["trends"]

    engagement = {r.platform: (r.i, r.v) for r in spark.sql(f"""
        SELECT platform, sum(interactions) AS i, sum(visits) AS v FROM delta.`{lake.path('gold.daily_platform_engagement')}`
        WHERE date BETWEEN DATE'{since}' AND DATE'{day}' GROUP BY platform""").collect()}
    assert {r[0]: (number(r[1]), number(r[2])) for r in tables["networks"]} == engagement

    campaigns = lake.read("gold.campaign_performance")
    assert len(seen["fixes"]) == campaigns.where("consistency IN ('missing', 'stale')").count() > 0
    # the matrix writes the verdict in the cells to fix only: the others are told by colour
    assert {c["name"]: c["words"] for c in seen["charts"]}["campaigns"] == len(seen["fixes"]) < campaigns.count()
    assert sorted((r[0], r[1], r[2]) for r in tables["campaigns"]) == sorted(
        (r.campaign_id, r.platform, r.consistency) for r in campaigns.collect())

    stages = {r.lifecycle_stage: r.c for r in lake.read("gold.customer_relationship").groupBy("lifecycle_stage")
              .agg({"*": "count"}).withColumnRenamed("count(1)", "c").collect()}
    assert {r[0]: number(r[1]) for r in tables["lifecycle"]} == stages
    assert f"{sum(stages.values()):,} customers" in seen["readings"]["relationships"]
    advocates = [r.customer_key for r in lake.read("gold.customer_relationship").where("advocacy > 0")
                 .orderBy(F.desc("advocacy"), F.desc("revenue"), "customer_key").limit(10).collect()]
    assert [r[0] for r in tables["advocates"]] == advocates

    landed = spark.sql(f"SELECT sum(lines) AS n FROM delta.`{lake.path('ops.ingest_log')}`").first().n
    assert f"of {landed:,} landed records" in seen["readings"]["quality"]
    gold_gate = {r[0]: r for r in tables["gates"]}["gold"]
    assert number(gold_gate[4]) == 0 and number(gold_gate[3]) == number(gold_gate[2]) > 0


def test_the_report_holds_no_personal_data_and_says_what_it_is(built):
    _, report = built
    text = Path(report.location).read_text()
    assert re.search(r"<script", text) is None  # nothing to run: the charts are drawn already
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", text)  # nothing fetched
    visible = re.sub(r"<style>.*?</style>|<svg.*?</svg>|<[^>]+>", " | ", text, flags=re.S)  # charts repeat the tables
    visible = re.sub(r"\d{4}-\d{2}-\d{2}( \d{2}:\d{2})?", "<date>", visible)  # a day and hour is not a phone number
    visible = re.sub(r"\bck_[0-9a-f]{16}\b", "<key>", visible)  # the pseudonymous keys the report may show
    found = [(marker, m.group(0)) for marker, pattern, _ in PATTERNS for m in re.finditer(pattern, visible)]
    assert found == []
    assert scrub(visible) == visible  # the privacy work's own scrubber finds nothing to mask either
    assert report.bytes == len(text.encode()) < 5_000_000


def test_the_step_publishes_to_the_export_bucket(spark, built, s3_config):
    from jobs.storage import s3_client

    cfg, _ = built
    s3, bucket = s3_config
    cfg = dataclasses.replace(cfg, export_uri=f"s3://{bucket}/exports", s3_endpoint_url=s3.s3_endpoint_url,
                              s3_region=s3.s3_region, aws_access_key_id="testing", aws_secret_access_key="testing")
    report = run_step(spark, cfg, "report", Window())
    assert report.published == f"s3://{bucket}/exports/reports/{report.day}/index.html"
    body = s3_client(cfg).get_object(Bucket=bucket, Key=f"exports/reports/{report.day}/index.html")["Body"].read()
    assert body == Path(report.location).read_bytes()


def test_the_customer_page_shows_the_timeline_in_order_with_milestones(maya, tmp_path):
    cfg, key = maya
    env = {**os.environ, "RAPPORT_LAKE_ROOT": cfg.lake_root, "RAPPORT_PII_KEY": PII_KEY, "PYTHONPATH": str(REPO)}
    env.pop("SPARK_REMOTE", None)
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "report", "customer", "MAYA@x.com"], capture_output=True,
                          text=True, env=env, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    target = Path(cfg.lake_root) / "_reports" / "customers" / f"{key}.html"
    assert f"Customer page: {target.resolve().as_uri()}" in proc.stdout
    html = target.read_text()
    assert "maya" not in html.lower()  # found by email, shown by key only
    rows = re.findall(r"<tr class='(milestone|)' data-seq='(\d+)'>(.*?)</tr>", html)
    assert [int(seq) for _, seq, _ in rows] == [1, 2, 3, 4]
    milestones = {int(seq): cells for kind, seq, cells in rows if kind}
    assert sorted(milestones) == [1, 3, 4]
    assert "first_visit" in milestones[1] and "first_social_touch" in milestones[3] and "first_purchase" in milestones[4]
    assert "instagram" in rows[2][2] and "store" in rows[3][2] and "4242" in rows[3][2]
    assert "$10.00" in html  # the revenue, as people write it
    shot = tmp_path / "customer.png"
    seen = open_offline(target.resolve().as_uri(), shot)
    assert seen["errors"] == [] and [r[0] for r in seen["tables"]["timeline"]] == ["1", "2", "3", "4"]


def test_rapport_report_without_gold_says_what_to_run(tmp_path):
    env = {**os.environ, "RAPPORT_LAKE_ROOT": str(tmp_path / "lake"), "PYTHONPATH": str(REPO)}
    env.pop("SPARK_REMOTE", None)
    proc = subprocess.run([sys.executable, "-m", "jobs.cli", "report"], capture_output=True, text=True, env=env,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 2 and "rapport curate" in proc.stderr, proc.stderr[-2000:]


@pytest.mark.parametrize("later", [120, 320])
def test_at_risk_and_lapsed_buyers_each_week_are_those_of_their_whole_timelines(spark, built, later):
    """The weekly at-risk and lapsed counts read only the days before the earliest week that can decide them; they
    equal the lifecycle rules applied to each buyer's whole timeline at each week's end (as of later dates too, so
    that buyers fall at risk and lapse)."""
    from jobs.gold.relationship import AT_RISK_DAYS, LAPSED_DAYS
    from jobs.report.data import WEEKS, _risk_weekly

    cfg, _ = built
    lake = Lake(cfg, spark)
    as_of = lake.read("gold.customer_relationship").agg(F.max("as_of")).first()[0] + timedelta(days=later)
    timeline = lake.read("gold.customer_timeline").select("customer_key", "occurred_date", "event_type").toPandas()
    first_buy = lake.read("gold.customer_relationship").where("first_purchase_at IS NOT NULL").select(
        "customer_key", F.to_date("first_purchase_at").alias("d")).toPandas().set_index("customer_key")["d"].to_dict()
    expected = []
    for i in reversed(range(WEEKS)):
        week = as_of - timedelta(days=7 * i)
        gaps = [(week - max(d for d in rows.occurred_date if d <= week)).days
                for key, rows in timeline.groupby("customer_key") if key in first_buy and first_buy[key] <= week]
        if gaps:
            expected.append((week, sum(g > LAPSED_DAYS for g in gaps), sum(AT_RISK_DAYS < g <= LAPSED_DAYS for g in gaps),
                             len(gaps)))
    got = _risk_weekly(spark, lake, as_of)
    assert [(r.week, r.lapsed, r.at_risk, r.buyers) for r in got.itertuples()] == expected
    assert expected and (later < 200 or sum(e[1] for e in expected) > 0) and (later != 120 or sum(e[2] for e in expected) > 0)


def test_the_latest_full_day_reads_the_newest_fortnight_and_is_what_every_date_gives(spark, built, monkeypatch):
    """The report's day from the newest dates' partitions (14; 2 here, of the small lake's 4) equals the rule applied
    to every date of the table, whatever day the run reached."""
    from statistics import median

    from jobs.report import data
    from jobs.report.data import _latest_full_day

    FORTNIGHT = 2
    monkeypatch.setattr(data, "FORTNIGHT", FORTNIGHT)
    cfg, _ = built
    lake = Lake(cfg, spark)
    trends = lake.read("gold.daily_product_trends")
    views = {r.date: r.v or 0 for r in trends.groupBy("date").agg(F.sum("views").alias("v")).collect()}
    assert len(views) > FORTNIGHT  # more dates than are read

    def by_rule(until):
        days = sorted((d for d in views if until is None or d <= until), reverse=True)[:FORTNIGHT]
        if not days:
            return None
        typical = median(views[d] for d in days)
        return next((d for d in days if views[d] >= typical / 2), days[0])

    dates = sorted(views)
    for until in (None, dates[-1], dates[len(dates) // 2], dates[3], dates[0] - timedelta(days=1)):
        assert _latest_full_day(lake, trends, until) == by_rule(until), until
