"""What an incremental curate must rebuild: the customers, dates and sessions a window touched, found by comparing
``silver.identity_map`` and ``silver.sessions`` with the versions the last successful curate read (``ops.runs``), and
the reference rows that changed since (``jobs.gold.curate`` writes; the contract is described there)."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import TYPE_CHECKING

from jobs.gold import timeline
from jobs.lake import Lake, earliest
from jobs.runs.window import Window

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from jobs.gold.curate import CurateReport

log = logging.getLogger(__name__)


REFERENCE = {"silver.campaign_posts": ("platform", "post_id", "campaign_id"),
             "silver.products": ("product_id", "title", "category")}
READ_SINCE = ("silver.identity_map", "silver.sessions")  # what the next run compares against to find moved customers
RECUT_DAYS = 2  # refine cuts sessions anew from the day before the window's earliest event; one more to be safe


def _version_then(lake: Lake, name: str, previous: dict[str, int] | None) -> "DataFrame | None":
    """``name`` as the last successful curate read it, or None when that is not known or no longer readable."""
    before = (previous or {}).get(name)
    if before is None or before < 0 or not lake.exists(name) or before > (lake.version(name) or 0):
        return None
    try:
        then = lake.read(name, version=before)
        then.limit(1).count()
    except Exception:  # that version was vacuumed: the caller reads more (the timeline, or every row)
        return None
    return then


def _moved_identities(identity: "DataFrame", then: "DataFrame", facts: "DataFrame", since: date | None) -> "DataFrame":
    """(customer_key, from_date) on either side of every identifier whose key or shared flag changed since ``then``
    (appeared and disappeared identifiers included): proportional to the identity map, never to the events.

    From when each key's timeline can change: a key that loses an identifier, from its first interaction (the
    identifier's rows may be anywhere in its history); a key that gains one, from the first interaction of the key
    that held it (the older key survives a merge, so the survivor's history before the younger one began stays), or
    from ``since`` for an identifier seen for the first time; NULL (its whole history, from silver) for one that was
    shared, whose rows were on no timeline."""
    from pyspark.sql import functions as F

    a = then.select("identifier", F.col("customer_key").alias("old_key"), F.col("is_shared").alias("old_shared"))
    b = identity.select("identifier", F.col("customer_key").alias("new_key"), F.col("is_shared").alias("new_shared"))
    first = facts.select("customer_key", F.to_date("first_seen").alias("first_date"))
    changed = (a.join(b, "identifier", "full_outer")
               .where("old_key IS NULL OR new_key IS NULL OR old_key <> new_key OR old_shared <> new_shared")
               .join(first.select(F.col("customer_key").alias("old_key"), F.col("first_date").alias("old_first")),
                     "old_key", "left"))
    since_sql = "CAST(NULL AS DATE)" if since is None else f"DATE'{since}'"
    lose = changed.where("old_key IS NOT NULL AND NOT old_shared AND old_first IS NOT NULL").select(
        F.col("old_key").alias("customer_key"), F.col("old_first").alias("from_date"))
    gain = changed.where("new_key IS NOT NULL AND NOT new_shared").selectExpr(
        "new_key AS customer_key",
        f"CASE WHEN old_key IS NULL THEN {since_sql} WHEN NOT old_shared THEN coalesce(old_first, {since_sql}) END "
        "AS from_date")
    return lose.unionByName(gain)


def _window_since(lake: Lake, window: Window) -> date | None:
    """The earliest date the window can change a timeline from: its rows' earliest date, less the days before it
    that refine cuts sessions anew. The window's first day when it brought no rows; None when it is unbounded."""
    from pyspark.sql import functions as F

    lows = [lake.read(f"silver.{name}").where(window.sql()).agg(F.min("event_date")).first()[0]  # one value each
            for name in ("clickstream_events", "social_interactions", "order_status_history")
            if lake.exists(f"silver.{name}")]
    lows = [d for d in lows if d is not None]
    if lows:
        return min(lows) - timedelta(days=RECUT_DAYS)
    return None if window.start is None else window.start.date() - timedelta(days=RECUT_DAYS)


def _earliest(keys: "DataFrame") -> "DataFrame":
    """One row per key with its earliest ``from_date``, NULL when any says its whole history."""
    return keys.groupBy("customer_key").agg(earliest().alias("from_date"))


def _touched_keys(lake: Lake, identity: "DataFrame", window: Window, since: date | None,
                  previous: dict[str, int] | None = None) -> "DataFrame":
    """(customer_key, from_date): the keys with new silver rows in the window, from ``since``, plus the keys whose
    identifiers moved, from when their timelines can have changed (``_moved_identities``).

    What moved is found from the identity map and sessions as the last successful curate read them (their Delta
    versions, recorded with its run), so a day's curate does not scan the timeline; when those versions are not
    known (a lake curated by an earlier release) or were vacuumed, the timeline is compared instead, and the keys
    found that way are rebuilt whole."""
    from pyspark.sql import functions as F

    where = window.sql()
    from_since = F.lit(since).cast("date").alias("from_date")
    # every event, not only timeline events: any of them can change a session
    ev = lake.read_or_empty("silver.clickstream_events").where(f"{where} AND NOT is_bot")
    ids = ev.selectExpr("concat('anon:', anonymous_id) AS identifier").unionByName(
        ev.where("user_id IS NOT NULL").selectExpr("concat('user:', user_id) AS identifier"))
    for table, to_rows in (("social_interactions", timeline.social_rows), ("order_status_history", timeline.order_rows)):
        ids = ids.unionByName(to_rows(lake.read_or_empty(f"silver.{table}").where(where)).select("identifier"))
    keys = ids.distinct().join(identity.where("NOT is_shared"), "identifier").select("customer_key", from_since)
    identity_then = _version_then(lake, "silver.identity_map", previous)
    sessions_then = _version_then(lake, "silver.sessions", previous)
    if identity_then is not None and (sessions_then is not None or not lake.exists("silver.sessions")):
        facts = lake.read_or_empty("gold.customer_facts")
        keys = keys.unionByName(_moved_identities(identity, identity_then, facts, since))
        recut = _recut_since(lake, identity, where, sessions_then)
        return keys if recut is None else keys.unionByName(recut.select("customer_key", from_since))
    whole = F.lit(None).cast("date").alias("from_date")
    if lake.exists("gold.customer_timeline"):
        built = lake.read("gold.customer_timeline").select("identifier", F.col("customer_key").alias("built_key")).distinct()
        now = identity.select("identifier", "customer_key", "is_shared")
        moved = built.join(now, "identifier", "left").where(
            "customer_key IS NULL OR customer_key <> built_key OR is_shared")
        keys = (keys.unionByName(moved.select(F.col("built_key").alias("customer_key"), whole))
                .unionByName(moved.where("customer_key IS NOT NULL AND NOT is_shared").select("customer_key", whole)))
        recut = _recut_sessions(lake, identity, where)
        if recut is not None:
            keys = keys.unionByName(recut.select("customer_key", whole))
    return keys


def touched(lake: Lake, identity: "DataFrame", window: Window, previous: dict[str, int] | None,
             report: CurateReport) -> "DataFrame":
    """The touched keys with the date each one's timeline is rebuilt from (NULL: whole), checkpointed and recorded
    as the run's intent before any gold write; the report gets how many, from when, and how many whole."""
    from pyspark.sql import functions as F

    keys = _touched_keys(lake, identity, window, _window_since(lake, window), previous)
    posts = changed(lake, "silver.campaign_posts", previous)
    if posts is not None:  # late or changed campaign posts re-attribute the interactions on them
        keys = keys.unionByName(_keys_of_changed_posts(lake, identity, posts))
    if lake.exists("ops.curate_intents"):  # what a run killed half-way set out to rebuild: whole
        keys = keys.unionByName(lake.read("ops.curate_intents").select("customer_key",
                                                                       F.lit(None).cast("date").alias("from_date")))
    # fixed now: evaluated after the timeline is rewritten, it would no longer see the keys that moved
    keys = lake.checkpoint(_earliest(keys), report.run_id, "touched-keys")
    summary = keys.agg(F.count("*").alias("n"), F.count("from_date").alias("dated"),
                       F.min("from_date").alias("lo")).first()  # counts
    report.customers_rebuilt, report.rebuilt_whole = summary.n, summary.n - summary.dated
    report.rebuilt_from = summary.lo
    # the intent, recorded before any gold write: a run killed from here on leaves it to the next run
    lake.append("ops.curate_intents", keys.select("customer_key", F.lit(report.run_id).alias("run_id"),
                                                  F.current_timestamp().alias("recorded_at")))
    return keys


def _session_dates(lake: Lake, where: str) -> str | None:
    """The session dates refine recut for the window's events (their span, 2 days before and 1 after)."""
    span = lake.read("silver.clickstream_events").where(where).selectExpr("min(event_date) AS lo",
                                                                            "max(event_date) AS hi").first()
    if span.lo is None:
        return None
    return f"BETWEEN DATE'{span.lo - timedelta(days=RECUT_DAYS)}' AND DATE'{span.hi + timedelta(days=1)}'"


def _recut_since(lake: Lake, identity: "DataFrame", where: str, then: "DataFrame | None") -> "DataFrame | None":
    """Keys of the customers on either side of a session that changed since the last curate read ``silver.sessions``
    (``then``), on the dates refine recut: both versions are read for those dates only."""
    from pyspark.sql import functions as F

    if then is None or not lake.exists("silver.clickstream_events"):
        return None
    dates = _session_dates(lake, where)
    if dates is None:
        return None
    now = timeline.session_rows(lake.read("silver.sessions").where(f"session_date {dates}")).select("source_key", "identifier")
    before = timeline.session_rows(then.where(f"session_date {dates}")).select("source_key", "identifier")
    changed = now.exceptAll(before).unionByName(before.exceptAll(now)).select("identifier").distinct()
    return changed.join(identity.where("NOT is_shared"), "identifier").select("customer_key")


def _recut_sessions(lake: Lake, identity: "DataFrame", where: str) -> "DataFrame | None":
    """Keys of the customers on either side of a session that changed hands or was cut anew.

    Refine recomputes every device's sessions on the dates the window's events touched, so a session
    can change its user (someone else logged in later in it), split or merge while its old customer
    had no event in the window. Compares the timeline's session rows with silver's on those dates.
    """
    from pyspark.sql import functions as F

    if not (lake.exists("silver.clickstream_events") and lake.exists("silver.sessions")):
        return None
    dates = _session_dates(lake, where)
    if dates is None:
        return None
    now = (timeline.session_rows(lake.read("silver.sessions").where(f"session_date {dates}"))
           .select("source_key", F.col("identifier").alias("now_id")))
    built = (lake.read("gold.customer_timeline")
             .where(f"source_table = 'sessions' AND occurred_date {dates}")
             .select("source_key", F.col("identifier").alias("built_id"), F.col("customer_key").alias("built_key")))
    changed = built.join(now, "source_key", "full_outer").where(
        "built_id IS NULL OR now_id IS NULL OR built_id <> now_id")
    new_keys = (changed.where("now_id IS NOT NULL").select(F.col("now_id").alias("identifier"))
                .join(identity.where("NOT is_shared"), "identifier").select("customer_key"))
    return changed.where("built_key IS NOT NULL").select(F.col("built_key").alias("customer_key")).unionByName(new_keys)


def previous_reference_versions(lake: Lake) -> dict[str, int] | None:
    """The reference table versions the last successful curate was built from (ops.runs), if known."""
    import json

    from pyspark.sql import functions as F

    if not lake.exists("ops.runs"):
        return None
    row = (lake.read("ops.runs").where("step = 'curate' AND status = 'succeeded'").orderBy(F.desc("finished_at"))
           .select("counts").first())
    return json.loads(row.counts).get("reference_versions") if row and row.counts else None


def changed(lake: Lake, name: str, previous: dict[str, int] | None) -> "DataFrame | None":
    """Rows of a reference table that differ from the version the last curate used (both sides); None if none
    can have changed. A version no longer readable (vacuumed) counts as everything changed."""
    columns = REFERENCE[name]
    current = lake.version(name)
    before = (previous or {}).get(name)
    if current is None or (previous is not None and before == current):
        return None
    now = lake.read(name).select(*columns)
    then = _version_then(lake, name, previous)
    if then is None:  # not known, or vacuumed: treat every row as changed
        return now
    then = then.select(*columns)
    return now.exceptAll(then).unionByName(then.exceptAll(now))


def _keys_of_changed_posts(lake: Lake, identity: "DataFrame", posts: "DataFrame") -> "DataFrame":
    """(customer_key, from_date): customers with an interaction on a post whose campaign changed (an extract that
    landed late, or anew), from the date of their first such interaction."""
    from pyspark.sql import functions as F

    changed = posts.select(F.col("platform").alias("_pp"), F.col("post_id").alias("_pid")).distinct()
    social = lake.read_or_empty("silver.social_interactions").where("target_type = 'post'")
    hit = social.join(changed, (social.platform == changed._pp) & (social.target_id == changed._pid))
    return (hit.select(F.concat(F.lit("social:"), "actor_id_hash").alias("identifier"), "event_date")
            .join(identity.where("NOT is_shared"), "identifier")
            .groupBy("customer_key").agg(F.min("event_date").alias("from_date")))


def touched_dates(lake: Lake, window: Window) -> list[date]:
    where = window.sql()
    dates: set[date] = set()
    for table, col in (("clickstream_events", "event_date"), ("social_interactions", "event_date"),
                       ("order_status_history", "to_date(created_at)")):
        if lake.exists(f"silver.{table}"):  # a listing of dates
            dates |= {r.d for r in lake.read(f"silver.{table}").where(where).selectExpr(f"{col} AS d").distinct().collect()
                      if r.d is not None}
    return sorted(dates)


