"""Read-only SQL over the lake's tables, by role: analysts read; they do not write.

A query is parsed (sqlglot, Spark dialect) before the engine sees it. Only one statement is run, and it
must be a query (``SELECT``, ``WITH … SELECT``, set operations). DML and DDL (``INSERT``, ``UPDATE``,
``DELETE``, ``MERGE``, ``CREATE``, ``DROP`` …) are refused with a message, as are table functions and
tables named by path (``delta.`/lake/…```). Tables are named ``layer.table`` and only those the role
may read are registered in the session:

- ``analyst`` (default): silver, gold, and ops tables that hold no raw personal data;
- ``engineer``: everything, bronze and ``ops.quarantine`` included (they hold raw personal data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.config import Config
from schemas.tables import tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ROLES = ("analyst", "engineer")


class QueryRefused(ValueError):
    """The query is not one Rapport runs for this role; the message says why and what to do."""


def readable(role: str) -> list[str]:
    """Tables a role may read: an analyst nothing that holds raw personal data."""
    if role not in ROLES:
        raise QueryRefused(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    return [t.qualified for t in tables() if role == "engineer" or not t.pii("raw")]


@dataclass(frozen=True)
class Checked:
    sql: str
    tables: tuple[str, ...]


def check(sql: str, role: str = "analyst") -> Checked:
    """The query if it is one read-only statement over tables the role may read; else ``QueryRefused``."""
    import sqlglot
    from sqlglot import exp

    allowed = set(readable(role))
    try:
        statements = [s for s in sqlglot.parse(sql, read="spark") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise QueryRefused(f"the query does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise QueryRefused(f"one statement at a time, please (found {len(statements)})")
    (statement,) = statements
    if not isinstance(statement, exp.Query):
        kind = statement.key.upper() if isinstance(statement, exp.Expression) else type(statement).__name__
        raise QueryRefused(f"rapport sql runs read-only queries; {kind} changes or describes the lake and is refused. "
                           "Write with the pipeline's commands (rapport ingest, refine, curate, privacy).")
    for node in statement.walk():
        if isinstance(node, (exp.Insert, exp.Delete, exp.Update, exp.Merge, exp.Create, exp.Drop, exp.Alter)):
            raise QueryRefused(f"rapport sql runs read-only queries; {node.key.upper()} inside a query is refused")
    ctes = {c.alias_or_name for c in statement.find_all(exp.CTE)}
    named = []
    for t in statement.find_all(exp.Table):
        if not isinstance(t.this, exp.Identifier):
            raise QueryRefused("table functions are not allowed; read tables by name (gold.customer_timeline …)")
        if not t.db and t.name in ctes:
            continue
        name = f"{t.db}.{t.name}" if t.db else t.name
        if name not in allowed:
            if t.db in ("delta", "parquet", "json", "csv", "text", "binaryFile"):
                raise QueryRefused(f"{name}: read tables by name (gold.customer_timeline …), not by path")
            hint = " (it holds raw personal data: ask for --role engineer)" if name in readable("engineer") else ""
            raise QueryRefused(f"{name} is not a table the {role} role can read{hint}. Tables: "
                               f"{', '.join(sorted(allowed))}")
        named.append(name)
    return Checked(sql, tuple(sorted(set(named))))


def run(spark: "SparkSession", cfg: Config, sql: str, role: str = "analyst", limit: int | None = 1000):
    """(columns, rows) of a read-only query, run with only the role's tables registered."""
    from jobs import catalog

    checked = check(sql, role)
    catalog.register(spark, cfg, names=readable(role))
    df = spark.sql(checked.sql)
    rows = df.limit(limit).collect() if limit else df.collect()  # the query's result, which the user asked for
    return df.columns, [tuple(r) for r in rows]
