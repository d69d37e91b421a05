"""``rapport report``: the marketing report from gold; ``rapport report customer``: one customer's page.

The report is written to ``<lake>/_reports/<date>/index.html`` (and ``<export uri>/reports/<date>/index.html``
when exports are set), one file with everything inline. The ``report`` step runs in ``rapport_curate`` after
the gold gate passed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from jobs.runs.window import Window
from jobs.report import charts, page
from jobs.report.data import LIFECYCLE, ReportData, gather
from jobs.report.page import esc, money, n, pct, share, when
from jobs.storage import is_s3

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
REPORTS = "_reports"
RENDER_THREADS = 2  # sections drawn at once (vl-convert runs outside the GIL)


@dataclass
class MarketingReport(Report):
    day: date | None = None
    location: str = ""
    bytes: int = 0
    seconds: float = 0.0
    published: str | None = None


def _trends(d: ReportData) -> tuple[str, str, str]:
    t, c, k = d.trending, d.categories, d.totals.get("trending", 0)
    if t is None or not len(t):
        reading, body = f"No product activity on {when(d.day)}.", ""
    else:
        top = t.iloc[0]
        if k:
            reading = (f"<strong>{k:,} product{'s' if k != 1 else ''} trending</strong> on {when(d.day)} (views up "
                       f"25% or more on the week before); {esc(top.title or top.product_id)} leads with "
                       f"{n(top.views_7d)} views in 7 days, {pct(top.growth_7d)}.")
        else:
            reading = (f"<strong>No product trending</strong> on {when(d.day)} (views up 25% or more on the week "
                       f"before); the most viewed is {esc(top.title or top.product_id)}, {n(top.views_7d)} views in "
                       "7 days.")
        body = page.chart(charts.trending(t), "trending") + page.table(
            [("#", True), ("product", False), ("category", False), ("trending", False), ("views 7d", True),
             ("growth", True), ("carts", True), ("orders", True), ("revenue", True), ("social mentions", True)],
            [[n(r.row), esc(r.title or r.product_id), esc(r.category), "▲ trending" if r.trending else "–",
              n(r.views_7d), pct(r.growth_7d), n(r.carts), n(r.orders), money(r.revenue, d.currency),
              n(r.social_mentions)] for r in t.itertuples()], "trending")
    if c is not None and len(c):
        by = c.groupby("category")[["views", "orders"]].sum()
        reading += (f" Over {c['date'].nunique()} days, {esc(by['views'].idxmax())} drew the most views "
                    f"({n(by['views'].max())}) and {esc(by['orders'].idxmax())} the most orders ({n(by['orders'].max())}).")
        body += page.chart(charts.categories(c), "categories") + page.table(
            [("category", False), ("views", True), ("orders", True), ("orders per 1,000 views", True)],
            [[esc(k), n(v.views), n(v.orders), n(1000 * v.orders / v.views if v.views else None)]
             for k, v in by.sort_values("views", ascending=False).iterrows()], "categories")
    return "trends", "Trends in shopping and purchasing", page.section("trends", "Trends in shopping and purchasing",
                                                                       reading, body)


def _networks(d: ReportData) -> tuple[str, str, str]:
    p = d.platforms
    if p is None or not len(p):
        return "networks", "Networks", page.section("networks", "Which networks bring people and buyers",
                                                   "No social interactions yet.", "")
    for col in ("influenced_orders", "influenced_store_orders"):
        if col not in p:
            p[col] = 0
    best = p.sort_values(["influenced_orders", "visits"], ascending=False).iloc[0]
    reading = (f"<strong>{esc(best.platform)}</strong> brought the most buyers: {n(best.influenced_orders)} orders "
               f"within 7 days of a touch there ({n(best.influenced_store_orders)} in stores), and "
               f"{n(best.visits)} site visits.")
    body = (page.chart(charts.platforms(p), "platforms") + page.chart(charts.platforms_daily(d.platforms_daily), "platforms-daily")
            + page.table([("platform", False), ("interactions", True), ("site visits sent", True),
                          ("visits that bought", True), ("orders within 7 days", True), ("of which in stores", True)],
                         [[esc(r.platform), n(r.interactions), n(r.visits), n(r.converted_visits), n(r.influenced_orders),
                           n(r.influenced_store_orders)] for r in p.itertuples()], "networks"))
    return "networks", "Networks", page.section("networks", "Which networks bring people and buyers", reading, body)


def _campaigns(d: ReportData) -> tuple[str, str, str]:
    c = d.campaigns
    if c is None or not len(c):
        return "campaigns", "Campaigns", page.section("campaigns", "Campaign message consistency",
                                                     "No campaigns have landed yet.", "")
    fixes = []
    for r in c.itertuples():
        if r.consistency == "missing":
            fixes.append(f"<span class='tag missing'>missing</span> Post message <strong>{esc(r.campaign_message)}"
                         f"</strong> of {esc(r.campaign_id)} on <strong>{esc(r.platform)}</strong>: scheduled, never posted.")
        elif r.consistency == "stale":
            fixes.append(f"<span class='tag stale'>stale</span> On <strong>{esc(r.platform)}</strong>, "
                         f"{esc(r.campaign_id)} still shows {esc(r.post_message_id)}: replace it with "
                         f"<strong>{esc(r.campaign_message)}</strong>.")
    silent = [r for r in c.itertuples() if r.consistency == "silent"]
    scheduled = c[c["scheduled"]]
    good = int((scheduled["consistency"].isin(["consistent", "silent"])).sum())
    reading = (f"<strong>{len(fixes)} fix{'es' if len(fixes) != 1 else ''} to make today.</strong> {good} of "
               f"{len(scheduled)} scheduled placements carry the current message; {len(silent)} of them drew no "
               "interaction yet.")
    body = ("<ol class='fixes' data-list='fixes'>" + "".join(f"<li>{f}</li>" for f in fixes) + "</ol>" if fixes else "") + page.chart(
        charts.campaign_matrix(c), "campaigns")
    live = c[c["days_live"].notna()] if "days_live" in c else c.iloc[0:0]
    body += page.table(
        [("campaign", False), ("platform", False), ("verdict", False), ("message live for (days)", True),
         ("interactions", True), ("site visits", True), ("orders within 7 days", True)],
        [[esc(r.campaign_id), esc(r.platform), f"<span class='tag {esc(r.consistency)}'>{esc(r.consistency)}</span>",
          n(r.days_live) if r.Index in live.index else "–", n(r.interactions), n(r.site_visits), n(r.orders_within_7d)]
         for r in c.itertuples()], "campaigns")
    return "campaigns", "Campaigns", page.section("campaigns", "Campaign message consistency and persistence",
                                                 reading, body)


def _relationships(d: ReportData) -> tuple[str, str, str]:
    lc = d.lifecycle.set_index("lifecycle_stage")["customers"] if len(d.lifecycle) else {}

    def count(stage: str) -> int:
        return int(lc.get(stage, 0)) if len(d.lifecycle) else 0

    buyers = sum(count(s) for s in ("customer", "repeat", "advocate", "at_risk", "lapsed"))
    reading = (f"<strong>{n(d.totals.get('customers', 0))} customers</strong>: {n(buyers)} bought, "
               f"{n(count('repeat') + count('advocate'))} came back, {n(count('advocate'))} advocate; "
               f"{n(count('at_risk'))} at risk and {n(count('lapsed'))} lapsed.")
    stages = [s for s in LIFECYCLE if s in set(d.lifecycle["lifecycle_stage"])] if len(d.lifecycle) else []
    by_stage = d.lifecycle.set_index("lifecycle_stage") if len(d.lifecycle) else None
    body = page.chart(charts.lifecycle(d.lifecycle), "lifecycle") + page.table(
        [("stage", False), ("customers", True), ("orders kept", True), ("revenue", True)],
        [[esc(s), n(by_stage.loc[s, "customers"]), n(by_stage.loc[s, "orders"]),
          money(by_stage.loc[s, "revenue"], d.currency)] for s in stages], "lifecycle")
    if len(d.risk_weekly):
        body += page.chart(charts.risk(d.risk_weekly), "risk") + page.table(
            [("week ending", False), ("buyers", True), ("at risk", True), ("lapsed", True)],
            [[when(r.week), n(r.buyers), n(r.at_risk), n(r.lapsed)] for r in d.risk_weekly.itertuples()], "risk")
    if len(d.cohorts):
        co = d.cohorts.groupby(["cohort", "channel"], as_index=False)[["buyers", "repeat"]].sum()
        co["rate"] = co["repeat"] / co["buyers"]
        top = co.sort_values(["rate", "buyers"], ascending=False).iloc[0]
        reading += f" Best repeat rate: the {esc(top.cohort)} cohort acquired via {esc(top.channel)} ({share(top.rate)})."
        body += page.chart(charts.cohorts(d.cohorts), "cohorts") + page.table(
            [("cohort", False), ("acquired via", False), ("platform", False), ("buyers", True), ("bought again", True)],
            [[esc(r.cohort), esc(r.channel), esc(r.platform or "–"), n(r.buyers), share(r.repeat / r.buyers)]
             for r in d.cohorts.itertuples()], "cohorts")
    if len(d.advocates):
        body += "<h3>Top advocates</h3>" + page.table(
            [("customer", False), ("preferred platform", False), ("advocacy", True), ("reviews", True),
             ("shares", True), ("orders", True), ("revenue", True)],
            [[f"<code>{esc(r.customer_key)}</code>", esc(r.preferred_platform or "–"), n(r.advocacy), n(r.reviews),
              n(r.shares), n(r.kept_orders), money(r.revenue, d.currency)] for r in d.advocates.itertuples()], "advocates")
    return "relationships", "Relationships", page.section("relationships", "Relationship health", reading, body)


def _quality(d: ReportData) -> tuple[str, str, str]:
    g = d.gates
    failed = int(g["failed"].sum()) if len(g) else 0
    landed, q = d.totals.get("landed", 0), d.totals.get("quarantined", 0)
    verdict = ("<span class='ok'>every gate passed</span>" if len(g) and not failed else
               f"<span class='bad'>{failed} table(s) failed their gate</span>" if failed else "no gate has run")
    reading = (f"Data as of <strong>{when(d.as_of)}</strong>; latest gates: {verdict}; {share(q / landed if landed else 0)} "
               f"of {n(landed)} landed records quarantined.")
    body = page.table([("layer", False), ("checked at", False), ("tables", True), ("passed", True), ("failed", True),
                       ("not applicable", True)],
                      [[esc(r.layer), when(r.checked_at), n(r.tables), n(r.passed), n(r.failed), n(r.not_applicable)]
                       for r in g.itertuples()], "gates")
    if len(d.quarantine):
        body += page.chart(charts.quarantine(d.quarantine, landed), "quarantine") + page.table(
            [("reason", False), ("records", True), ("share of landed", True)],
            [[esc(r.reason), n(r.rows), share(r.rows / landed if landed else 0)] for r in d.quarantine.itertuples()], "quarantine")
    return "quality", "Freshness and quality", page.section("quality", "Data freshness and quality", reading, body)


def render(d: ReportData) -> str:
    from concurrent.futures import ThreadPoolExecutor

    # most of a render is vl-convert drawing the charts (0.1 s each), which releases the GIL: the sections are
    # built two at a time
    with ThreadPoolExecutor(RENDER_THREADS) as pool:
        sections = list(pool.map(lambda build: build(d), (_trends, _networks, _campaigns, _relationships, _quality)))
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return page.document(f"Rapport: what moved on {when(d.day)}", f"Data as of {when(d.as_of)}; built {made} from "
                         "the gold tables. Every chart has its table below it.", sections,
                         "Rapport. Customers appear only by pseudonymous key; no email, phone, handle or address is "
                         "in this page.")


def _write(cfg: Config, uri: str, body: bytes) -> None:
    from jobs.storage import arrow_filesystem, local_root

    if not is_s3(uri):
        path = Path(local_root(uri))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return
    folder, _, name = uri.rpartition("/")
    fs, base = arrow_filesystem(cfg, folder)
    with fs.open_output_stream(f"{base}/{name}") as f:
        f.write(body)


def latest(cfg: Config) -> Path | None:
    """The newest report written under the lake (local lakes), or None."""
    from jobs.storage import local_root

    if is_s3(cfg.lake_root):
        return None
    found = sorted(Path(local_root(Lake(cfg).root), REPORTS).glob("[0-9]*/index.html"))
    return found[-1].resolve() if found else None


def location(cfg: Config, day: date | None) -> str:
    return f"{Lake(cfg).root}/{REPORTS}/{day or 'empty'}/index.html"


def run(spark: "SparkSession", cfg: Config, window: Window | None = None, *, run_id: str | None = None,
        day: date | None = None, out: str | None = None) -> MarketingReport:
    """Build the report (for ``day``, default the latest day with trends) and write it."""
    started = time.perf_counter()
    report = MarketingReport("report", run_id or str(RunId.new("report")), window or Window())
    until = (window.end - timedelta(microseconds=1)).date() if window is not None and window.end else None
    data = gather(spark, Lake(cfg, spark), day, cfg.report_currency, until)
    body = render(data).encode()
    report.day, report.bytes = data.day, len(body)
    report.location = out or location(cfg, data.day)
    _write(cfg, report.location, body)
    if cfg.export_uri and out is None:
        report.published = f"{cfg.export_uri.rstrip('/')}/reports/{data.day or 'empty'}/index.html"
        _write(cfg, report.published, body)
    report.seconds = round(time.perf_counter() - started, 2)
    log.info("report for %s: %s (%d bytes, %.1fs)", data.day, report.location, report.bytes, report.seconds)
    return report


def customer_page(spark: "SparkSession", cfg: Config, who: str, out: str | None = None) -> str:
    """One customer's timeline as a page: the relationship profile, then every interaction in order."""
    from jobs.serving.timeline import customer_key, profile_and_events

    key = customer_key(spark, cfg, who)
    profile, events = profile_and_events(spark, cfg, key)
    rows = events.select("seq", "occurred_at", "channel", "platform", "event_type", "summary", "milestone",
                         "is_milestone").collect()  # one customer's rows: what the page shows
    p = profile.asDict()
    facts = [("lifecycle stage", esc(p["lifecycle_stage"])), ("RFM", esc(p["rfm_segment"] or "–")),
             ("orders kept", n(p["kept_orders"])), ("revenue", money(p["revenue"], cfg.report_currency)),
             ("average order", money(p["average_order_value"], cfg.report_currency)), ("interactions", n(p["interactions"])),
             ("visits", n(p["visits"])), ("social interactions", n(p["social_interactions"])),
             ("preferred platform", esc(p["preferred_platform"] or "–")),
             ("acquired via", esc(" / ".join(x for x in (p["acquisition_channel"], p["acquisition_platform"]) if x))),
             ("first seen", when(p["first_seen"])), ("last seen", when(p["last_seen"])),
             ("first purchase", when(p["first_purchase_at"]))]
    profile_html = page.table([("", False), ("", False)], [[esc(k), v] for k, v in facts], "profile")
    body = ("<table class='timeline' data-table='timeline'><thead><tr><th>#</th><th>when</th><th>channel</th><th>platform</th>"
            "<th>what</th><th>milestone</th></tr></thead><tbody>" + "".join(
                f"<tr class='{'milestone' if r.is_milestone else ''}' data-seq='{r.seq}'><td class='n'>{r.seq}</td>"
                f"<td>{when(r.occurred_at)}</td><td><span class='channel'>{esc(r.channel)}</span></td>"
                f"<td>{esc(r.platform or '')}</td><td>{esc(r.summary)}</td>"
                f"<td>{'★ ' + esc(r.milestone) if r.is_milestone else ''}</td></tr>" for r in rows) + "</tbody></table>")
    doc = page.document(f"Customer {key}", f"{esc(p['lifecycle_stage'])} · {n(p['kept_orders'])} orders · "
                        f"{n(p['interactions'])} interactions · as of {when(p['as_of'])}",
                        [("profile", "Profile", page.section("profile", "Relationship profile", "", profile_html)),
                         ("timeline", "Timeline", page.section("timeline", "Timeline", f"{len(rows):,} interactions, "
                                                               "oldest first; milestones highlighted.", body))],
                        "Rapport. The customer appears by pseudonymous key only.")
    target = out or f"{Lake(cfg).root}/{REPORTS}/customers/{key}.html"
    _write(cfg, target, doc.encode())
    return target
