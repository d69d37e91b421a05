"""What every silver job shares: the landing window, PII hashing, validation output, dedupe, writes.

Every silver row keeps its lineage (``source_file``, ``line_number``, ``landing_dt``,
``landing_hour``), which is what makes refinement idempotent: a row whose lineage is
already in silver was refined before; another row with the same event id is a
duplicate (same content) or an id conflict (different content).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Sequence

from jobs.lake import Lake
from jobs.runs.window import Window

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType

LINEAGE = ("source_file", "line_number", "landing_dt", "landing_hour")
ARRIVAL_SLACK_DAYS = 1  # a delivery time may be at most this far after its file's landing hour
SANE_YEARS = (1900, 2200)  # times outside are not computed with at all (no arithmetic can overflow)
MAX_ID_LENGTH = 512
# Values trackers send for "no id"; they never identify anybody.
JUNK_IDS = ("", "0", "-1", "null", "none", "nil", "undefined", "anonymous", "unknown", "guest", "nan", "n/a", "test")


def arrival_sql() -> str:
    """The end of a row's landing hour: when its file had arrived at the latest."""
    return "timestamp_seconds(unix_seconds(CAST(landing_dt AS TIMESTAMP)) + (landing_hour + 1) * 3600)"


def sane_sql(ts_sql: str) -> str:
    """SQL: the time is within years Rapport computes with (so no date arithmetic on it can overflow)."""
    lo, hi = SANE_YEARS
    return f"({ts_sql} >= TIMESTAMP'{lo}-01-01 00:00:00' AND {ts_sql} < TIMESTAMP'{hi}-01-01 00:00:00')"


def time_checks(name: str, ts_sql: str, earliest, arrival: bool) -> list[tuple[str, str, str]]:
    """Quarantine checks for one parsed time: outside computable years or before RAPPORT_EARLIEST_EVENT is a
    bad_timestamp; for a delivery time (``arrival``), later than its file's arrival (+1 day) is in the future."""
    checks = [("bad_timestamp", f"{ts_sql} IS NOT NULL AND NOT {sane_sql(ts_sql)}",
               f"concat('{name} ', cast({ts_sql} AS STRING), ' is outside any plausible time')"),
              ("bad_timestamp", f"{ts_sql} < TIMESTAMP'{earliest} 00:00:00'",
               f"concat('{name} ', cast({ts_sql} AS STRING), ' is before {earliest} (RAPPORT_EARLIEST_EVENT)')")]
    if arrival:
        checks.append(("future_timestamp", f"{ts_sql} > {arrival_sql()} + INTERVAL {ARRIVAL_SLACK_DAYS} DAYS",
                       f"concat('{name} ', cast({ts_sql} AS STRING), ' is after its file arrived')"))
    return checks


def long_ids(*columns_sql: str) -> tuple[str, str, str]:
    """A wrong_types check: an id longer than MAX_ID_LENGTH characters."""
    cond = " OR ".join(f"length({c}) > {MAX_ID_LENGTH}" for c in columns_sql)
    return ("wrong_types", cond, f"'an id is longer than {MAX_ID_LENGTH} characters'")


def not_object(path: str, column: str = "value", got: str | None = None) -> tuple[str, str, str]:
    """A wrong_types check: a field that must be a JSON object holds something else. ``got``: SQL for the
    field's raw JSON text when the caller has it already (else read from ``column``)."""
    got = got or f"get_json_object({column}, '$.{path}')"
    return ("wrong_types", f"{got} IS NOT NULL AND NOT ltrim({got}) LIKE '{{%'",
            f"concat('{path} is not an object: ', substr({got}, 1, 40))")


def odd_types(objects: Sequence[str], longs: Sequence[str] = (), doubles: Sequence[str] = ()) -> str:
    """A regex that matches every JSON line on which a field that must be an object (``objects``), an integer
    (``longs``) or a number (``doubles``) may hold something its type cannot: one of the object keys followed by a
    value that opens otherwise (a null too); an integer key followed by anything but digits (a fraction, an
    exponent, a string) or by 19 digits or more; a number key followed by what opens no number; a value too large
    for a double (Sail reads such a line as no record at all, docs/sail-gaps.md gap 20, so no check reads its raw
    text today; matched all the same); a key written with an escape (JSON reads "\\u0070rice" as price). The
    checks that read a field's raw text (a second parse of the line) run on the lines it matches only: on every
    other line the typed parse says all there is to say."""
    parts = [rf'"(?:{"|".join(objects)})"\s*:\s*[^{{\s]'] if objects else []
    if doubles:
        parts.append(rf'"(?:{"|".join(doubles)})"\s*:\s*[^-0-9\s]')
    if longs:
        parts += [rf'"(?:{"|".join(longs)})"\s*:\s*-?[0-9]*[^0-9,}}\s]', rf'"(?:{"|".join(longs)})"\s*:\s*-?[0-9]{{19}}']
    return "|".join(parts + [r':\s*-?[0-9.]+[eE][-+]?[0-9]{3}', r':\s*-?[0-9]{300}', r'\\u'])


