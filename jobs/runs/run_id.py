"""Run ids: what kind of run, when it started, and a random part, e.g. ``refine-clickstream-20261103T100000-1a2b3c4d``.

Staging folders and lineage columns carry them; maintenance reads a run's start time back
from one with ``RunId.parse`` to find the staging of runs that were killed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

TIME_FORMAT = "%Y%m%dT%H%M%S"
NONCE_HEX = 8


@dataclass(frozen=True)
class RunId:
    kind: str
    started: datetime
    nonce: str

    @classmethod
    def new(cls, kind: str) -> "RunId":
        return cls(kind, datetime.now(timezone.utc).replace(microsecond=0), secrets.token_hex(NONCE_HEX // 2))

    @classmethod
    def parse(cls, text: str) -> "RunId | None":
        """The run id ``text`` names, or None when it is not one."""
        parts = text.rsplit("-", 2)
        if len(parts) != 3 or len(parts[2]) != NONCE_HEX or not parts[0]:
            return None
        kind, stamp, nonce = parts
        if any(c not in "0123456789abcdef" for c in nonce):
            return None
        try:
            started = datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            return None
        return cls(kind, started, nonce)

    def child(self, part: str) -> "RunId":
        """The run id of one part of this run (same start and nonce)."""
        return RunId(f"{self.kind}-{part}", self.started, self.nonce)

    def __str__(self) -> str:
        return f"{self.kind}-{self.started.strftime(TIME_FORMAT)}-{self.nonce}"
