"""A peer for refine: the clickstream core of it written by hand in DuckDB, on the same landing files.

What it does, and only that: a typed parse of the Segment lines (``read_json`` with declared columns),
events without an id or a time dropped, one row per ``messageId`` (the earliest arrival), the device-skew
corrected time (``receivedAt − (sentAt − timestamp)``, as Segment and Rapport correct it), and 30-minute
sessions per device (a new UTM campaign also starts one; none longer than 24 hours; bots left out), written
as Parquet. What it does not do is what Rapport is also paid for: salvage of damaged files (DuckDB's
``read_json`` fails the whole read on a truncated gzip member even with ``ignore_errors``, so the peer tests
each file and skips the damaged ones), quarantine with reasons, reconciliation, hashing and scrubbing of
personal data, the hostile-input checks and lineage.

``python -m jobs.bench.refine_peer --landing L --out O`` prints ``RAPPORT_PEER {"seconds": …}``;
``compare`` sets its output beside silver's (a Parquet snapshot of ``silver.clickstream_events`` and
``silver.sessions``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

BOTS = r"(?i)(bot|crawl|spider|slurp|ahrefs|semrush|facebookexternalhit|headless|python-requests|curl/)"
COLUMNS = ("{messageId: 'VARCHAR', anonymousId: 'VARCHAR', userId: 'VARCHAR', type: 'VARCHAR', event: 'VARCHAR', "
           "timestamp: 'VARCHAR', originalTimestamp: 'VARCHAR', sentAt: 'VARCHAR', receivedAt: 'VARCHAR', "
           "context: 'JSON'}")


def _ts(column: str) -> str:
    return f"try_cast({column} AS TIMESTAMPTZ)"


SQL = f"""
CREATE TEMP TABLE parsed AS
SELECT messageId AS message_id, nullif(trim(anonymousId), '') AS anonymous_id, userId AS user_id, type, event,
       {_ts('coalesce(originalTimestamp, "timestamp")')} AS device_ts, {_ts('sentAt')} AS sent_at,
       {_ts('receivedAt')} AS received_at,
       context ->> '$.campaign.name' AS utm_campaign,
       regexp_matches(coalesce(context ->> '$.userAgent', ''), '{BOTS}') AS is_bot
FROM read_json(?, format = 'newline_delimited', columns = {COLUMNS}, ignore_errors = true);

CREATE TEMP TABLE events AS
SELECT message_id, anonymous_id, user_id, type, event, utm_campaign, is_bot, received_at,
       CASE WHEN sent_at IS NULL THEN device_ts ELSE received_at - (sent_at - device_ts) END AS event_time
FROM parsed
WHERE coalesce(trim(message_id), '') <> '' AND device_ts IS NOT NULL AND received_at IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY message_id ORDER BY received_at, event_time) = 1;

CREATE TEMP TABLE sessions AS
WITH ordered AS (
  SELECT *, lag(event_time) OVER w AS prev,
         last_value(utm_campaign IGNORE NULLS) OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_campaign
  FROM events WHERE NOT is_bot AND anonymous_id IS NOT NULL
  WINDOW w AS (PARTITION BY anonymous_id ORDER BY event_time, message_id)
), gaps AS (
  SELECT *, sum(CASE WHEN prev IS NULL OR event_time > prev + INTERVAL 30 MINUTES
                       OR (utm_campaign IS NOT NULL AND utm_campaign <> coalesce(prev_campaign, '')) THEN 1 ELSE 0 END)
            OVER (PARTITION BY anonymous_id ORDER BY event_time, message_id ROWS UNBOUNDED PRECEDING) AS gap_session
  FROM ordered
), parts AS (
  SELECT *, floor((epoch_ms(event_time) - min(epoch_ms(event_time)) OVER (PARTITION BY anonymous_id, gap_session))
                  / (24 * 3600 * 1000)) AS part
  FROM gaps
)
SELECT anonymous_id, min(event_time) AS session_start, max(event_time) AS session_end, count(*) AS events,
       bool_or(event = 'Order Completed') AS converted
FROM parts GROUP BY anonymous_id, gap_session, part;
"""


def readable(con, files: list[Path]) -> tuple[list[str], list[str]]:
    """Files DuckDB reads whole, and the damaged ones it cannot (a truncated gzip member fails the whole read)."""
    good, bad = [], []
    for f in files:
        try:
            con.execute(f"SELECT count(*) FROM read_json(?, format = 'newline_delimited', columns = {COLUMNS}, "
                        "ignore_errors = true)", [str(f)]).fetchone()
            good.append(str(f))
        except Exception:
            bad.append(str(f))
    return good, bad


def run(landing: Path, out: Path) -> dict:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect()
    files = sorted((Path(landing) / "clickstream").rglob("*.json.gz"))
    good, bad = readable(con, files)
    for statement in (s for s in SQL.split(";\n") if s.strip()):
        con.execute(statement, [good] if "read_json" in statement else [])
    out.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY (SELECT message_id, anonymous_id, user_id, event_time FROM events) TO '{out / 'events.parquet'}' "
                "(FORMAT parquet)")
    con.execute(f"COPY sessions TO '{out / 'sessions.parquet'}' (FORMAT parquet)")
    rows = con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM sessions)").fetchone()
    return {"seconds": round(time.perf_counter() - started, 2), "files": len(files), "skipped_damaged": len(bad),
            "events": rows[0], "sessions": rows[1]}


def compare(peer: Path, silver: Path) -> dict:
    """The peer's events and sessions beside silver's: how many are the same row (an event: same id and corrected
    time to the millisecond; a session: same device, start and event count), and how many are only on one side."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE VIEW p AS SELECT * FROM read_parquet('{peer / 'events.parquet'}')")
    con.execute(f"CREATE VIEW s AS SELECT message_id, event_time FROM read_parquet('{silver / 'clickstream_events'}/**/*.parquet')")
    same, peer_only, silver_only = con.execute("""
        SELECT count_if(s.message_id IS NOT NULL AND p.message_id IS NOT NULL
                        AND epoch_ms(p.event_time) = epoch_ms(s.event_time::TIMESTAMPTZ)),
               count_if(s.message_id IS NULL), count_if(p.message_id IS NULL)
        FROM p FULL JOIN s USING (message_id)""").fetchone()
    con.execute(f"CREATE VIEW ps AS SELECT * FROM read_parquet('{peer / 'sessions.parquet'}')")
    con.execute(f"CREATE VIEW ss AS SELECT anonymous_id, session_start, events FROM "
                f"read_parquet('{silver / 'sessions'}/**/*.parquet')")
    s_same, s_peer, s_silver = con.execute("""
        SELECT count_if(ps.anonymous_id IS NOT NULL AND ss.anonymous_id IS NOT NULL AND ps.events = ss.events),
               count_if(ss.anonymous_id IS NULL), count_if(ps.anonymous_id IS NULL)
        FROM ps FULL JOIN ss ON ps.anonymous_id = ss.anonymous_id
                            AND epoch_ms(ps.session_start) = epoch_ms(ss.session_start::TIMESTAMPTZ)""").fetchone()
    return {"events_same": same, "events_peer_only": peer_only, "events_silver_only": silver_only,
            "sessions_same": s_same, "sessions_peer_only": s_peer, "sessions_silver_only": s_silver}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m jobs.bench.refine_peer", description=__doc__.split("\n")[0])
    parser.add_argument("--landing", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print("RAPPORT_PEER " + json.dumps(run(args.landing, args.out)), flush=True)


if __name__ == "__main__":
    main()
