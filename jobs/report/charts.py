"""The report's charts: Vega-Lite specifications (Altair) rendered to SVG by vl-convert, so they show without a
script or a network. Colours from Okabe and Ito's palette, distinguishable with the common colour-vision
deficiencies; verdicts keep fixed colours wherever they appear."""

from __future__ import annotations

from typing import TYPE_CHECKING

from schemas.vocabulary import PLATFORMS

if TYPE_CHECKING:
    import pandas as pd

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
VERDICT_COLOURS = {"missing": "#D55E00", "stale": "#E69F00", "silent": "#56B4E9", "consistent": "#009E73",
                   "unscheduled": "#BBBBBB"}
FIX_VERDICTS = ("missing", "stale")  # a placement to fix today: its cell carries the word
STAGE_ORDER = ["prospect", "engaged", "customer", "repeat", "advocate", "at_risk", "lapsed"]
WIDTH = 520


def svg(chart) -> str:
    """The chart as an SVG element (no XML declaration), ready to inline."""
    import vl_convert as vlc

    out = vlc.vegalite_to_svg(chart.to_json())
    return out[out.index("<svg"):] if "<svg" in out else out


def _plain(df: "pd.DataFrame") -> "pd.DataFrame":
    """Decimals as floats and dates as ISO text: what Vega-Lite reads."""
    import decimal

    out = df.copy()
    for c in out.columns:
        if len(out) and isinstance(out[c].dropna().iloc[0] if out[c].notna().any() else None, decimal.Decimal):
            out[c] = out[c].astype(float)
        elif str(out[c].dtype).startswith(("datetime", "object")) and len(out) and hasattr(
                out[c].dropna().iloc[0] if out[c].notna().any() else None, "isoformat"):
            out[c] = out[c].map(lambda v: v.isoformat() if v is not None and hasattr(v, "isoformat") else v)
    return out


def _base():
    import altair as alt

    return alt


def trending(df: "pd.DataFrame") -> str:
    alt = _base()
    d = _plain(df)
    d["product"] = d["title"].fillna(d["product_id"]) + d["trending"].map(lambda t: " ▲" if t else "")
    long = d.melt(id_vars=["product", "row"], value_vars=["views_7d", "views_prev_7d"], var_name="week",
                  value_name="views")
    long["week"] = long["week"].map({"views_7d": "last 7 days", "views_prev_7d": "7 days before"})
    return svg(alt.Chart(long).mark_bar().encode(
        y=alt.Y("product:N", sort=alt.EncodingSortField("row"), title=None),
        yOffset=alt.YOffset("week:N", sort=["7 days before", "last 7 days"]),
        x=alt.X("views:Q", title="product views"),
        color=alt.Color("week:N", scale=alt.Scale(domain=["7 days before", "last 7 days"],
                                                  range=[OKABE_ITO[4], OKABE_ITO[0]]), title=None),
    ).properties(width=WIDTH, height=alt.Step(9), title="Trending products: views this week against the week before"))


def categories(df: "pd.DataFrame") -> str:
    alt = _base()
    d = _plain(df)
    long = d.melt(id_vars=["date", "category"], value_vars=["views", "orders"], var_name="measure", value_name="n")
    # eight colours: past eight categories the dash tells them apart too
    return svg(alt.Chart(long).mark_line(point=False).encode(
        x=alt.X("yearmonthdate(date):T", title=None, axis=alt.Axis(format="%b %d", tickCount="day")), y=alt.Y("n:Q", title=None),
        color=alt.Color("category:N", scale=alt.Scale(range=OKABE_ITO), title="category"),
        strokeDash=alt.StrokeDash("category:N", title="category"),
    ).properties(width=300, height=180).facet(
        column=alt.Column("measure:N", sort=["views", "orders"], title="What people look at, and what they buy"),
    ).resolve_scale(y="independent"))


def platforms_daily(df: "pd.DataFrame") -> str:
    alt = _base()
    d = _plain(df)
    return svg(alt.Chart(d).mark_line().encode(
        x=alt.X("yearmonthdate(date):T", title=None, axis=alt.Axis(format="%b %d", tickCount="day")), y=alt.Y("interactions:Q", title="interactions"),
        color=alt.Color("platform:N", scale=alt.Scale(domain=list(PLATFORMS), range=OKABE_ITO), title="platform"),
    ).properties(width=WIDTH, height=200, title="Social interactions per day"))