def read_fields(struct: "StructType", paths: Sequence[str]) -> "StructType":
    """``struct`` with only the fields at ``paths`` (dotted; a path names a field whole, with everything in it), in
    their order and with their types: the schema a parse gives ``from_json`` when it reads a few fields of a wide
    spec. A field a line holds but the schema leaves out is not built at all; Sail reads every other field the same
    whether or not its neighbours are in the schema. An unknown path is an error, not a silent null."""
    from pyspark.sql.types import StructType

    names = {f.name for f in struct.fields}
    unknown = sorted({p.split(".", 1)[0] for p in paths} - names)
    if unknown:
        raise KeyError(f"no field {', '.join(unknown)} in {struct.simpleString()[:80]}…")
    kept = []
    for f in struct.fields:
        inner = [p.split(".", 1)[1] for p in paths if p.startswith(f.name + ".")]
        if f.name in paths:
            kept.append(f)
        elif inner:
            if not isinstance(f.dataType, StructType):
                raise KeyError(f"{f.name} is not a struct: {', '.join(inner)} cannot be read in it")
            kept.append(type(f)(f.name, read_fields(f.dataType, inner), f.nullable))
    return StructType(kept)


def phone_sql(column_sql: str) -> str:
    """A phone number as it is hashed: its digits and a leading +, so '+44 20 7946 0958' and '+442079460958'
    are the same person."""
    return f"nullif(regexp_replace({column_sql}, '[^0-9+]', ''), '')"


def clean_id(column_sql: str) -> str:
    """An identifier, or NULL when it is one of the junk values trackers send."""
    junk = ", ".join(f"'{j}'" for j in JUNK_IDS)
    return f"CASE WHEN lower(trim({column_sql})) IN ({junk}) THEN NULL ELSE {column_sql} END"


def bronze_window(lake: Lake, source: str, window: Window) -> "DataFrame | None":
    """The window's bronze lines still to parse: lines whose raw value retention dropped were refined (and
    reconciled) before it could, so their silver rows, quarantine rows and counts stand as they are."""
    if not lake.exists(f"bronze.{source}"):
        return None
    return lake.read(f"bronze.{source}").where(window.sql()).where("expired_at IS NULL")


def failure_sql(checks: Sequence[tuple[str, str, str]]) -> tuple[str, str, str]:
    """SQL of (the 1-based position of the first check whose condition holds, 0 for none; the reason at a position
    ``{at}``; the detail at it). Flat, not nested: one array of the conditions. As a chain of N nested CASEs,
    Sail's cost grew far faster than N over rows with arrays (orders' line items: 12 rules took 0.75 s on 6,000
    rows; flat, 0.03 s). A quarantined row always says why, even where its detail expression meets a null."""
    conds = ", ".join(f"coalesce({cond}, false)" for _, cond, _ in checks)
    names = ", ".join("'" + name + "'" for name, _, _ in checks)
    details = ", ".join(f"coalesce(CAST({det} AS STRING), '{name}')" for name, _, det in checks)
    return (f"coalesce(array_position(array({conds}), true), 0)",
            f"CASE WHEN {{at}} > 0 THEN element_at(array({names}), CAST({{at}} AS INT)) END",
            f"CASE WHEN {{at}} > 0 THEN element_at(array({details}), CAST({{at}} AS INT)) END")


def first_failure(df: "DataFrame", checks: Sequence[tuple[str, str, str]], at: str = "_check_at"
                  ) -> tuple["DataFrame", "Column", "Column"]:
    """``df`` with the position of the first (reason, condition SQL, detail SQL) whose condition holds in a column
    ``at`` of its own (``failure_sql``), and the (reason, detail) columns that read it. Computed once: written into
    both columns, the conditions were in the plan four times, and planning them cost more than parsing a day's
    lines (0.3 s of 0.8 s for the clickstream parse of 10 lines; Sail gap 16)."""
    from pyspark.sql import functions as F

    if not checks:
        return df, F.lit(None).cast("string"), F.lit(None).cast("string")
    position, reason, detail = failure_sql(checks)
    return df.withColumn(at, F.expr(position)), F.expr(reason.format(at=at)), F.expr(detail.format(at=at))


