"""A suite's expectations as Great Expectations objects over a batch: Rapport's own types (volume against the
previous gate, freshness, future events, references, uniqueness against the rest of the table) expanded into
helper columns and built-in expectations."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from jobs.lake import Lake
from jobs.quality import rates
from jobs.quality.suites import Expectation, Suite

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

def volume_floor(lake: Lake, table: str, max_drop: object, counts: "dict[str, int] | None" = None) -> int:
    """The fewest rows ``volume_vs_previous`` accepts: the previous gate's count less ``max_drop`` of it
    (``counts``: ``previous_counts``, when a gate read them once for all its tables)."""
    prev = (previous_counts(lake) if counts is None else counts).get(table)
    return 0 if prev is None else math.ceil(prev * (1 - float(max_drop)))


def previous_counts(lake: Lake) -> dict[str, int]:
    """Each table's row count at its latest ``volume_vs_previous`` result, for every table in one query."""
    from pyspark.sql import functions as F

    if not lake.exists("ops.quality_results"):
        return {}
    rows = (lake.read("ops.quality_results").where("expectation_type = 'volume_vs_previous'")
            .groupBy("table_name").agg(F.max_by("observed", "evaluated_at").alias("observed"))
            .collect())  # one row per table
    return {r.table_name: int(r.observed) for r in rows if r.observed and r.observed.isdigit()}


COLUMN_SETS = {"expect_table_columns_to_match_set": "column_set", "expect_table_columns_to_match_ordered_list": "column_list"}
UNIQUENESS = {"expect_column_values_to_be_unique": "column", "expect_compound_columns_to_be_unique": "column_list"}


def _unique_columns(e: Expectation) -> list[str]:
    value = e.kwargs[UNIQUENESS[e.type]]
    return [value] if isinstance(value, str) else list(value)


def partitions(name: str) -> tuple[str, ...]:
    from schemas.tables import UnknownTableError, table

    try:
        return table(name).partitioned_by
    except UnknownTableError:
        return ()


def expand(lake: Lake, suite: Suite, df: "DataFrame", end: datetime | None, *, rest: "DataFrame | None" = None,
           table_rows: int | None = None, empty: bool = False, counts: "dict[str, int] | None" = None):
    """The batch with the helper columns a suite's checks read, the checks (``jobs.quality.onepass.Check``: Great
    Expectations expectations as data), and the keyed counts of its uniqueness checks by position in the checks.

    A uniqueness check is "the helper column naming the row's key when the key is not unique is null": its
    unexpected rows are counted from the batch's keys, not joined back to the batch (``keyed``: each key that
    breaks it, as the helper's value, with its number of rows in the batch). ``rest`` (the table's rows outside
    the batch) makes it mean "unique in the batch and against the existing rows with the same keys": only the
    key columns of ``rest`` are read. ``table_rows`` (the whole
    table's count, from the Delta log) is what ``volume_vs_previous`` compares when the batch is not the table.
    ``empty``: the batch is known to hold no row, so no other table is read for it. ``counts``:
    ``previous_counts``, when the gate read them for all its tables."""
    from pyspark.sql import functions as F

    from jobs.quality.onepass import Check

    out, column_sets, keyed = [], [], {}
    columns = set(df.columns)
    for i, e in enumerate(suite.expectations):
        meta = {"severity": e.severity, "rapport_index": i}
        kw = dict(e.kwargs)
        if e.type in UNIQUENESS:  # counted from the batch's keys, measured in the suite's one query
            keys, helper = _unique_columns(e), f"_duplicate__{i}"
            batch_keys = df.select(*keys).where(" AND ".join(f"{k} IS NOT NULL" for k in keys))
            per_key = batch_keys.groupBy(*keys).agg(F.count(F.lit(1)).alias("_rows"))
            flagged = per_key.where("_rows > 1")
            if rest is not None and not set(partitions(suite.table)) <= set(keys):  # a twin can be outside the batch
                # (equal keys share a partition otherwise): every batch row of a key the rest holds is unexpected
                flagged = flagged.unionByName(per_key.join(rest.select(*keys), keys, "left_semi")).distinct()
            keyed[len(out)] = flagged.select(F.concat_ws("|", *[F.col(k).cast("string") for k in keys]).alias(helper),
                                             "_rows")
            out.append(Check("expect_column_values_to_be_null", {"column": helper}, meta))
        elif e.type == "volume_vs_previous":
            if table_rows is None:  # else the batch is part of the table: ``validate`` compares the log's count
                out.append(Check("expect_table_row_count_to_be_between",
                                 {"min_value": volume_floor(lake, suite.table, kw["max_drop"], counts)}, meta))
        elif e.type == rates.TYPE:  # judged from ops.quarantine and ops.ingest_log in ``validate``, not on the batch
            continue
        elif e.type == "freshness":
            # against the window's end; a run without one (manual, all history) measures against its newest row
            reference = end or df.select(F.max(kw["column"])).first()[0] or datetime.now(timezone.utc)
            floor = (reference - timedelta(hours=float(kw["max_lag_hours"]))).replace(tzinfo=None)
            out.append(Check("expect_column_max_to_be_between", {"column": kw["column"], "min_value": floor}, meta))
        elif e.type == "no_future_events":
            helper = f"_future__{i}"
            late = F.col(kw["column"]) > F.col(kw["arrival"]) + F.expr(f"INTERVAL {int(kw['tolerance_minutes'])} MINUTES")
            df = df.withColumn(helper, F.when(late, F.col(kw["column"]).cast("string")))
            out.append(Check("expect_column_values_to_be_null", {"column": helper}, meta))
        elif e.type == "referential":
            layer, table, column = kw["references"].split(".")
            helper = f"_missing__{i}"
            ref = lake.read_or_empty(f"{layer}.{table}").select(F.col(column).alias("_ref_key")).distinct()
            if empty:  # no row to look up: the referenced table is not read
                ref = ref.limit(0)
            df = (df.join(ref, df[kw["column"]] == ref["_ref_key"], "left")
                  .withColumn(helper, F.when(F.col("_ref_key").isNull(), F.col(kw["column"]).cast("string")))
                  .drop("_ref_key"))
            out.append(Check("expect_column_values_to_be_null", {"column": helper}, meta))
        elif e.type in COLUMN_SETS:  # built below, once every helper column is known
            column_sets.append((e.type, kw, meta, COLUMN_SETS[e.type]))
        else:  # any other Great Expectations type: compiled by onepass, or validated by Great Expectations
            out.append(Check(e.type, kw, meta))
    # the helper columns added above are Rapport's, not the table's: a column-set expectation allows them
    helpers = [c for c in df.columns if c not in columns]
    for kind, kw, meta, arg in column_sets:
        out.append(Check(kind, {**kw, arg: [*kw[arg], *helpers]}, meta))
    return df, out, keyed
