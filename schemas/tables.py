"""Every Delta table Rapport keeps, declared once as data in ``schemas/<layer>.yaml``.

A table declares its grain, key, partitioning, how it is written and, per column, its Spark
type, its meaning and its personal-data class. Everything that needs to know the tables reads
them from here: ``Lake`` (paths, write modes, empty tables with the declared schema), the SQL
catalog, maintenance, the quality gates, the privacy work, the docs and the tests.

Write modes (implemented by ``jobs.lake.Lake``, nowhere else):
  append              rows are added (logs)
  append_new          rows whose key is not in the table yet are added (idempotent re-runs)
  merge               upsert on the key, with a condition (newer state wins, earliest first_seen …)
  replace_keys        the rows of the touched keys become exactly the new rows (the partitions where one differs)
  replace_partitions  the partitions a run recomputed are replaced (replaceWhere)
  snapshot            the whole table is replaced
  view                not stored: computed from other tables when read (``schemas/views.py``); the catalog registers
                      it by name, ``Lake.read`` builds it

Personal-data classes (``pii``), the map of where a person can be:
  raw         may hold emails, phones, IPs and handles as received (bronze, quarantine): never past bronze
  hashed      keyed HMAC of an email, phone, social id or handle
  identifier  a pseudonymous id that links rows to one person (device, user, order, customer key)
  free_text   text a person typed or a URL: scrubbed of emails, phones, IPs and card numbers before silver
  none        everything not listed

No column of a class other than ``none`` gets min/max statistics in the Delta log, so the log never holds
personal data (not even a customer key), and an erasure leaves nothing behind in it. Of the others, only the
columns a filter can skip files by get them (``Table.stats_columns``): dates, times and integers (landing
windows, event times, versions), unless the table lists its own under ``stats``. Every read of a table parses
the statistics of all its files from the log, so a year of daily partitions with statistics on every column
(ids, hashes, URLs: 2.6 kB a file in ``silver.clickstream_events``) cost a year-old lake 10 ms a read more
than the lean ones (``docs/benchmark.md``, per-read costs); min/max of a random id or a URL skips nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import yaml

if TYPE_CHECKING:
    from pyspark.sql.types import DataType, StructType

SCHEMAS_DIR = Path(__file__).resolve().parent
LAYERS = ("bronze", "silver", "gold", "ops")
WRITE_MODES = ("append", "append_new", "merge", "replace_keys", "replace_partitions", "snapshot", "view")
PII_CLASSES = ("raw", "hashed", "identifier", "free_text")
SKIPPING_TYPES = ("date", "timestamp", "timestamp_ntz", "tinyint", "smallint", "int", "bigint")


class UnknownTableError(KeyError):
    def __str__(self) -> str:
        return self.args[0]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Spark's simpleString: string, bigint, decimal(18,2), array<string>, …
    doc: str
    pii: str = "none"


@dataclass(frozen=True)
class Table:
    layer: str
    name: str
    grain: str
    key: tuple[str, ...]
    partitioned_by: tuple[str, ...]
    write: str
    columns: tuple[Column, ...]
    lineage: bool = False  # rows carry source_file/line_number/landing_dt/landing_hour
    meta: Mapping[str, object] = field(default_factory=dict, compare=False)

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def pii(self, cls: str) -> tuple[str, ...]:
        """Columns of one personal-data class."""
        return tuple(c.name for c in self.columns if c.pii == cls)

    @property
    def stats_columns(self) -> tuple[str, ...]:
        """Columns that get min/max statistics in the Delta log: the declared ``stats``, else every non-personal,
        non-partition column a range filter can skip files by (date, timestamp, integer)."""
        if "stats" in self.meta:
            return tuple(self.meta["stats"] or ())
        return tuple(c.name for c in self.columns if c.pii == "none" and c.name not in self.partitioned_by
                     and c.type.split("(")[0] in SKIPPING_TYPES)

    def properties(self) -> dict[str, str]:
        """The Delta table properties the declaration implies (set at creation; maintenance aligns older tables)."""
        stats = self.stats_columns
        return {"delta.dataSkippingStatsColumns": ",".join(stats)} if stats else \
            {"delta.dataSkippingNumIndexedCols": "0"}

    def schema(self) -> "StructType":
        """The declared schema as a Spark ``StructType`` (imports pyspark; DAG files never call this)."""
        from pyspark.sql.types import StructField, StructType

        return StructType([StructField(c.name, parse_type(c.type), True) for c in self.columns])

    def __str__(self) -> str:
        return self.qualified


def _split(spec: object) -> tuple[str, str]:
    text = str(spec)
    type_, _, doc = text.partition(" | ")
    return type_.strip(), doc.strip()


def _load_layer(layer: str) -> list[Table]:
    raw = yaml.safe_load((SCHEMAS_DIR / f"{layer}.yaml").read_text()) or {}
    out = []
    for name, d in raw.items():
        if name.startswith("_"):  # YAML anchors shared by several tables
            continue
        classes = {col: cls for cls, cols in (d.get("pii") or {}).items() for col in cols}
        unknown = set(classes.values()) - set(PII_CLASSES)
        if unknown:
            raise ValueError(f"schemas/{layer}.yaml: {name} names unknown PII classes {sorted(unknown)}")
        columns = tuple(Column(c, *_split(spec), pii=classes.get(c, "none")) for c, spec in d["columns"].items())
        missing = (set(classes) | set(d.get("key", ())) | set(d.get("partitioned_by") or ())
                   | set(d.get("stats") or ())) - {c.name for c in columns}
        if missing:
            raise ValueError(f"schemas/{layer}.yaml: {name} refers to columns it does not declare: {sorted(missing)}")
        if d.get("write") not in WRITE_MODES:
            raise ValueError(f"schemas/{layer}.yaml: {name} has write mode {d.get('write')!r}; use one of {WRITE_MODES}")
        personal = set(d.get("stats") or ()) & set(classes)
        if personal:
            raise ValueError(f"schemas/{layer}.yaml: {name} asks for statistics on personal columns {sorted(personal)}")
        out.append(Table(layer, name, d.get("grain", ""), tuple(d.get("key", ())), tuple(d.get("partitioned_by") or ()),
                         d["write"], columns, bool(d.get("lineage", False)),
                         {k: v for k, v in d.items() if k not in ("columns", "pii")}))
    return out


@lru_cache(maxsize=1)
def _all() -> dict[str, Table]:
    return {t.qualified: t for layer in LAYERS for t in _load_layer(layer)}


def tables(layer: str | None = None) -> list[Table]:
    """Every declared table (of one layer), in declaration order."""
    return [t for t in _all().values() if layer is None or t.layer == layer]


def table(name: "str | Table") -> Table:
    """A table by its qualified name, e.g. ``silver.orders``."""
    if isinstance(name, Table):
        return name
    try:
        return _all()[name]
    except KeyError:
        raise UnknownTableError(f"no table {name!r} is declared; tables are declared in schemas/<layer>.yaml "
                                f"({', '.join(sorted(_all()))})") from None


# ---- Spark type strings -> DataType, without a session (pyspark's DDL parser needs one)
_SIMPLE = {"string": "StringType", "bigint": "LongType", "long": "LongType", "int": "IntegerType",
           "integer": "IntegerType", "boolean": "BooleanType", "double": "DoubleType", "float": "FloatType",
           "date": "DateType", "timestamp": "TimestampType", "timestamp_ntz": "TimestampNTZType",
           "binary": "BinaryType", "smallint": "ShortType", "tinyint": "ByteType"}


def _top_level_split(text: str, sep: str = ",") -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def parse_type(text: str) -> "DataType":
    from pyspark.sql import types as T

    text = text.strip()
    lower = text.lower()
    if lower in _SIMPLE:
        return getattr(T, _SIMPLE[lower])()
    if lower.startswith("decimal"):
        precision, scale = (int(x) for x in text[text.index("(") + 1 : text.index(")")].split(","))
        return T.DecimalType(precision, scale)
    if lower.startswith("array<"):
        return T.ArrayType(parse_type(text[6:-1]), True)
    if lower.startswith("map<"):
        key, value = _top_level_split(text[4:-1])
        return T.MapType(parse_type(key), parse_type(value), True)
    if lower.startswith("struct<"):
        fields = []
        for part in _top_level_split(text[7:-1]):
            name, _, type_ = part.partition(":")
            fields.append(T.StructField(name.strip(), parse_type(type_), True))
        return T.StructType(fields)
    raise ValueError(f"unknown Spark type {text!r}")
