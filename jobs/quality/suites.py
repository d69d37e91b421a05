"""The quality suites, as data: one YAML per table in ``quality/suites`` (plain Python: DAG files may read it).

A suite names its table, its scope (``window``: rows that landed in the run's window, for tables
with lineage; ``touched``: the partitions changed since the last passed gate, ``jobs.quality.batch``;
``table``: all rows; the weekly ``gate.full`` reads every suite's whole table) and its
expectations, each with a ``severity`` (critical blocks promotion, warning is
recorded). Any Great Expectations expectation can be named by its snake_case type; Rapport adds
``volume_vs_previous``, ``freshness``, ``no_future_events`` and ``referential``. A silver table's row rules
(``schemas/rules.py``) join its suite as critical expectations: the YAML holds what no single row can decide, and
names value sets from ``schemas/vocabulary.py`` rather than copying them.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

SUITES_DIR = Path(__file__).resolve().parents[2] / "quality" / "suites"
SEVERITIES = ("critical", "warning")
SCOPES = ("window", "touched", "table")


@dataclass(frozen=True)
class Expectation:
    type: str
    kwargs: dict[str, Any]
    severity: str

    @property
    def label(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.type}({args})"


@dataclass(frozen=True)
class Suite:
    table: str  # layer.name
    scope: str
    expectations: tuple[Expectation, ...]

    @property
    def layer(self) -> str:
        return self.table.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.table.split(".", 1)[1]


def _value_set(path: Path, value: Any) -> Any:
    """A value set is named, never copied: ``{vocabulary: NAME}`` is that tuple of ``schemas/vocabulary.py``."""
    if isinstance(value, dict) and set(value) == {"vocabulary"}:
        from schemas import vocabulary

        found = getattr(vocabulary, value["vocabulary"], None)
        if not isinstance(found, tuple):
            raise ValueError(f"{path.name}: value_set names {value['vocabulary']!r}, which schemas/vocabulary.py lacks")
        return list(found)
    if isinstance(value, list):
        raise ValueError(f"{path.name}: a value_set is named ({{vocabulary: NAME}}), never copied into a suite")
    return value


def rule_expectations(table: str) -> list[Expectation]:
    """The table's row rules (``schemas/rules.py``) as critical expectations: what refine enforced, checked again."""
    from schemas.tables import table as registered
    from schemas.rules import expectation, rules_of

    columns = set(registered(table).column_names)
    out = []
    for rule in rules_of(table):
        others = {rule.not_before, (rule.at_most_after or (None,))[0]} - {None}
        if rule.column not in columns or not others <= columns:  # a rule of the deliveries this table is made from
            continue
        e = expectation(rule)
        out.append(Expectation(e.pop("type"), e, "critical"))
    return out


def _read(path: Path) -> dict:
    """A suite file, parsed once per process and version of the file (every gate loads every suite)."""
    stat = path.stat()
    return _parsed(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _parsed(path: Path, mtime_ns: int, size: int) -> dict:
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_suites(layer: str | None = None, directory: Path = SUITES_DIR) -> list[Suite]:
    suites = []
    for path in sorted(directory.glob("*.yaml")):
        raw = copy.deepcopy(_read(path))
        items = rule_expectations(raw["table"])
        for e in raw["expectations"]:
            e = dict(e)
            severity = e.pop("severity", None)
            if severity not in SEVERITIES:
                raise ValueError(f"{path.name}: {e.get('type')} has severity {severity!r}; use critical or warning")
            if "value_set" in e:
                e["value_set"] = _value_set(path, e["value_set"])
            items.append(Expectation(e.pop("type"), e, severity))
        scope = raw.get("scope", "table")
        if scope not in SCOPES:
            raise ValueError(f"{path.name}: scope {scope!r}; use one of {', '.join(SCOPES)}")
        suite = Suite(raw["table"], scope, tuple(items))
        if layer is None or suite.layer == layer:
            suites.append(suite)
    return suites


def suite_tables(layer: str, directory: Path = SUITES_DIR) -> list[str]:
    """The tables a layer's gate validates."""
    return [s.table for s in load_suites(layer, directory)]
