"""SQL text: how a value becomes a literal in the SQL Rapport writes, defined once for every layer that writes SQL
(the scrubbing patterns, the row rules, the lake's conditions).

Only values that are not secret belong in SQL text: it travels in the plan to every worker and into engine logs."""

from __future__ import annotations

from typing import Iterable


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def in_list(values: Iterable[str]) -> str:
    """The items of an ``IN (…)`` list, each a string literal."""
    return ", ".join(sql_string(v) for v in values)


__all__ = ["in_list", "sql_string"]
