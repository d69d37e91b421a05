"""What every source generator in a shard shares: the random stream, the catalogue, and ``emit``."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone

from jobs.generate.defects import Injector, conflicting_copy, corrupt, dumps
from jobs.generate.landing import Sink
from jobs.generate.population import Catalogue, Device

DAY = 86400.0
LATE_AFTER = DAY  # an event that arrives a day or more after it happened is a late arrival


_MINUTES: dict[int, str] = {}


def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds, as the sources send it. Formatting dominates the generator's
    time, so the ``YYYY-MM-DDTHH:MM:`` prefix is cached per minute."""
    minute = int(ts // 60)
    prefix = _MINUTES.get(minute)
    if prefix is None:
        prefix = _MINUTES[minute] = datetime.fromtimestamp(minute * 60, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:")
    millis = int((ts - minute * 60) * 1000)
    return f"{prefix}{millis // 1000:02d}.{millis % 1000:03d}Z"


@dataclass
class ShardContext:
    shard: int
    rng: random.Random
    catalogue: Catalogue
    injector: Injector
    end_ts: float  # nothing happens at or after this instant
    sink: Sink = field(default_factory=Sink)
    kiosks: list[Device] = field(default_factory=list)
    info: Counter = field(default_factory=Counter)  # facts worth reporting that are not defects
    order_seq: int = 0

    def pick_product(self, focus: list[str] | None = None) -> dict:
        cat = self.catalogue
        if focus and self.rng.random() < 0.5:
            pid = self.rng.choice(focus)
            return cat.products[int(pid[1:])]
        return self.rng.choices(cat.products, cat.product_weights)[0]

    def emit(self, source: str, record: dict, event_ts: float, arrival: float) -> None:
        """Land one record, possibly with a defect, a duplicate or a conflicting copy."""
        rng = self.rng
        kind = self.injector.defect_for(source, record)
        if kind is not None:
            self.sink.add(source, arrival, corrupt(source, kind, record, rng), kind)
            return
        line = dumps(record)
        late = arrival - event_ts >= LATE_AFTER
        copy = self.injector.copy_for(source)
        tag = ("valid_copied" if copy else "valid") + ("_late" if late else "")
        self.sink.add(source, arrival, line, tag)
        if copy is None:
            return
        delay = rng.uniform(1.5 * DAY, 4 * DAY) if rng.random() < 0.3 else rng.uniform(1, 900)
        copy_line = line if copy == "exact_duplicate" else conflicting_copy(record, rng)
        self.sink.add(source, arrival + delay, copy_line, copy)
