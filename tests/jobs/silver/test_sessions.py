"""Sessions: inactivity, campaigns and the 24-hour cap cut them; bots stay out; conversions count."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from jobs.lake import Lake
from jobs.silver.sessions import sessionize

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 1, 9, tzinfo=timezone.utc)
COLUMNS = ("message_id string, anonymous_id string, user_id string, event_time timestamp, type string, event string, "
           "page_path string, referrer_host string, utm_source string, utm_medium string, utm_campaign string, "
           "utm_content string, device_class string, is_bot boolean, order_id string")


def ev(n, anon, minutes, type_="page", event=None, campaign=None, user=None, bot=False, order=None, path="/p",
       referrer="shop.example"):
    return (f"m{n:04d}", anon, user, T0 + timedelta(minutes=minutes), type_, event, path, referrer,
            "instagram" if campaign else None, "social" if campaign else None, campaign, None,
            "bot" if bot else "mobile", bot, order)


def test_cuts_and_conversions(spark):
    rows = [
        ev(1, "d1", 0, path="/home", referrer=None), ev(2, "d1", 10), ev(3, "d1", 39),  # one session, direct
        ev(4, "d1", 80),                                                          # 41 min later: new session
        ev(5, "d1", 85, campaign="spring"),                                       # new campaign: new session
        ev(6, "d1", 90, "track", "Order Completed", campaign="spring", user="u1", order="o1"),
        *[ev(10 + i, "d2", i * 25) for i in range(70)],                           # active for 29 hours: split at 24h
        *[ev(200 + i, "crawler", i, bot=True) for i in range(5)],                # bots never make sessions
        ev(300, "d3", 0, "track", "Product Viewed", user="u1"),                   # lands before its first page
        ev(301, "d3", 5, path="/second", user="u2"), ev(302, "d3", 6, path=None),
    ]
    s = {(r.anonymous_id, r.session_start): r for r in sessionize(spark.createDataFrame(rows, COLUMNS)).collect()}
    d1 = sorted((r for r in s.values() if r.anonymous_id == "d1"), key=lambda r: r.session_start)
    assert [r.events for r in d1] == [3, 1, 2]
    assert d1[0].landing_page == "/home" and d1[0].duration_seconds == 39 * 60 and not d1[0].converted
    assert d1[0].referrer_host is None and d1[1].referrer_host == "shop.example"  # the landing event's referrer
    assert d1[2].converted and d1[2].order_ids == ["o1"] and d1[2].utm_campaign == "spring" and d1[2].user_id == "u1"
    d2 = sorted((r for r in s.values() if r.anonymous_id == "d2"), key=lambda r: r.session_start)
    assert len(d2) == 2 and all(r.duration_seconds <= 24 * 3600 for r in d2) and sum(r.events for r in d2) == 70
    assert not any(r.anonymous_id == "crawler" for r in s.values())
    assert d1[0].order_ids == [] and d1[0].user_id is None  # no order and nobody signed in: empty, not unknown
    (d3,) = (r for r in s.values() if r.anonymous_id == "d3")
    assert (d3.events, d3.pages, d3.products_viewed, d3.landing_page, d3.user_id) == (3, 2, 1, "/second", "u2")


def test_sessions_on_generated_data_cover_every_human_event(spark, refined):
    cfg, _, _ = refined
    lake = Lake(cfg, spark)
    events = lake.read("silver.clickstream_events").where("NOT is_bot AND anonymous_id IS NOT NULL")
    sessions = lake.read("silver.sessions")
    assert sessions.selectExpr("sum(events)").first()[0] == events.count()
    assert sessions.where("converted").count() > 0
    assert sessions.where("duration_seconds > 86400 OR duration_seconds < 0").count() == 0
    assert sessions.count() == sessions.select("session_id").distinct().count()
