"""A suite's expectations measured in one aggregate query over its batch, handed to Great Expectations as results.

Great Expectations' Spark engine computes each expectation's metrics with queries of their own (a count, the
unexpected count, a sample of unexpected values, often more): on a 1.1M-event lake the gates cost as much as
curate and export together, and on a ~20k-event day a third of the run. Every expectation Rapport's suites use is
an aggregate over the batch (a count of rows that break it, a max, the row count, the column names), so all of
them are computed together: one query per table. A sample of unexpected values is read only for an expectation
that found some (one small query each, on failure only).

A check is a Great Expectations expectation as data (``Check``: its snake_case type, kwargs and meta), and its
outcome is the JSON of the ``ExpectationValidationResult`` Great Expectations' own validator returns (``SUMMARY``
format): ``ops.quality_results``, the stored results and the Data Docs pages are the same for users, and a gate
that passes never imports Great Expectations (3.5 s per process on these machines). A check this module cannot
compile (a type the suites do not use today, or a row condition other than nullity) is returned to the caller,
which validates it with Great Expectations itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

MAP = "map"  # a condition per row: unexpected rows are counted, a sample of their values read on failure
KEYED = "keyed"  # a map whose unexpected rows are counted from the keys that break it (uniqueness)


@dataclass(frozen=True)
class Check:
    """A Great Expectations expectation as data: its snake_case type, kwargs and meta."""
    type: str
    kwargs: dict
    meta: dict

    def config(self) -> dict:
        """The ``expectation_config`` of its stored result, as Great Expectations writes it."""
        return {"type": self.type, "kwargs": self.kwargs, "meta": self.meta, "id": None}


@dataclass(frozen=True)
class Compiled:
    """What one expectation reads: for a column map, the domain (rows it judges) and the unexpected condition;
    for a table or column aggregate, one aggregate expression and the judgement of its value."""
    kind: str  # MAP, KEYED, "aggregate" or "columns"
    column: str | None = None
    domain: "Column | None" = None  # None: every row
    unexpected: "Column | None" = None
    aggregate: "Column | None" = None
    judge: Callable[[Any], bool] | None = None
    pair: tuple[str, str] | None = None  # a column-pair map: its sample is of both values
    nulls: bool = False  # unexpected means "the column is null": counted by a query statistics can answer


def _row_domain(check: Check) -> "Column | None | bool":
    """The rows a check's row condition keeps (None: all rows); False when the condition is not one this module
    compiles (only Great Expectations' nullity condition is)."""
    from pyspark.sql import functions as F

    condition = check.kwargs.get("row_condition")
    if condition is None:
        return None
    if isinstance(condition, dict) and condition.get("type") == "nullity" and set(condition) <= {"type", "column",
                                                                                              "is_null"}:
        column = F.col(condition["column"]["name"])
        return column.isNull() if condition.get("is_null") else column.isNotNull()
    return False


def _between(value, low, high, strict_low, strict_high) -> bool:
    if value is None:
        return False
    if low is not None and (value <= low if strict_low else value < low):
        return False
    return not (high is not None and (value >= high if strict_high else value > high))


def compile_one(check: Check, columns: list[str]) -> Compiled | None:
    """The aggregate form of a check, or None when it is not compiled here."""
    from pyspark.sql import functions as F

    kind, kw = check.type, check.kwargs
    domain = _row_domain(check)
    if domain is False:
        return None
    column = kw.get("column")
    c = F.col(column) if isinstance(column, str) else None
    present = None if c is None else c.isNotNull()
    low, high = kw.get("min_value"), kw.get("max_value")
    strict_low, strict_high = bool(kw.get("strict_min")), bool(kw.get("strict_max"))

    def within(cond):
        return cond if domain is None else (domain & cond)

    if kind == "expect_column_values_to_not_be_null":
        return Compiled(MAP, column, domain, c.isNull(), nulls=True)
    if kind == "expect_column_values_to_be_null":
        return Compiled(MAP, column, domain, c.isNotNull())
    if kind == "expect_column_values_to_be_in_set":
        return Compiled(MAP, column, within(present), ~c.isin(list(kw["value_set"])))
    if kind == "expect_column_values_to_be_between":
        bad = F.lit(False)
        if low is not None:
            bad = bad | ((c <= F.lit(low)) if strict_low else (c < F.lit(low)))
        if high is not None:
            bad = bad | ((c >= F.lit(high)) if strict_high else (c > F.lit(high)))
        return Compiled(MAP, column, within(present), bad)
    if kind == "expect_column_values_to_match_regex":
        return Compiled(MAP, column, within(present), ~c.cast("string").rlike(kw["regex"]))
    if kind == "expect_column_values_to_not_match_regex":
        return Compiled(MAP, column, within(present), c.cast("string").rlike(kw["regex"]))
    if kind == "expect_column_value_lengths_to_equal":
        return Compiled(MAP, column, within(present), F.length(c.cast("string")) != F.lit(int(kw["value"])))
    if kind == "expect_column_pair_values_a_to_be_greater_than_b":
        a, b = F.col(kw["column_A"]), F.col(kw["column_B"])
        ignore = {"both_values_are_missing": a.isNull() & b.isNull(), "either_value_is_missing": a.isNull() | b.isNull(),
                  "neither": F.lit(False)}.get(kw.get("ignore_row_if") or "both_values_are_missing")
        if ignore is None:
            return None
        holds = ((a >= b) | a.eqNullSafe(b)) if kw.get("or_equal") else (a > b)
        # as Great Expectations' Spark engine counts: a comparison with a missing side is not unexpected
        return Compiled(MAP, None, within(~ignore), F.coalesce(~holds, F.lit(False)),
                        pair=(kw["column_A"], kw["column_B"]))
    if domain is not None:  # the aggregates below take no row condition in Rapport's suites
        return None
    if kind == "expect_table_row_count_to_be_between":
        return Compiled("aggregate", aggregate=F.count(F.lit(1)),
                        judge=lambda v: _between(v, low, high, strict_low, strict_high))
    if kind == "expect_column_max_to_be_between":
        return Compiled("aggregate", column, aggregate=F.max(c),
                        judge=lambda v: _between(v, low, high, strict_low, strict_high))
    if kind == "expect_table_columns_to_match_set":
        wanted, have = set(kw.get("column_set") or []), set(columns)
        ok = wanted == have if kw.get("exact_match") in (None, True) else wanted <= have
        return Compiled("columns", judge=lambda _v: ok)
    return None


def _mostly(check: Check, unexpected: int, judged: int) -> bool:
    mostly = check.kwargs.get("mostly")
    if mostly is None or mostly >= 1:
        return unexpected == 0
    return judged == 0 or (judged - unexpected) / judged >= float(mostly)


def _percent(part: int, whole: int) -> float | None:
    return None if not whole else 100.0 * part / whole


def outcome(check: Check, success: bool, result: dict, exception: str | None = None) -> dict:
    """A check's result in the JSON shape of Great Expectations' ``ExpectationValidationResult``."""
    return {"success": bool(success), "expectation_config": check.config(), "result": result, "meta": {},
            "exception_info": {"raised_exception": exception is not None, "exception_message": exception,
                               "exception_traceback": None}}


def _null_counts(base: "DataFrame", nulls: dict[int, Compiled]) -> "DataFrame":
    """The unexpected and missing counts of the not-null checks, from the rows where one of their columns is null.

    Asked as a filter, "is this column null" is answered from each Parquet row group's null count: a batch with no
    null reads none of the column's pages (the raw text of a bronze table is most of its bytes). The same counts
    inside the suite's aggregate would read every value."""
    from functools import reduce

    from pyspark.sql import functions as F

    columns = sorted({c.column for c in nulls.values()})
    aggs = []
    for i, c in nulls.items():
        aggs.append(F.count(F.when(c.unexpected if c.domain is None else (c.domain & c.unexpected), F.lit(1)))
                    .alias(f"_unexpected_{i}"))
        if c.domain is not None:
            aggs.append(F.count(F.when(F.col(c.column).isNull(), F.lit(1))).alias(f"_missing_{i}"))
    where = reduce(lambda a, b: a | b, [F.col(x).isNull() for x in columns])
    return base.where(where).agg(*aggs)


def evaluate(df: "DataFrame", checks: list[Check], sample_size: int, base: "DataFrame | None" = None,
             keyed: "dict[int, DataFrame] | None" = None) -> tuple[int, dict[int, dict], list[int]]:
    """Measure ``checks`` on ``df`` in one query: one row of aggregates over the batch, beside one row of the
    not-null checks' counts over ``base`` (the batch before helper columns were joined to it: ``_null_counts``)
    and one row per keyed check (``keyed``: position -> the keys that break it, as the check's column, with
    their ``_rows`` in the batch; see ``jobs.quality.expectations.expand``).

    Returns the batch's row count, the results by position in ``checks`` and the positions left to Great
    Expectations (those not compiled)."""
    from pyspark.sql import functions as F

    base = df if base is None else base
    keyed = keyed or {}
    compiled: dict[int, Compiled] = {}
    rest: list[int] = []
    results: dict[int, dict] = {}
    for i, check in enumerate(checks):
        if i in keyed:
            compiled[i] = Compiled(KEYED, check.kwargs["column"])
            continue
        missing = [c for c in (check.kwargs.get(k) for k in ("column", "column_A", "column_B"))
                   if isinstance(c, str) and c not in df.columns]
        if missing:  # Great Expectations' own outcome: not evaluated, with the reason
            results[i] = outcome(check, False, {}, f'column "{missing[0]}" does not exist in the batch of '
                                                   f'{len(df.columns)} columns')
            continue
        c = compile_one(check, df.columns)
        if c is None:
            rest.append(i)
        else:
            compiled[i] = c
    nulls = {i: c for i, c in compiled.items() if c.nulls and c.column in base.columns and
             ((cond := checks[i].kwargs.get("row_condition")) is None or cond["column"]["name"] in base.columns)}
    aggs = [F.count(F.lit(1)).alias("_rows")]
    for i, c in compiled.items():
        if c.kind == MAP:
            judged = F.lit(True) if c.domain is None else c.domain
            aggs.append(F.count(F.when(judged, F.lit(1))).alias(f"_judged_{i}"))
            if i in nulls:
                continue
            aggs.append(F.count(F.when(judged & c.unexpected, F.lit(1))).alias(f"_unexpected_{i}"))
            if c.domain is not None and c.column:  # the column's nulls: GE reports them as missing
                aggs.append(F.count(F.when(F.col(c.column).isNull(), F.lit(1))).alias(f"_missing_{i}"))
        elif c.kind == "aggregate":
            aggs.append(c.aggregate.alias(f"_value_{i}"))
    measured = df.agg(*aggs)
    if nulls:
        measured = measured.crossJoin(_null_counts(base, nulls))
    for i, frame in keyed.items():
        measured = measured.crossJoin(frame.agg(F.coalesce(F.sum("_rows"), F.lit(0)).alias(f"_unexpected_{i}")))
    row = measured.first().asDict()  # one row of counts: the suite's whole measurement
    rows = int(row["_rows"])
    for i, c in compiled.items():
        check = checks[i]
        if c.kind == KEYED:
            unexpected, sample = int(row[f"_unexpected_{i}"]), []
            if unexpected:  # each breaking key's value once per row it has in the batch, up to the sample's size
                for key, n in keyed[i].limit(sample_size).collect():
                    sample += [key] * min(n, sample_size - len(sample))
            results[i] = outcome(check, _mostly(check, unexpected, rows), {
                "element_count": rows, "unexpected_count": unexpected, "unexpected_percent": _percent(unexpected, rows),
                "partial_unexpected_list": sample[:sample_size]})
        elif c.kind == MAP:
            judged, unexpected = int(row[f"_judged_{i}"]), int(row[f"_unexpected_{i}"])
            sample = []
            if unexpected:  # a handful of the values that broke it, read only on failure
                where = c.unexpected if c.domain is None else (c.domain & c.unexpected)
                source = base if i in nulls else df
                if c.pair:
                    sample = [(r[0], r[1]) for r in source.where(where).select(*c.pair).limit(sample_size).collect()]
                else:
                    sample = [r[0] for r in source.where(where).select(c.column).limit(sample_size).collect()]
            result = {"element_count": rows, "unexpected_count": unexpected,
                      "unexpected_percent": _percent(unexpected, judged), "partial_unexpected_list": sample}
            if c.domain is not None and c.column:
                missing = int(row.get(f"_missing_{i}") or 0)
                result.update(missing_count=missing, missing_percent=_percent(missing, rows),
                              unexpected_percent_total=_percent(unexpected, rows),
                              unexpected_percent_nonmissing=_percent(unexpected, judged))
            results[i] = outcome(check, _mostly(check, unexpected, judged), result)
        elif c.kind == "aggregate":
            value = row[f"_value_{i}"]
            results[i] = outcome(check, c.judge(value), {"observed_value": value})
        else:
            results[i] = outcome(check, c.judge(None), {"observed_value": list(df.columns)})
    return rows, results, rest
