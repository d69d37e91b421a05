"""A suite's expectations measured in one aggregate query over its batch, handed to Great Expectations as results.

Great Expectations' Spark engine computes each expectation's metrics with queries of their own (a count, the
unexpected count, a sample of unexpected values, often more): on a 1.1M-event lake the gates cost as much as
curate and export together, and on a ~20k-event day a third of the run. Every expectation Rapport's suites use is
an aggregate over the batch (a count of rows that break it, a max, the row count, the column names), so all of
them are computed together: one query per table. A sample of unexpected values is read only for an expectation
that found some (one small query each, on failure only).

The outcome is a Great Expectations ``ExpectationValidationResult`` per expectation, in the shape its own
validator returns (``SUMMARY`` format): ``ops.quality_results``, the stored results and the Data Docs pages are the
same for users. An expectation this module cannot compile (a type the suites do not use today, or a row condition
other than nullity) is returned to the caller, which validates it with Great Expectations itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

MAP = "map"  # a condition per row: unexpected rows are counted, a sample of their values read on failure


@dataclass(frozen=True)
class Compiled:
    """What one expectation reads: for a column map, the domain (rows it judges) and the unexpected condition;
    for a table or column aggregate, one aggregate expression and the judgement of its value."""
    kind: str  # MAP or "aggregate"
    column: str | None = None
    domain: "Column | None" = None  # None: every row
    unexpected: "Column | None" = None
    aggregate: "Column | None" = None
    judge: Callable[[Any], bool] | None = None


def _row_domain(e) -> "Column | None | bool":
    """The rows an expectation's row condition keeps (None: all rows); False when the condition is not one this
    module compiles."""
    from pyspark.sql import functions as F

    condition = getattr(e, "row_condition", None)
    if condition is None:
        return None
    kind = getattr(condition, "type", None)
    if kind == "nullity":
        column = F.col(condition.column.name)
        return column.isNull() if condition.is_null else column.isNotNull()
    return False


def _between(value, low, high, strict_low, strict_high) -> bool:
    if value is None:
        return False
    if low is not None and (value <= low if strict_low else value < low):
        return False
    return not (high is not None and (value >= high if strict_high else value > high))


def compile_one(e, columns: list[str]) -> Compiled | None:
    """The aggregate form of a Great Expectations expectation object, or None when it is not compiled here."""
    from pyspark.sql import functions as F

    kind = type(e).__name__
    domain = _row_domain(e)
    if domain is False:
        return None
    column = getattr(e, "column", None)
    c = F.col(column) if isinstance(column, str) else None
    present = None if c is None else c.isNotNull()

    def within(cond):
        return cond if domain is None else (domain & cond)

    if kind == "ExpectColumnValuesToNotBeNull":
        return Compiled(MAP, column, domain, c.isNull())
    if kind == "ExpectColumnValuesToBeNull":
        return Compiled(MAP, column, domain, c.isNotNull())
    if kind == "ExpectColumnValuesToBeInSet":
        return Compiled(MAP, column, within(present), ~c.isin(list(e.value_set)))
    if kind == "ExpectColumnValuesToBeBetween":
        low, high = e.min_value, e.max_value
        bad = F.lit(False)
        if low is not None:
            bad = bad | ((c <= F.lit(low)) if getattr(e, "strict_min", False) else (c < F.lit(low)))
        if high is not None:
            bad = bad | ((c >= F.lit(high)) if getattr(e, "strict_max", False) else (c > F.lit(high)))
        return Compiled(MAP, column, within(present), bad)
    if kind == "ExpectColumnValuesToMatchRegex":
        return Compiled(MAP, column, within(present), ~c.cast("string").rlike(e.regex))
    if kind == "ExpectColumnValuesToNotMatchRegex":
        return Compiled(MAP, column, within(present), c.cast("string").rlike(e.regex))
    if kind == "ExpectColumnValueLengthsToEqual":
        return Compiled(MAP, column, within(present), F.length(c.cast("string")) != F.lit(int(e.value)))
    if domain is not None:  # the aggregates below do not take a row condition in Rapport's suites
        return None
    if kind == "ExpectTableRowCountToBeBetween":
        return Compiled("aggregate", aggregate=F.count(F.lit(1)),
                        judge=lambda v: _between(v, e.min_value, e.max_value, bool(getattr(e, "strict_min", False)),
                                                 bool(getattr(e, "strict_max", False))))
    if kind == "ExpectColumnMaxToBeBetween":
        return Compiled("aggregate", column, aggregate=F.max(c),
                        judge=lambda v: _between(v, e.min_value, e.max_value, bool(getattr(e, "strict_min", False)),
                                                 bool(getattr(e, "strict_max", False))))
    if kind == "ExpectTableColumnsToMatchSet":
        wanted, have = set(e.column_set or []), set(columns)
        ok = wanted == have if e.exact_match in (None, True) else wanted <= have
        return Compiled("columns", judge=lambda _v: ok)
    return None


def _mostly(e, unexpected: int, judged: int) -> bool:
    mostly = getattr(e, "mostly", None)
    if mostly is None or mostly >= 1:
        return unexpected == 0
    return judged == 0 or (judged - unexpected) / judged >= float(mostly)


def _percent(part: int, whole: int) -> float | None:
    return None if not whole else 100.0 * part / whole


def evaluate(df: "DataFrame", expected: list, sample_size: int) -> tuple[int, dict[int, Any], list]:
    """Measure ``expected`` (Great Expectations expectation objects) on ``df`` in one aggregate query.

    Returns the batch's row count, the results by position in ``expected`` and the expectations left to Great
    Expectations (those not compiled)."""
    from great_expectations.core import ExpectationValidationResult
    from pyspark.sql import functions as F

    compiled: dict[int, Compiled] = {}
    rest = []
    results: dict[int, Any] = {}
    for i, e in enumerate(expected):
        column = getattr(e, "column", None)
        if isinstance(column, str) and column not in df.columns:  # GE's own outcome: not evaluated, with the reason
            results[i] = ExpectationValidationResult(
                success=False, expectation_config=e.configuration, result={},
                exception_info={"raised_exception": True, "exception_traceback": None,
                                "exception_message": f'column "{column}" does not exist in the batch of '
                                                     f'{len(df.columns)} columns'})
            continue
        c = compile_one(e, df.columns)
        if c is None:
            rest.append(e)
        else:
            compiled[i] = c
    aggs = [F.count(F.lit(1)).alias("_rows")]
    for i, c in compiled.items():
        if c.kind == MAP:
            judged = F.lit(True) if c.domain is None else c.domain
            aggs.append(F.count(F.when(judged, F.lit(1))).alias(f"_judged_{i}"))
            aggs.append(F.count(F.when(judged & c.unexpected, F.lit(1))).alias(f"_unexpected_{i}"))
            if c.domain is not None and c.column:  # the judged rows' nulls: GE reports them as missing
                aggs.append(F.count(F.when(F.col(c.column).isNull(), F.lit(1))).alias(f"_missing_{i}"))
        elif c.kind == "aggregate":
            aggs.append(c.aggregate.alias(f"_value_{i}"))
    row = df.agg(*aggs).first().asDict()  # one row of counts: the suite's whole measurement
    rows = int(row["_rows"])
    for i, c in compiled.items():
        e = expected[i]
        if c.kind == MAP:
            judged, unexpected = int(row[f"_judged_{i}"]), int(row[f"_unexpected_{i}"])
            missing = int(row.get(f"_missing_{i}") or 0)
            sample = []
            if unexpected:  # a handful of the values that broke it, read only on failure
                where = c.unexpected if c.domain is None else (c.domain & c.unexpected)
                sample = [r[0] for r in df.where(where).select(c.column).limit(sample_size).collect()]
            result = {"element_count": rows, "unexpected_count": unexpected,
                      "unexpected_percent": _percent(unexpected, judged),
                      "partial_unexpected_list": sample}
            if c.domain is not None and c.column:
                result.update(missing_count=missing, missing_percent=_percent(missing, rows),
                              unexpected_percent_total=_percent(unexpected, rows),
                              unexpected_percent_nonmissing=_percent(unexpected, judged))
            success = _mostly(e, unexpected, judged)
        elif c.kind == "aggregate":
            value = row[f"_value_{i}"]
            result, success = {"observed_value": value}, c.judge(value)
        else:
            result, success = {"observed_value": list(df.columns)}, c.judge(None)
        results[i] = ExpectationValidationResult(success=bool(success), expectation_config=e.configuration,
                                                 result=result,
                                                 exception_info={"raised_exception": False, "exception_message": None,
                                                                 "exception_traceback": None})
    return rows, results, rest
