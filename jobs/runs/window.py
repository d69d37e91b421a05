"""The landing window a run processes: parsed here once, and turned into SQL and asset extras here only.

A window is a half-open range of landing hours ``[start, end)``; ``None`` means "from the
beginning" or "up to now". Bounds are whole hours (landing files are partitioned by arrival
hour): a start is rounded down and an end up, so a window never cuts an hour in two. An empty
or reversed window is refused with a message instead of processing nothing.

Where a window comes from:
- the CLI: ``--from``/``--to`` (a date or an ISO datetime, naive meaning UTC);
- Airflow: ``conf`` ``{"window_start", "window_end"}`` if given (reprocessing on purpose), else the
  union of the windows the triggering asset events carry, else the data interval; a manual run
  (``data_interval_start == data_interval_end``) takes everything that landed up to its date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

HOUR = timedelta(hours=1)


class WindowError(ValueError):
    """A window that cannot be processed (unparseable, empty or reversed); the message says how to fix it."""


def parse_moment(value: Any) -> datetime | None:
    """A bound given by a person, a DAG run or an asset event: a date (midnight UTC) or an ISO datetime."""
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise WindowError(f"{value!r} is not a date or datetime; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _floor(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.replace(minute=0, second=0, microsecond=0)


def _ceil(moment: datetime | None) -> datetime | None:
    floor = _floor(moment)
    return floor if moment is None or floor == moment else floor + HOUR


@dataclass(frozen=True)
class Window:
    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        start, end = _floor(parse_moment(self.start)), _ceil(parse_moment(self.end))
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        if start is not None and end is not None and start >= end:
            raise WindowError(
                f"the window {start:%Y-%m-%dT%H:%M} .. {end:%Y-%m-%dT%H:%M} is "
                f"{'empty' if start == end else 'reversed'}: --from must be before --to (a window covers whole "
                "landing hours, from the first hour up to but not including the last)")

    # ---- construction
    @classmethod
    def everything(cls) -> "Window":
        return cls()

    @classmethod
    def parse(cls, start: Any = None, end: Any = None) -> "Window":
        return cls(parse_moment(start), parse_moment(end))

    @classmethod
    def union(cls, windows: Iterable["Window"]) -> "Window":
        windows = list(windows)
        if not windows:
            return cls()
        starts, ends = [w.start for w in windows], [w.end for w in windows]
        return cls(None if None in starts else min(starts), None if None in ends else max(ends))

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> "Window":
        return cls.parse(extra.get("window_start"), extra.get("window_end"))

    @classmethod
    def from_airflow(cls, context: Mapping[str, Any]) -> "Window":
        run = context.get("dag_run")
        conf = (run is not None and getattr(run, "conf", None)) or {}
        if "window_start" in conf or "window_end" in conf:
            return cls.from_extra(conf)
        events = context.get("triggering_asset_events") or {}
        carried = [cls.from_extra(e.extra) for evs in events.values() for e in evs
                   if getattr(e, "extra", None) and ("window_start" in e.extra or "window_end" in e.extra)]
        if carried:
            return cls.union(carried)
        start, end = parse_moment(context.get("data_interval_start")), parse_moment(context.get("data_interval_end"))
        if start is not None and start == end:  # a manual run: catch up on everything up to its date
            return cls(None, end)
        if start is not None and end is not None and end - start < timedelta(hours=1):
            # a micro-batch (an interval under an hour) takes its hour and the one before: a collector closes the
            # last hour's file at the hour, after that hour's own runs; refine parses only what is new in either
            start -= timedelta(hours=1)
        return cls(start, end)

    # ---- what it means
    def contains(self, hour: datetime) -> bool:
        """Whether the landing hour starting at ``hour`` is in the window."""
        return (self.start is None or hour >= self.start) and (self.end is None or hour < self.end)

    def covers(self, other: "Window") -> bool:
        return ((self.start is None or (other.start is not None and other.start >= self.start))
                and (self.end is None or (other.end is not None and other.end <= self.end)))

    def sql(self, dt: str = "landing_dt", hour: str = "landing_hour") -> str:
        """SQL condition on a (date, hour) pair of columns for the hours in the window."""
        parts = []
        if self.start is not None:
            d, h = self.start.date().isoformat(), self.start.hour
            parts.append(f"({dt} > DATE'{d}' OR ({dt} = DATE'{d}' AND {hour} >= {h}))")
        if self.end is not None:
            d, h = self.end.date().isoformat(), self.end.hour
            parts.append(f"({dt} < DATE'{d}' OR ({dt} = DATE'{d}' AND {hour} < {h}))")
        return " AND ".join(parts) or "TRUE"

    def days_sql(self, column: str) -> str:
        """SQL condition on a date column for the days the window touches (whole days)."""
        parts = []
        if self.start is not None:
            parts.append(f"{column} >= DATE'{self.start.date().isoformat()}'")
        if self.end is not None:
            last = (self.end - HOUR).date()
            parts.append(f"{column} <= DATE'{last.isoformat()}'")
        return " AND ".join(parts) or "TRUE"

    # ---- how it is written down
    @property
    def start_text(self) -> str:
        return self.start.isoformat() if self.start else ""

    @property
    def end_text(self) -> str:
        return self.end.isoformat() if self.end else ""

    def to_extra(self) -> dict[str, str | None]:
        """For asset events and XComs: what the consumer parses back with ``from_extra``."""
        return {"window_start": self.start.isoformat() if self.start else None,
                "window_end": self.end.isoformat() if self.end else None}

    def cli_args(self) -> str:
        return " ".join(filter(None, (self.start and f"--from {self.start:%Y-%m-%dT%H:%M}",
                                      self.end and f"--to {self.end:%Y-%m-%dT%H:%M}")))

    def __str__(self) -> str:
        start = f"{self.start:%Y-%m-%d %H:00}" if self.start else "the beginning"
        end = f"{self.end:%Y-%m-%d %H:00}" if self.end else "now"
        return f"{start} .. {end}"
