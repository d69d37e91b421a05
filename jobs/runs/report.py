"""What every step returns: which step, which run, which window, and what it did."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from jobs.runs.window import Window


@dataclass
class Report:
    step: str
    run_id: str
    window: Window

    def counts(self) -> dict[str, Any]:
        """The step's own fields (everything but step, run id and window): for logs, XComs and ops.runs."""
        skip = {"step", "run_id", "window"}
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in skip}

    def summary(self) -> dict[str, Any]:
        return {"step": self.step, "run_id": self.run_id, **self.window.to_extra(), **self.counts()}

    def counts_json(self) -> str:
        return json.dumps(self.counts(), sort_keys=True, default=str)


@dataclass
class CountReport(Report):
    """A step that only says how many rows it wrote where."""

    rows: dict[str, int] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Window):
        return value.to_extra()
    if dataclasses.is_dataclass(value):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    return value


class ReconciliationError(RuntimeError):
    """Rows were lost or invented between two layers; the message gives both counts."""