def platforms(df: "pd.DataFrame") -> str:
    alt = _base()
    d = _plain(df)
    names = {"visits": "site visits sent", "influenced_orders": "orders within 7 days of a touch",
             "influenced_store_orders": "of which in stores"}
    long = d.melt(id_vars=["platform"], value_vars=list(names), var_name="measure", value_name="n")
    long["measure"] = long["measure"].map(names)
    return svg(alt.Chart(long).mark_bar().encode(
        x=alt.X("platform:N", sort=list(PLATFORMS), title=None), xOffset=alt.XOffset("measure:N", sort=list(names.values())),
        y=alt.Y("n:Q", title=None),
        color=alt.Color("measure:N", scale=alt.Scale(domain=list(names.values()), range=OKABE_ITO[:3]), title=None),
    ).properties(width=WIDTH, height=200, title="What each network brings: visits and buyers"))


def campaign_matrix(df: "pd.DataFrame") -> str:
    alt = _base()
    d = _plain(df[["campaign_id", "platform", "consistency"]])
    base = alt.Chart(d).encode(x=alt.X("platform:N", sort=list(PLATFORMS), title=None),
                               y=alt.Y("campaign_id:N", title=None))
    cells = base.mark_rect(stroke="white", strokeWidth=2).encode(
        color=alt.Color("consistency:N", scale=alt.Scale(domain=list(VERDICT_COLOURS), range=list(VERDICT_COLOURS.values())),
                        title="verdict"))
    # the cells that need a fix say so in words; the others by colour (the table below names every verdict).
    # Drawing a word in each of 465 cells took 0.42 s of a 1 s report render
    text = base.transform_filter(alt.FieldOneOfPredicate("consistency", list(FIX_VERDICTS))).mark_text(
        fontSize=9).encode(text="consistency:N")
    return svg((cells + text).properties(width=WIDTH, height=alt.Step(22),
                                        title="Is the campaign message where it was scheduled?"))


def lifecycle(df: "pd.DataFrame") -> str:
    alt = _base()
    d = _plain(df)
    return svg(alt.Chart(d).mark_bar(color=OKABE_ITO[0]).encode(
        x=alt.X("lifecycle_stage:N", sort=STAGE_ORDER, title=None), y=alt.Y("customers:Q", title="customers"),
    ).properties(width=WIDTH, height=200, title="Customers by lifecycle stage"))


def risk(df: "pd.DataFrame") -> str:
    alt = _base()
    d = _plain(df)
    long = d.melt(id_vars=["week"], value_vars=["at_risk", "lapsed"], var_name="stage", value_name="count")
    return svg(alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("yearmonthdate(week):T", title="week ending", axis=alt.Axis(format="%b %d")), y=alt.Y("count:Q", title="buyers"),
        color=alt.Color("stage:N", scale=alt.Scale(domain=["at_risk", "lapsed"], range=[OKABE_ITO[1], OKABE_ITO[5]]),
                        title=None),
    ).properties(width=WIDTH, height=180, title="At-risk and lapsed buyers, week by week"))


def cohorts(df: "pd.DataFrame") -> str:
    alt = _base()
    d = _plain(df.groupby(["cohort", "channel"], as_index=False)[["buyers", "repeat"]].sum())
    d["repeat_rate"] = d["repeat"] / d["buyers"]
    return svg(alt.Chart(d).mark_bar().encode(
        x=alt.X("cohort:N", title="first purchase month"), xOffset="channel:N",
        y=alt.Y("repeat_rate:Q", axis=alt.Axis(format="%"), title="bought again"),
        color=alt.Color("channel:N", scale=alt.Scale(range=OKABE_ITO), title="acquired through"),
    ).properties(width=WIDTH, height=200, title="Repeat rate by monthly cohort and acquisition channel"))


def quarantine(df: "pd.DataFrame", landed: int) -> str:
    alt = _base()
    d = _plain(df)
    d["share"] = d["rows"] / max(1, landed)
    return svg(alt.Chart(d).mark_bar(color=OKABE_ITO[5]).encode(
        y=alt.Y("reason:N", sort="-x", title=None), x=alt.X("share:Q", axis=alt.Axis(format=".2%"),
                                                             title="share of landed records"),
    ).properties(width=WIDTH, height=alt.Step(14), title="Quarantined, by reason"))
