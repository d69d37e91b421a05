"""Where each source's files land, in which layout, and which of them Rapport will read.

A source's folder is ``<landing_root>/<source folder>`` unless ``RAPPORT_LANDING_PATHS`` points it elsewhere
(an existing bucket prefix a retailer's tools already write to). Its layout (``RAPPORT_LANDING_LAYOUTS``)
says where a file's arrival hour comes from:

- ``rapport`` (default): ``<folder>/dt=YYYY-MM-DD/hour=HH/<file>``; the hour is in the path.
- ``segment-s3``: Segment's S3 destination, ``segment-logs/<source-id>/<received day, epoch ms>/<file>.gz``
  (point the folder at ``segment-logs`` or at one source id). A file whose name starts with an epoch
  timestamp takes its hour from it; otherwise the hour is that of the newest ``receivedAt`` in the file,
  which the engine reads.
- ``rudderstack-s3``: RudderStack's object-storage destination,
  ``rudder-logs/<source-id>/<YYYY-MM-DD or MM-DD-YYYY>/<unix seconds>.<source-id>.<uuid>.json.gz``;
  the hour comes from the unix seconds.

Rules for files that are not read, none of them silent (``ops.landing_unrecognised`` lists every one
with why, and the ingest report counts them):

- a name, or a folder on its path, starting with ``_`` or ``.`` is hidden: not read, by rule;
- a file ending in ``.inprogress`` is still being written (a collector renames it when it closes it):
  not read now, taken on a later run, and not listed;
- a path outside the layout, or with a partition value that is not a date or an hour (``dt=2026-13-45``,
  ``hour=25``), is listed as unrecognised;
- a folder under the landing root that belongs to no source (``clikstream/``) is listed by ``ingest.survey``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from jobs.config import Config
from schemas.sources import SOURCES, source as source_of
from jobs.runs.window import HOUR, Window
from schemas.sources import LAYOUTS
from jobs.storage import is_s3, list_objects, local_root

IN_PROGRESS = ".inprogress"
DT, HR = re.compile(r"^dt=(.+)$"), re.compile(r"^hour=(.+)$")
EPOCH = re.compile(r"^(\d{10}|\d{13})(?:\D|$)")


@dataclass(frozen=True)
class LandingFile:
    source: str
    uri: str  # where the engine reads it: a local path or s3://bucket/key
    rel: str  # "<source>/<path under the source's folder>": the file's name in lineage and logs
    size: int
    version: str  # modification time (ns) locally, the ETag on S3
    hour: datetime | None  # arrival hour from the path; None when it comes from the content (segment-s3)
    day: date  # arrival day (for content-hour layouts, the day the path names)

    @property
    def dt(self) -> date:
        return self.hour.date() if self.hour else self.day

    def may_fall_in(self, window: Window) -> bool:
        """Whether the file can belong to the window (exactly, when its hour is known; by day otherwise)."""
        if self.hour is not None:
            return window.contains(self.hour)
        day_start = datetime(self.day.year, self.day.month, self.day.day, tzinfo=timezone.utc)
        return (window.end is None or day_start < window.end) and \
            (window.start is None or day_start + timedelta(days=1) > window.start)


@dataclass(frozen=True)
class Unrecognised:
    source: str
    rel: str
    size: int
    version: str
    reason: str


def _parse_hour(day_text: str, hour_text: str) -> tuple[datetime | None, str | None]:
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        return None, f"dt={day_text} is not a date (YYYY-MM-DD)"
    if not hour_text.isdigit() or not 0 <= int(hour_text) <= 23:
        return None, f"hour={hour_text} is not an hour (00-23)"
    hour = datetime(day.year, day.month, day.day, int(hour_text), tzinfo=timezone.utc)
    return hour, None


def _from_epoch(text: str) -> datetime | None:
    m = EPOCH.match(text)
    if not m:
        return None
    value = int(m.group(1))
    moment = datetime.fromtimestamp(value / 1000 if len(m.group(1)) == 13 else value, tz=timezone.utc)
    return moment.replace(minute=0, second=0, microsecond=0)


def place(layout: str, parts: list[str]) -> tuple[datetime | None, date | None, str | None]:
    """(arrival hour, arrival day, why not) of a file from its path parts under the source's folder. Pure."""
    name = parts[-1]
    if layout == "rapport":
        if len(parts) != 3 or not DT.match(parts[0]) or not HR.match(parts[1]):
            return None, None, "outside the layout: expected dt=YYYY-MM-DD/hour=HH/<file> under the source folder"
        hour, why = _parse_hour(DT.match(parts[0]).group(1), HR.match(parts[1]).group(1))
        return hour, hour.date() if hour else None, why
    if layout == "segment-s3":
        day_part = next((p for p in parts[:-1][::-1] if p.isdigit() and len(p) == 13), None)
        if day_part is None or len(parts) > 4:
            return None, None, "outside the segment-s3 layout: expected [<source-id>/]<received day, epoch ms>/<file>.gz"
        day = datetime.fromtimestamp(int(day_part) / 1000, tz=timezone.utc)
        if int(day_part) % 86_400_000:
            return None, None, f"{day_part} is not a UTC midnight in epoch milliseconds (Segment's received day)"
        hour = _from_epoch(name)
        if hour is not None and hour.date() != day.date():
            hour = None  # a name that is not the upload time: the content decides
        return hour, day.date(), None
    if layout == "rudderstack-s3":
        if len(parts) < 2 or len(parts) > 3:
            return None, None, ("outside the rudderstack-s3 layout: expected [<source-id>/]<date>/"
                                "<unix seconds>.<source-id>.<uuid>.json.gz")
        hour = _from_epoch(name)
        if hour is None:
            return None, None, "the file name does not start with unix seconds (RudderStack names files <seconds>.…)"
        return hour, hour.date(), None
    raise ValueError(f"unknown landing layout {layout!r}; layouts are {', '.join(LAYOUTS)}")


