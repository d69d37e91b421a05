"""The ``quarantine_rate`` gate: how much of a source's window was quarantined, reason by reason.

A row that breaks a row rule is quarantined at parse and never fails a gate by itself (``schemas/rules.py``). What
no single row can decide is whether quarantine has become systemic: a tracking plan that changed, an SDK release
that sends a field of another type, a platform export in a new format. This expectation judges that, as a
``mostly``-style threshold per reason: it fails when one reason holds more than ``max_share`` of the lines that
landed in the window *and* more than ``min_rows`` lines (a handful of bad lines in a quiet hour is not a trend).

Its thresholds come from the suite (``max_share``, ``min_rows``, ``reasons: {reason: share}``) and, for the
critical ones, from ``RAPPORT_QUARANTINE_MAX_SHARE`` (``0.3`` for every reason, ``0.3,too_late=0.6`` per reason).
Counted like the audit: quarantine rows of the source that landed in the window (at ingest or at refine), over the
lines the window's files held (``ops.ingest_log``), less the rows replayed since. Aggregate reads of small,
partitioned tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs.config import Config
from jobs.lake import Lake
from jobs.runs.window import Window

TYPE = "quarantine_rate"
REPLAY_KEY = ("source", "layer", "source_file", "line_number")  # a quarantine row, as ops.replays names it


@dataclass(frozen=True)
class Limits:
    share: float  # the largest share of landed lines one reason may hold
    min_rows: int  # at most this many lines of one reason never fail, whatever their share
    reasons: dict[str, float]  # a share per reason, where it differs

    def share_of(self, reason: str) -> float:
        return self.reasons.get(reason, self.share)


def limits(kwargs: dict, severity: str, cfg: Config) -> Limits:
    """The expectation's thresholds; a critical one takes ``RAPPORT_QUARANTINE_MAX_SHARE`` over the suite's."""
    share = float(kwargs.get("max_share", 0.2))
    reasons = {str(k): float(v) for k, v in (kwargs.get("reasons") or {}).items()}
    if severity == "critical":
        default, named = cfg.quarantine_limits()
        share = share if default is None else default
        reasons.update(named)
    return Limits(share, int(kwargs.get("min_rows", 50)), reasons)


@dataclass(frozen=True)
class Measure:
    landed: int
    by_reason: dict[str, int]


def measure(lake: Lake, source: str, window: Window) -> Measure:
    """Lines that landed in the window for ``source`` and its open quarantine rows by reason. A row that
    ``rapport quarantine replay`` landed again is not open, and its copy (landed in the same hour) is not counted
    as a second line."""
    from pyspark.sql import functions as F

    where = f"{window.sql()} AND source = '{source}'"
    landed = 0
    if lake.exists("ops.ingest_log"):
        landed = lake.read("ops.ingest_log").where(where).agg(F.sum("lines").alias("n")).first().n or 0
    by_reason: dict[str, int] = {}
    if lake.exists("ops.quarantine"):
        rows = lake.read("ops.quarantine").where(where)
        if lake.exists("ops.replays"):
            replayed = lake.read("ops.replays").where(where).select(*REPLAY_KEY).distinct()
            landed -= replayed.count()
            rows = rows.join(replayed, list(REPLAY_KEY), "left_anti")
        by_reason = {r.reason: r["count"] for r in rows.groupBy("reason").count().collect()}
    return Measure(int(landed), dict(sorted(by_reason.items())))


def judge(limits_: Limits, m: Measure, source: str, window: Window) -> tuple[bool, str, str | None]:
    """(passed, what was observed, why it failed and what to do, or None)."""
    def pct(n: int) -> str:
        return f"{100 * n / m.landed:.2f}%" if m.landed else "n/a"

    observed = ", ".join(f"{r} {n:,} ({pct(n)})" for r, n in m.by_reason.items()) or "none"
    observed = f"{observed} of {m.landed:,} lines"
    over = [(r, n) for r, n in m.by_reason.items()
            if n > limits_.min_rows and (m.landed == 0 or n / m.landed > limits_.share_of(r))]
    if not over:
        return True, observed, None
    said = "; ".join(f"{n:,} of {m.landed:,} lines ({pct(n)}) quarantined as {r}, above the "
                     f"{100 * limits_.share_of(r):g}% allowed" for r, n in over)
    first = over[0][0]
    return False, observed, (
        f"{source} {window}: {said}. So many rows breaking one rule is systemic, not a bad row: a tracking plan, "
        f"SDK release or source export changed. Look at them with `rapport sql --role engineer \"SELECT detail, count(*) FROM "
        f"ops.quarantine WHERE source = '{source}' AND reason = '{first}' GROUP BY detail\"`; when the cause is "
        f"fixed (the source, or a rule in schemas/rules.py), `rapport quarantine replay --source {source} --reason "
        f"{first}` brings the rows back; if the share is expected, raise it with RAPPORT_QUARANTINE_MAX_SHARE "
        f"(e.g. {first}={min(1.0, round(2 * over[0][1] / max(m.landed, 1), 2))})")
