"""The row rules of ``schemas/rules.py`` on the engine: a parsed row that breaks one is quarantined with its reason.

Applied to the typed rows a source's ``parse`` returns, after the checks that need the raw JSON (a field of the
wrong type, an unparseable time): the first of those wins, then the first broken rule. Every condition is
NULL-safe and compares numbers as doubles, so no value raises an engine error (a decimal literal made Sail cast a
price of 1e300 to a decimal and fail the whole window).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.sql_text import in_list, sql_string
from schemas.rules import RULES, Rule

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def _literal(value: float) -> str:
    return f"CAST({float(value)!r} AS DOUBLE)"


def broken_sql(rule: Rule, column: str | None = None) -> tuple[str, str]:
    """(condition true when the value breaks the rule, detail for a person) over ``column`` (default the rule's)."""
    c = column or f"`{rule.column}`"
    shown = f"coalesce(substr(cast({c} AS STRING), 1, 40), 'null')"
    if rule.not_null:
        return f"{c} IS NULL", f"'{rule.column} is missing or could not be read'"
    if rule.values is not None:
        return (f"{c} IS NULL OR {c} NOT IN ({in_list(rule.values)})",
                f"concat('{rule.column} ', {shown}, ' is not one of {', '.join(rule.values)}')")
    if rule.regex is not None:
        return (f"{c} IS NOT NULL AND NOT {c} RLIKE {sql_string(rule.regex)}",
                f"concat('{rule.column} ', {shown}, ' does not look right')")
    if rule.not_before is not None:
        return (f"{c} < `{rule.not_before}`", f"concat('{rule.column} ', {shown}, ' is before {rule.not_before} ', "
                                             f"cast(`{rule.not_before}` AS STRING))")
    if rule.at_most_after is not None:
        other, seconds = rule.at_most_after
        return (f"{c} > `{other}` + INTERVAL {seconds} SECONDS",
                f"concat('{rule.column} ', {shown}, ' is after {other} ', cast(`{other}` AS STRING))")
    parts = []
    if rule.min is not None:
        parts.append(f"CAST({c} AS DOUBLE) < {_literal(rule.min)}")
    if rule.max is not None:
        parts.append(f"CAST({c} AS DOUBLE) > {_literal(rule.max)}")
    parts.append(f"isnan(CAST({c} AS DOUBLE))")
    bounds = (f"{rule.min:g} to {rule.max:g}" if rule.min is not None and rule.max is not None
              else f"at least {rule.min:g}" if rule.min is not None else f"at most {rule.max:g}")
    return f"{c} IS NOT NULL AND ({' OR '.join(parts)})", f"concat('{rule.column} ', {shown}, ' is not from {bounds}')"


def _elements_broken(rule: Rule, values: str) -> str:
    """True when an element of an array breaks a range rule, from the array's least and greatest value: no lambda
    (Sail 0.7.2 fails a filter with a lambda over a column read from files, gap 11), and a NaN is the greatest."""
    if rule.min is None and rule.max is None or rule.not_null or rule.values or rule.regex or rule.not_before \
            or rule.at_most_after:
        raise ValueError(f"{rule.name}: only range rules hold for the elements of an array")
    lo, hi = f"CAST(array_min({values}) AS DOUBLE)", f"CAST(array_max({values}) AS DOUBLE)"
    parts = [f"isnan({hi})"]
    if rule.min is not None:
        parts.append(f"{lo} < {_literal(rule.min)}")
    if rule.max is not None:
        parts.append(f"{hi} > {_literal(rule.max)}")
    return f"coalesce({' OR '.join(parts)}, false)"


def checks(table: str) -> list[tuple[str, str, str]]:
    """(reason, condition, detail) of every rule of a table, over its parsed rows; a rule on a field of an array's
    elements holds when every element keeps it."""
    out = []
    for rule in RULES[table]:
        if "." in rule.column:
            array, fieldname = rule.column.split(".", 1)
            out.append((rule.reason, _elements_broken(rule, f"`{array}`.`{fieldname}`"),
                        f"'an element of {array} has {fieldname} outside its rule ({rule.name})'"))
        else:
            cond, detail = broken_sql(rule)
            out.append((rule.reason, cond, detail))
    return out


def apply(parsed: "DataFrame", table: str) -> "DataFrame":
    """``parsed`` with ``reason``/``detail`` set for the rows that passed the raw checks but break a rule. Pure.
    The position of the first broken rule is computed once, in a column of its own."""
    from pyspark.sql import functions as F

    from jobs.silver.common import failure_sql

    at, reason, detail = failure_sql(checks(table))
    return (parsed.withColumn("_rule_at", F.expr(at))
            .withColumn("reason", F.coalesce(F.col("reason"), F.expr(reason.format(at="_rule_at"))))
            .withColumn("detail", F.when(F.col("detail").isNull(), F.expr(detail.format(at="_rule_at")))
                        .otherwise(F.col("detail")))
            .drop("_rule_at"))