class Landing:
    """The landing zone of one configuration: each source's folder and layout."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.root = cfg.landing_root.rstrip("/") if is_s3(cfg.landing_root) else local_root(cfg.landing_root)

    def folder(self, source: str) -> str:
        custom = self.cfg.landing_paths_map().get(source)
        if custom:
            return custom.rstrip("/") if is_s3(custom) else local_root(custom) if custom.startswith(("/", "file:")) \
                else f"{self.root}/{custom.strip('/')}"
        return f"{self.root}/{source_of(source).landing}"

    def layout(self, source: str) -> str:
        return self.cfg.landing_layouts_map().get(source, "rapport")

    def _outside(self, layout: str, window: Window | None):
        """For a bounded window on the Rapport layout, a test of the ``dt=`` folders whose files cannot fall in it
        (a file's hour is its folders' date and hour), so a day's run lists its days, not the source's history.
        Other layouts, and unbounded windows, list everything."""
        if layout != "rapport" or window is None or window.start is None or window.end is None:
            return None
        first, last = window.start.date(), (window.end - timedelta(microseconds=1)).date()

        def outside(folder: str) -> bool:
            m = DT.match(folder)
            try:
                day = date.fromisoformat(m.group(1)) if m else None
            except ValueError:  # not a date: listed, and reported as outside the layout
                return False
            return day is not None and not first <= day <= last

        return outside

    def scan(self, source: str, window: Window | None = None) -> tuple[list[LandingFile], list[Unrecognised]]:
        """The files of the source's folder: those Rapport reads, and those it does not, with why. With a bounded
        window, on the Rapport layout, the ``dt=`` folders of other dates are not listed (files that do not fall in
        the window are then not all returned: filter with ``may_fall_in``); stray files elsewhere still are."""
        base, layout = self.folder(source), self.layout(source)
        e = self.cfg.earliest()
        earliest = datetime(e.year, e.month, e.day, tzinfo=timezone.utc)
        files, unrecognised = [], []
        for obj in list_objects(self.cfg, base, skip=self._outside(layout, window)):
            parts = obj.key.split("/")
            rel = f"{source}/{obj.key}"
            if parts[-1].endswith(IN_PROGRESS):
                continue  # still being written; a later run takes it once renamed
            if any(p.startswith(("_", ".")) for p in parts):
                unrecognised.append(Unrecognised(source, rel, obj.size, obj.version,
                                                 "hidden: names starting with _ or . are not read"))
                continue
            hour, day, why = place(layout, parts)
            if why is None and hour is not None and hour < earliest:  # one setting for how old data may be
                why = f"arrival hour {hour:%Y-%m-%d %H:00} is before {earliest:%Y-%m-%d} (RAPPORT_EARLIEST_EVENT)"
            if why is not None:
                unrecognised.append(Unrecognised(source, rel, obj.size, obj.version, why))
                continue
            files.append(LandingFile(source, obj.uri, rel, obj.size, obj.version, hour, day))
        return sorted(files, key=lambda f: f.rel), unrecognised

    def list(self, source: str, window: Window | None = None) -> list[LandingFile]:
        """The readable files of the source that can fall in the window, in path order."""
        files, _ = self.scan(source, window)
        return [f for f in files if window is None or f.may_fall_in(window)]

    def survey(self) -> list[Unrecognised]:
        """Files under the landing root that no source's folder holds (a misspelled folder, a stray file)."""
        claimed = {self.folder(s.name) for s in SOURCES}
        out = []
        # a source's own folder is not listed here (its files are the source's scan's business)
        for obj in list_objects(self.cfg, self.root, skip=lambda name: f"{self.root}/{name}" in claimed):
            uri = f"{self.root}/{obj.key}"
            if any(uri.startswith(c + "/") for c in claimed):
                continue
            hidden = any(p.startswith(("_", ".")) for p in obj.key.split("/"))
            if obj.key.endswith(IN_PROGRESS):
                continue
            out.append(Unrecognised("", obj.key, obj.size, obj.version,
                                    "hidden: names starting with _ or . are not read" if hidden else
                                    "in no source's folder (sources: " + ", ".join(
                                        s.landing for s in SOURCES) + ")"))
        return out


def content_hour(newest_received: datetime | None, f: LandingFile, window: Window) -> tuple[datetime, bool]:
    """(the hour a content-dated file is stamped with, whether it waits for a later window).

    The hour of its newest ``receivedAt`` (its day's first hour when it has none). A file found after
    its hour's window ran is stamped with the first hour of the window that found it, so that window's
    refine takes it; a file of a later hour waits for its own window."""
    day_start = datetime(f.day.year, f.day.month, f.day.day, tzinfo=timezone.utc)
    hour = day_start
    if newest_received is not None:
        moment = newest_received if newest_received.tzinfo else newest_received.replace(tzinfo=timezone.utc)
        candidate = moment.replace(minute=0, second=0, microsecond=0)
        if day_start <= candidate < day_start + timedelta(days=1) + HOUR:
            hour = candidate
    if window.end is not None and hour >= window.end:
        return hour, True
    if window.start is not None and hour < window.start:
        hour = window.start
    return hour, False

