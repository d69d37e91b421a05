"""Schemas of the tables Rapport itself keeps: bronze rows, quarantine, the ingest log, the audit."""

from pyspark.sql.types import (
    DateType, IntegerType, LongType, StringType, StructField, StructType, TimestampType,
)


def _f(name: str, dtype, nullable: bool = True) -> StructField:
    return StructField(name, dtype, nullable)


# What the client stages for the engine: one row per readable line, or per unreadable gzip member.
STAGED = StructType([
    _f("value", StringType()), _f("source_file", StringType(), False), _f("line_number", LongType(), False),
    _f("landing_dt", DateType(), False), _f("landing_hour", IntegerType(), False),
    _f("reason", StringType()), _f("detail", StringType()),
])

BRONZE = StructType([
    _f("value", StringType(), False), _f("source_file", StringType(), False), _f("line_number", LongType(), False),
    _f("landing_dt", DateType(), False), _f("landing_hour", IntegerType(), False),
    _f("run_id", StringType(), False), _f("ingested_at", TimestampType(), False),
])

QUARANTINE = StructType([
    _f("source", StringType(), False), _f("layer", StringType(), False), _f("reason", StringType(), False),
    _f("detail", StringType()), _f("raw", StringType()), _f("source_file", StringType(), False),
    _f("line_number", LongType(), False), _f("landing_dt", DateType(), False), _f("landing_hour", IntegerType(), False),
    _f("run_id", StringType(), False), _f("quarantined_at", TimestampType(), False),
])

INGEST_LOG = StructType([
    _f("source", StringType(), False), _f("path", StringType(), False), _f("size", LongType(), False),
    _f("version", StringType(), False), _f("landing_dt", DateType(), False), _f("lines", LongType(), False),
    _f("blank_lines", LongType(), False), _f("corrupt_members", LongType(), False),
    _f("bronze_rows", LongType(), False), _f("quarantined", LongType(), False),
    _f("run_id", StringType(), False), _f("ingested_at", TimestampType(), False),
])