def repeated_keys(batch: "DataFrame", keys: Sequence[str]) -> "DataFrame":
    """The keys that occur more than once in the batch (few: a hash aggregation over the keys only). Pure."""
    return batch.groupBy(*keys).count().where("count > 1").select(*keys)


def classify_duplicates(batch: "DataFrame", existing: "DataFrame | None", keys: Sequence[str],
                        repeated: "DataFrame | None" = None) -> "DataFrame":
    """Adds ``dedupe_status``: new, already (refined before), duplicate or id_conflict; and ``duplicate_of``.

    Within the batch the earliest arrival (then file, then line) of a key wins; against
    existing silver rows (which carry ``fingerprint`` and lineage) the existing row wins.

    ``repeated`` (``repeated_keys`` of the batch, materialised): only the rows of those keys are ranked in a window;
    every other row is the first of its key. A window sorts whole rows, raw line included: on 900,000 clickstream
    events ranking all of them took 19 s, ranking the repeated ones 5 s, with the same result.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    here = F.concat_ws(":", "source_file", "line_number")
    w = Window.partitionBy(*keys).orderBy("arrival_ts", "source_file", "line_number")

    def rank(df: "DataFrame") -> "DataFrame":
        return (df.withColumn("_rank", F.row_number().over(w)).withColumn("_first_fp", F.first("fingerprint").over(w))
                .withColumn("_first_at", F.first(here).over(w)))

    if repeated is None:
        ranked = rank(batch)
    else:
        once = (batch.join(repeated, list(keys), "left_anti").withColumn("_rank", F.lit(1))
                .withColumn("_first_fp", F.col("fingerprint")).withColumn("_first_at", here))
        ranked = rank(batch.join(repeated, list(keys), "left_semi")).unionByName(once)
    if existing is not None:
        ex = existing.select(*keys, F.col("fingerprint").alias("_ex_fp"),
                             F.concat_ws(":", "source_file", "line_number").alias("_ex_at")).dropDuplicates(list(keys))
        ranked = ranked.join(ex, list(keys), "left")
    else:
        ranked = ranked.withColumn("_ex_fp", F.lit(None).cast("string")).withColumn("_ex_at", F.lit(None).cast("string"))
    status = (F.when(F.col("_ex_at").isNotNull() & (F.col("_ex_at") == here), "already")
              .when(F.col("_ex_at").isNotNull() & (F.col("_ex_fp") == F.col("fingerprint")), "duplicate")
              .when(F.col("_ex_at").isNotNull(), "id_conflict")
              .when(F.col("_rank") == 1, "new")
              .when(F.col("_first_fp") == F.col("fingerprint"), "duplicate")
              .otherwise("id_conflict"))
    return (ranked.withColumn("dedupe_status", status)
            .withColumn("duplicate_of", F.when(F.col("dedupe_status").isin("duplicate", "id_conflict"),
                                               F.coalesce("_ex_at", "_first_at")))
            .drop("_rank", "_first_fp", "_first_at", "_ex_fp", "_ex_at"))


def quarantine(lake: Lake, source: str, rows: "DataFrame", run_id: str, now: datetime) -> None:
    """Silver-layer quarantine rows (reason, detail, raw ``value`` + lineage) into ops/quarantine, idempotently,
    on the engine.

    Sail 0.7.0 once computed NULL reasons for a filtered checkpoint inside a write plan (social, windowed
    refine) while ``collect()`` of the same frame was right, and this went through the client. On 0.7.2 the
    reproduction (``tests/jobs/silver/test_sail_faults.py``) passes, so the rows stay on the engine.
    """
    from pyspark.sql import functions as F

    out = rows.select(F.lit(source).alias("source"), F.lit("silver").alias("layer"), "reason", "detail",
                      F.col("value").alias("raw"), F.lit(None).cast("binary").alias("raw_bytes"), "source_file",
                      "line_number", "landing_dt", "landing_hour", F.lit(run_id).alias("run_id"),
                      F.lit(now).cast("timestamp").alias("quarantined_at"))
    lake.append_new("ops.quarantine", out, scope=f"source = '{source}' AND layer = 'silver'")


def record_duplicates(lake: Lake, source: str, rows: "DataFrame", key_sql: str, run_id: str) -> None:
    from pyspark.sql import functions as F

    out = rows.select(F.lit(source).alias("source"), F.expr(key_sql).alias("event_key"), "duplicate_of",
                      "source_file", "line_number", "landing_dt", "landing_hour", F.lit(run_id).alias("run_id"))
    lake.append_new("ops.duplicates", out)
