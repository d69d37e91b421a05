"""The one module that reads and writes Delta tables: where they live, and every write mode Rapport uses.

Tables are declared in ``schemas/<layer>.yaml`` (``schemas.tables``) and live at
``<lake_root>/<layer>/<name>``. Every write goes through a method named after the table's declared
write mode, which conforms the rows to the declared schema first (a column the declaration does
not know, or one it misses, is an error, never a silent change). No other module writes ``MERGE``,
``DELETE`` or an overwrite of a table. What Sail lacks (history, compaction, vacuum, existence
checks without a read) goes through delta-rs on the same files.

Why it is one module of some 530 lines: the promise that no other module writes a table holds only while every
write mode, its conforming and its engine workarounds sit together, where one review sees them all.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Iterable

from jobs.config import Config
from schemas.tables import LAYERS, Table, table
from schemas.views import VIEWS
from jobs.runs.run_id import RunId
from jobs.sql_text import in_list, sql_string
from jobs.storage import is_s3, local_root, remove_tree

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

STAGING = "_staging"
FLOORS = "_history_floors.json"  # per table, the first version still readable after a vacuum that deleted at once
MAKER = {"bronze": "rapport ingest", "silver": "rapport refine", "gold": "rapport curate"}


def sql_literal(value: object) -> str:
    """A Python value as a SQL literal (dates, timestamps, numbers, strings; None is NULL)."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return f"TIMESTAMP'{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return sql_string(str(value))


def partitions_sql(columns: tuple[str, ...], values: set[tuple]) -> str:
    """A SQL condition selecting exactly the partitions ``values`` (tuples in ``columns`` order); FALSE for none."""
    if not values:
        return "FALSE"
    if len(columns) == 1:
        plain = sorted(v[0] for v in values if v[0] is not None)
        parts = [f"{columns[0]} IN ({', '.join(sql_literal(v) for v in plain)})"] if plain else []
        if any(v[0] is None for v in values):
            parts.append(f"{columns[0]} IS NULL")
        return " OR ".join(parts)
    return " OR ".join("(" + " AND ".join(f"{c} <=> {sql_literal(x)}" for c, x in zip(columns, v)) + ")"
                       for v in sorted(values, key=str))


def partition_condition(df: "DataFrame", columns: tuple[str, ...], prefix: str = "") -> str:
    """The partitions ``df``'s rows fall in, as a SQL condition on the columns named with ``prefix`` (``t.`` in a
    MERGE); a listing of partition values comes back."""
    values = {tuple(r) for r in df.select(*columns).distinct().collect()}
    return partitions_sql(tuple(f"{prefix}{c}" for c in columns), values)


class MissingTableError(RuntimeError):
    """A table a step needs has not been made yet; the message names the command that makes it."""


class VersionGone(RuntimeError):
    """An earlier version of a table was vacuumed (erasure, a key rotation): it cannot be read any more."""


class SchemaMismatchError(RuntimeError):
    """A job produced other columns than its table declares in schemas/<layer>.yaml."""


class Lake:
    def __init__(self, cfg: Config, spark: "SparkSession | None" = None):
        self.cfg = cfg
        self.spark = spark
        self.root = cfg.lake_root.rstrip("/") if is_s3(cfg.lake_root) else local_root(cfg.lake_root)

    # ---- where things are
    def path(self, name: "str | Table") -> str:
        t = table(name)
        return f"{self.root}/{t.layer}/{t.name}"

    def staging(self, run_id: str, name: str = "") -> str:
        return f"{self.root}/{STAGING}/{run_id}" + (f"/{name}" if name else "")

    def storage_options(self) -> dict[str, str]:
        """delta-rs options for the same storage Spark writes to."""
        c = self.cfg
        opts = {"AWS_REGION": c.s3_region}
        if c.s3_endpoint_url:
            opts["AWS_ENDPOINT_URL"] = c.s3_endpoint_url
            opts["AWS_ALLOW_HTTP"] = "true" if c.s3_endpoint_url.startswith("http://") else "false"
        if c.aws_access_key_id:
            opts["AWS_ACCESS_KEY_ID"] = c.aws_access_key_id
            opts["AWS_SECRET_ACCESS_KEY"] = c.aws_secret_access_key or ""
        return opts if is_s3(self.root) else {}

    def exists(self, name: "str | Table") -> bool:
        """Whether the table is stored here; for a view (``schemas.views``), whether what it reads is."""
        if table(name).write == "view":
            return all(self.exists(n) for n in VIEWS[table(name).qualified].inputs)
        return self.version(name) is not None

    def existing(self, layer: str | None = None) -> list[Table]:
        """Declared tables stored in this lake (views, computed when read, are not)."""
        from schemas.tables import tables

        return [t for t in tables(layer) if t.write != "view" and self.exists(t)]

    def table_key(self, name: "str | Table") -> list[str]:
        return list(table(name).key)

    def version(self, name: "str | Table") -> int | None:
        """The newest committed version, from the names of the log's commit files (``<version>.json``): one listing,
        no snapshot loaded, so its cost does not grow with the table's files. None when the table is not stored."""
        versions = [int(n[:-5]) for n in self._log_names(name) if n.endswith(".json") and n[:-5].isdigit()]
        return max(versions) if versions else None

    def _log_names(self, name: "str | Table") -> list[str]:
        """The names of the files in a table's ``_delta_log`` (empty when it has none)."""
        path = self.path(name)
        if not is_s3(path):
            try:
                return os.listdir(os.path.join(path, "_delta_log"))
            except (FileNotFoundError, NotADirectoryError):
                return []
        from pyarrow import fs as pafs

        from jobs.storage import arrow_filesystem

        filesystem, root = arrow_filesystem(self.cfg, path)
        infos = filesystem.get_file_info(pafs.FileSelector(f"{root}/_delta_log", allow_not_found=True))
        return [i.base_name for i in infos]

    def files(self, name: "str | Table", version: int | None = None):
        """The data files of a version with their statistics (delta-rs, the log only): a pyarrow table of add actions."""
        import pyarrow as pa
        from deltalake import DeltaTable

        dt = DeltaTable(self.path(name), version=version, storage_options=self.storage_options() or None)
        return pa.table(dt.get_add_actions(flatten=True))

    def dates(self, name: "str | Table") -> set[date]:
        """The dates that hold files now, of a table partitioned by one date (the log only, no data read)."""
        values = self.files(name).column(f"partition.{table(name).partitioned_by[0]}").to_pylist()
        return {partition_date(v) for v in values if v is not None}

    def rows(self, name: "str | Table", version: int | None = None) -> int | None:
        """The row count from the log's per-file record counts (None if a file has none): no data read."""
        return record_count(self.files(name, version))

    def changed_partitions(self, name: "str | Table", since: int, until: int | None = None,
                           kinds: tuple[str, ...] = ("add", "remove")) -> set[tuple] | None:
        """The partitions (value tuples, in ``partitioned_by`` order, typed as the columns are declared) whose data
        changed after version ``since``: those of the files added or removed by the commits since, except a
        compaction's (``dataChange: false``: the same rows in fewer files). What a reader of that version has not
        seen. From the log only: each commit's actions are read, no data. ``until``: up to that version (default
        the newest); ``kinds``: only files added (``("add",)``), say. None when a commit since is no longer in the
        log, or ``since`` is later than the table."""
        now = self.version(name) if until is None else until
        if now is None or now < since:
            return None
        t = table(name)
        columns = t.partitioned_by
        types = {f.name: f.dataType.simpleString() for f in t.schema().fields}

        def typed(column: str, value: str | None):  # the log writes partition values as text
            if value is None:
                return None
            kind = types.get(column, "string")
            return date.fromisoformat(value) if kind == "date" else int(value) if kind in ("int", "bigint") else value

        out: set[tuple] = set()
        for _, actions in self._commits(name, since + 1, now):
            if actions is None:  # cleaned up from the log
                return None
            for action in actions:
                for kind in kinds:
                    file = action.get(kind)
                    if file is not None and file.get("dataChange", True):
                        values = file.get("partitionValues") or {}
                        out.add(tuple(typed(c, values.get(c)) for c in columns))
        return out

    def same_rows_until(self, name: "str | Table", since: int) -> int:
        """The newest version that holds exactly the rows of version ``since`` (with the same schema): ``since``, or a
        later one when the commits between only rewrote files (a compaction: ``dataChange: false``). From the log
        only."""
        now = self.version(name)
        if now is None or now <= since:
            return since
        for version, actions in self._commits(name, since + 1, now):
            if actions is None or any(  # cleaned up from the log, or a change of rows, schema, protocol or transaction
                    set(a) - {"add", "remove", "commitInfo"} or any((a.get(k) or {}).get("dataChange", True)
                                                                    for k in ("add", "remove") if k in a)
                    for a in actions):
                return version - 1
        return now

    def _commits(self, name: "str | Table", first: int, last: int):
        """(version, its actions) for each commit from ``first`` to ``last`` in the log; actions are None for a
        commit no longer in the log."""
        from jobs.storage import arrow_filesystem

        fs, root = arrow_filesystem(self.cfg, self.path(name))
        for version in range(first, last + 1):
            try:
                with fs.open_input_stream(f"{root}/_delta_log/{version:020d}.json") as f:
                    lines = f.read().decode().splitlines()
            except (FileNotFoundError, OSError):
                yield version, None
                return
            yield version, [json.loads(line) for line in lines if line.strip()]

    def newest(self, name: "str | Table", column: str):
        """The greatest value of a column from the log's per-file statistics, or None when a file has none (the
        column is not indexed, or a file was written without statistics): no data read."""
        files = self.files(name)
        values = files.column(f"max.{column}").to_pylist() if f"max.{column}" in files.column_names else [None]
        return None if not values or any(v is None for v in values) else max(values)

    def delta_table(self, name: "str | Table"):
        """The delta-rs handle, for what Spark Connect cannot do (history, compaction, vacuum)."""
        from deltalake import DeltaTable

        return DeltaTable(self.path(name), storage_options=self.storage_options() or None)

    def vacuum_now(self, names: Iterable["str | Table"], what: str) -> int:
        """Delete the files of every earlier version of the tables at once (zero retention: erasure, suppressed
        lines), after every reader that began before now has finished (``lease.reading``); returns files removed.
        Ordinary maintenance keeps a week of versions instead (``jobs.maintenance``)."""
        import time

        from jobs.runs import lease

        lease.wait_for_readers(self.cfg, time.time(), what)
        removed, floors = 0, self.read_record(FLOORS) or {}
        for n in names:
            if self.exists(n):
                dt = self.delta_table(n)
                floors[table(n).qualified] = dt.version()  # earlier versions lose their files now
                self.write_record(FLOORS, floors)
                removed += len(dt.vacuum(retention_hours=0, dry_run=False, enforce_retention_duration=False))
        return removed

    # ---- small JSON records beside the tables (key chain, history floors, a rotation's progress)
    def read_record(self, name: str) -> dict | None:
        from jobs.storage import arrow_filesystem

        fs, root = arrow_filesystem(self.cfg, self.root)
        try:
            with fs.open_input_stream(f"{root}/{name}") as f:
                return json.loads(f.read() or b"{}")
        except (FileNotFoundError, OSError):
            return None

    def write_record(self, name: str, body: dict | None) -> None:
        """Write (or, with None, delete) the record ``name`` at the lake's root."""
        from jobs.storage import arrow_filesystem

        fs, root = arrow_filesystem(self.cfg, self.root)
        if body is None:
            try:
                fs.delete_file(f"{root}/{name}")
            except (FileNotFoundError, OSError):
                pass
            return
        if not is_s3(self.root):
            fs.create_dir(root, recursive=True)
        with fs.open_output_stream(f"{root}/{name}") as f:
            f.write(json.dumps(body, indent=2).encode())

    # ---- reading
    def _session(self) -> "SparkSession":
        if self.spark is None:
            raise RuntimeError("this Lake was made without a SparkSession; pass one to read or write tables")
        return self.spark

    def read(self, name: "str | Table", version: int | None = None) -> "DataFrame":
        """The table, or an earlier version of it. Sail 0.7.2 cannot read some versions older than a later log
        checkpoint, which it writes every 10 commits (docs/sail-gaps.md, gap 7): those are read as a later version with
        the same rows when only compactions came between (``same_rows_until``), else from their data files as
        delta-rs lists them (slower: a scan per partition)."""
        if table(name).write == "view":
            return self._view(table(name).qualified, version)
        if version is None or version == self.version(name):
            return self._session().read.format("delta").load(self.path(name))
        floor = (self.read_record(FLOORS) or {}).get(table(name).qualified, 0)
        if version < floor:
            raise VersionGone(f"{table(name).qualified} version {version} was vacuumed (an erasure or a key rotation "
                              f"removed earlier versions' files); the earliest readable version is {floor}")
        df = self._sail_version(name, version)
        if df is None:  # compactions since: a later version holds the same rows, and Sail may read that one
            same = self.same_rows_until(name, version)
            df = self._sail_version(name, same) if same > version else None
        return df if df is not None else self._read_files(name, version)

    def _sail_version(self, name: "str | Table", version: int) -> "DataFrame | None":
        """A version as Sail reads it, or None where it cannot (gap 7)."""
        df = self._session().read.format("delta").option("versionAsOf", version).load(self.path(name))
        try:
            df.schema  # analysis reads that version's log: it fails at once where Sail cannot read it
        except Exception as exc:
            if "Missing commit file" not in str(exc):
                raise
            return None
        return df

    def _view(self, name: str, version: int | None) -> "DataFrame":
        """A view over the tables as they are now (a view has no versions: read its inputs as of then instead)."""
        if version is not None:
            raise ValueError(f"{name} is a view and has no versions; read what it reads at a version "
                             f"({', '.join(VIEWS[name].inputs)}) and apply schemas.views to them")
        view = VIEWS[name]
        return view.frame(*(self.read(n) for n in view.inputs))

    def _read_files(self, name: "str | Table", version: int) -> "DataFrame":
        """One version of a table from the files its log lists (the engine reads them). Partition values are in
        the log, not in the files: each partition's files are read apart and given theirs."""
        from urllib.parse import unquote

        import pyarrow as pa
        from deltalake import DeltaTable
        from pyspark.sql import functions as F
        from pyspark.sql.types import StructType

        dt = DeltaTable(self.path(name), version=version, storage_options=self.storage_options() or None)
        schema = StructType.fromJson(json.loads(dt.schema().to_json()))
        partitioned = list(dt.metadata().partition_columns)
        groups: dict[tuple, list[str]] = {}
        for a in pa.table(dt.get_add_actions(flatten=True)).to_pylist():  # a listing of files
            values = tuple(a[f"partition.{c}"] for c in partitioned)
            groups.setdefault(values, []).append(f"{self.path(name)}/{unquote(a['path'])}")
        if not groups:
            return self._session().createDataFrame([], schema)
        data = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in schema.fields if f.name not in partitioned)
        reader = self._session().read.schema(data)  # DDL: Sail does not parse a schema sent as JSON
        parts = []
        for values, paths in sorted(groups.items(), key=str):
            value = dict(zip(partitioned, values))
            parts.append(reader.parquet(*paths).select(*[
                F.lit(value[f.name]).cast(f.dataType).alias(f.name) if f.name in value else F.col(f.name)
                for f in schema.fields]))
        out = parts[0]
        for p in parts[1:]:
            out = out.unionByName(p)
        return out

    def require(self, name: "str | Table") -> "DataFrame":
        """A table an earlier step must have made; a clear error, naming that step, if it has not."""
        t = table(name)
        if not self.exists(t):
            raise MissingTableError(f"{t.qualified} does not exist yet under {self.root}; run "
                                    f"`{MAKER.get(t.layer, 'the pipeline')}` first (or check RAPPORT_LAKE_ROOT).")
        return self.read(t)

    def read_or_empty(self, name: "str | Table") -> "DataFrame":
        """The table, or no rows with its declared schema when it does not exist (a source that never landed)."""
        t = table(name)
        return self.read(t) if self.exists(t) else self._session().createDataFrame([], t.schema())

    def frame(self, name: "str | Table", rows: list[tuple]) -> "DataFrame":
        """A small DataFrame of the table's declared schema from rows made here (logs, audits, gate results)."""
        return self._session().createDataFrame(rows, table(name).schema())

    # ---- writing: one method per declared write mode
    def conform(self, name: "str | Table", df: "DataFrame") -> "DataFrame":
        """The rows with exactly the declared columns, in declared order and types."""
        from pyspark.sql import functions as F

        t = table(name)
        if "expired_at" in t.column_names and "expired_at" not in df.columns:  # set by retention only, later
            df = df.withColumn("expired_at", F.lit(None).cast("timestamp"))
        have, want = set(df.columns), set(t.column_names)
        if have != want:
            raise SchemaMismatchError(
                f"{t.qualified}: the job produced columns {sorted(have - want) or 'none'} that schemas/{t.layer}.yaml "
                f"does not declare, and lacks {sorted(want - have) or 'none'} that it does; change the job or the "
                "declaration so they agree.")
        schema = t.schema()
        return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])

    def _writer(self, t: Table, df: "DataFrame", mode: str):
        writer = self.conform(t, df).write.format("delta").mode(mode)
        if t.partitioned_by:
            writer = writer.partitionBy(*t.partitioned_by)
        for key, value in t.properties().items():  # kept by the table it creates; later writes follow them
            writer = writer.option(key, value)
        return writer

    def ensure(self, name: "str | Table") -> None:
        """Create the table empty with its declared schema (partitioning, properties) if it does not exist."""
        t = table(name)
        if not self.exists(t):
            self._writer(t, self._session().createDataFrame([], t.schema()), "append").save(self.path(t))

    def _check(self, t: Table, *modes: str) -> None:
        if t.write not in modes:
            raise ValueError(f"{t.qualified} is declared with write mode {t.write!r}, not {'/'.join(modes)}")

    def append(self, name: "str | Table", df: "DataFrame") -> None:
        t = table(name)
        self._check(t, "append", "append_new")
        self.ensure(t)
        self._writer(t, df, "append").save(self.path(t))

    def append_new(self, name: "str | Table", df: "DataFrame", keys: Iterable[str] | None = None,
                   scope: str | None = None) -> None:
        """Append the rows whose key is not in the table yet: re-running the same input adds nothing.
        ``scope`` (a SQL condition, on partition columns ideally) limits the existing rows compared against
        to those the new rows can collide with."""
        t = table(name)
        self._check(t, "append_new")
        keys = list(keys or t.key)
        if self.exists(t):
            existing = self.read(t) if scope is None else self.read(t).where(scope)
            df = df.join(existing.select(*keys).distinct(), keys, "left_anti")
        self.ensure(t)
        self._writer(t, df, "append").save(self.path(t))

    def merge(self, name: "str | Table", df: "DataFrame", when: str | None = None, update: Iterable[str] | None = None,
              on: Iterable[str] | None = None, stays: bool = False, rarely: bool = False) -> None:
        """Upsert on the key (or ``on``): insert what is new; update what matches (where ``when`` holds, a SQL
        condition over ``t.`` and ``s.``), all columns or only ``update``.

        ``stays``: a key's row never changes partition (an order's creation date), so only the partitions of
        ``df``'s rows are matched against (their values are listed first): the engine reads those files, not the
        whole table, to find the matches.

        ``rarely``: a row that matches seldom needs its update (an identity link seen again, rarely earlier than
        first known). The rows that are new or need one are found first from the key columns alone; the new ones
        are appended, and a MERGE (which rewrites every file holding a match) runs only for the others, if any. Two
        commits; running it again changes nothing."""
        t = table(name)
        self._check(t, "merge")
        rows = self.conform(t, df)
        if not self.exists(t):
            self._writer(t, rows, "append").save(self.path(t))
            return
        on = list(on or t.key)
        view = f"_merge_{uuid.uuid4().hex[:12]}"
        cond = " AND ".join(f"t.{c} = s.{c}" for c in on)
        if rarely and when is not None:
            scratch = str(RunId.new("merge"))  # a run's name: maintenance clears it if this process dies
            try:
                self._merge_rare(t, rows, view, cond, when, on, scratch, update)
            finally:
                remove_tree(self.cfg, self.staging(scratch))
            return
        self._merge(t, rows, view, cond, when, update, stays)

    def _merge_rare(self, t: Table, rows: "DataFrame", view: str, cond: str, when: str, on: list[str], scratch: str,
                    update: Iterable[str] | None) -> None:
        """``merge(..., rarely=True)``: append the new rows, MERGE only those whose ``when`` holds."""
        rows.createOrReplaceTempView(view)
        compared = sorted({*on, *(c for c in t.column_names if f"t.{c}" in when)})
        current = self.read(t).select(*compared)
        current.createOrReplaceTempView(f"{view}_t")
        marked = self._session().sql(
            f"SELECT s.*, t.{on[0]} IS NULL AS _new FROM {view} s LEFT JOIN {view}_t t ON {cond} "
            f"WHERE t.{on[0]} IS NULL OR ({when})")
        marked = self.checkpoint(marked, scratch, "rows")  # read twice below, the table written between
        self._session().catalog.dropTempView(f"{view}_t")
        self._session().catalog.dropTempView(view)
        self._writer(t, self.conform(t, marked.where("_new").drop("_new")), "append").save(self.path(t))
        rows = self.conform(t, marked.where("NOT _new").drop("_new"))
        if rows.limit(1).count():  # a count: some row needs its update
            self._merge(t, rows, view, cond, when, update, False)

    def _merge(self, t: Table, rows: "DataFrame", view: str, cond: str, when: str | None,
               update: Iterable[str] | None, stays: bool) -> None:
        """One MERGE of ``rows`` into ``t`` on ``cond`` (see ``merge``)."""
        if stays and t.partitioned_by:
            where = partition_condition(rows, tuple(t.partitioned_by), prefix="t.")
            if where == "FALSE":  # no row to merge
                return
            cond += "".join(f" AND t.{c} <=> s.{c}" for c in t.partitioned_by) + f" AND ({where})"
        rows.createOrReplaceTempView(view)
        setting = "*" if update is None else ", ".join(f"t.{c} = s.{c}" for c in update)
        self._session().sql(f"""
            MERGE INTO delta.`{self.path(t)}` t USING {view} s ON {cond}
            WHEN MATCHED{f' AND ({when})' if when else ''} THEN UPDATE SET {setting}
            WHEN NOT MATCHED THEN INSERT *""")
        self._session().catalog.dropTempView(view)

    def refresh(self, name: "str | Table", df: "DataFrame", on: Iterable[str], columns: Iterable[str]) -> None:
        """Set ``columns`` of the rows matching ``df`` on ``on`` to ``df``'s values (attributes that changed
        upstream, such as a product's title); no row is added or removed."""
        t = table(name)
        if not self.exists(t):
            return
        on, columns = list(on), list(columns)
        view = f"_refresh_{uuid.uuid4().hex[:12]}"
        schema = {f.name: f.dataType for f in t.schema().fields}
        from pyspark.sql import functions as F

        df.select(*[F.col(c).cast(schema[c]).alias(c) for c in (*on, *columns)]).createOrReplaceTempView(view)
        self._session().sql(f"""
            MERGE INTO delta.`{self.path(t)}` t USING {view} s ON {' AND '.join(f't.{c} = s.{c}' for c in on)}
            WHEN MATCHED THEN UPDATE SET {', '.join(f't.{c} = s.{c}' for c in columns)}""")
        self._session().catalog.dropTempView(view)

    def replace_keys(self, name: "str | Table", rows: "DataFrame", touched: "DataFrame | None", key: str) -> None:
        """Make the table's rows for the ``touched`` keys exactly ``rows`` (none for a key that disappeared), in
        one commit. Without ``touched``, or without a table yet, the table becomes ``rows``.

        - A partitioned table has only the partitions rewritten where a touched key's row is new, changed or gone
          (rows compared column by column, NULLs equal: no map columns), each with its other keys' rows and the new
          ones (``replaceWhere``).
        - An unpartitioned one is rewritten whole (the other keys' rows and the new ones).

        No MERGE: on the embedded engine a MERGE joined the whole table to find its matches, and cost more than
        rewriting the partitions it changed."""
        from pyspark.sql import functions as F

        t = table(name)
        self._check(t, "replace_keys")
        rows = self.conform(t, rows)
        if touched is None or not self.exists(t):
            self._writer(t, rows, "overwrite").option("overwriteSchema", "true").save(self.path(t))
            return
        cols = rows.columns
        current = self.read(t).select(*cols)
        keys = touched.select(key).distinct()
        if not t.partitioned_by:
            self._writer(t, current.join(keys, key, "left_anti").select(*cols).unionByName(rows), "overwrite").save(
                self.path(t))
            return
        stored = current.join(keys, key).select(*cols)
        differ = rows.subtract(stored).unionByName(stored.subtract(rows))
        where = partition_condition(differ, t.partitioned_by)
        if where == "FALSE":
            return  # the touched keys' rows came out exactly as stored
        kept = current.where(where).join(keys.withColumn("_hit", F.lit(True)), key, "left").where("_hit IS NULL")
        rewritten = kept.select(*cols).unionByName(rows.where(where)).repartition(*t.partitioned_by)  # a file per partition
        self._writer(t, rewritten, "overwrite").option("replaceWhere", where).save(self.path(t))

    def replace_partitions(self, name: "str | Table", df: "DataFrame", where: str | None) -> None:
        """Replace the rows matching ``where`` (a condition on partition columns) with ``df``; None replaces all."""
        t = table(name)
        self._check(t, "replace_partitions")
        writer = self._writer(t, df, "overwrite")
        if where is not None and self.exists(t):
            writer = writer.option("replaceWhere", where)
        writer.save(self.path(t))

    def snapshot(self, name: "str | Table", df: "DataFrame") -> None:
        """The table becomes ``df``."""
        t = table(name)
        self._check(t, "snapshot", "replace_partitions", "replace_keys")
        self._writer(t, df, "overwrite").option("overwriteSchema", "true").save(self.path(t))

    def rewrite(self, name: "str | Table", df: "DataFrame") -> None:
        """The table becomes ``df``, whatever its write mode: a change of values in every row that keeps every row
        (a key rotation), in one commit."""
        self._writer(table(name), df, "overwrite").option("overwriteSchema", "true").save(self.path(name))

    def delete_keys(self, name: "str | Table", keys: "DataFrame", on: Iterable[str]) -> None:
        """Delete the rows matching ``keys`` on ``on``. A MERGE, so the commit records the join condition, never
        the values (an erasure names no person in the Delta log)."""
        t = table(name)
        if not self.exists(t):
            return
        on = list(on)
        view = f"_delete_{uuid.uuid4().hex[:12]}"
        keys.select(*on).distinct().createOrReplaceTempView(view)
        self._session().sql(f"""MERGE INTO delta.`{self.path(t)}` t USING {view} s
                                ON {' AND '.join(f't.{c} <=> s.{c}' for c in on)} WHEN MATCHED THEN DELETE""")
        self._session().catalog.dropTempView(view)

    def expire(self, name: "str | Table", where: str, at: datetime) -> None:
        """Retention: set the raw personal columns (class ``raw``) of the rows matching ``where`` (a condition on
        partition or lineage columns, never on values) to NULL and stamp ``expired_at``. Rows, keys and lineage
        stay, so every count still reconciles. One MERGE, whose commit names no value."""
        t = table(name)
        raw = t.pii("raw")
        if not raw or "expired_at" not in t.column_names:
            raise ValueError(f"{t.qualified} keeps no raw personal data to expire (schemas/{t.layer}.yaml)")
        if not self.exists(t):
            return
        view = f"_expire_{uuid.uuid4().hex[:12]}"
        key = list(t.key)
        self.read(t).where(f"({where}) AND expired_at IS NULL").select(*key).createOrReplaceTempView(view)
        stamp = at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        self._session().sql(f"""MERGE INTO delta.`{self.path(t)}` t USING {view} s
                                ON {' AND '.join(f't.{c} = s.{c}' for c in key)}
                                WHEN MATCHED THEN UPDATE SET {', '.join(f't.{c} = NULL' for c in raw)},
                                t.expired_at = TIMESTAMP '{stamp}'""")
        self._session().catalog.dropTempView(view)

    def delete(self, name: "str | Table", where: str) -> None:
        """Delete the rows matching ``where`` (recovery of a killed run, erasure, retention)."""
        t = table(name)
        if self.exists(t):
            self._session().sql(f"DELETE FROM delta.`{self.path(t)}` WHERE {where}")

    # ---- scratch
    def checkpoint(self, df: "DataFrame", run_id: str, name: str) -> "DataFrame":
        """Materialise a plan once as Parquet under ``_staging/<run_id>``; later steps read the result.

        Over Spark Connect a DataFrame is a plan, evaluated again by every action: without this, a
        step that reads a table another step has since rewritten sees different data.
        """
        return self.checkpoint_parts([df], run_id, name)

    def checkpoint_parts(self, parts: "list[DataFrame]", run_id: str, name: str) -> "DataFrame":
        """``checkpoint`` of the union of ``parts`` (same columns), each written by its own plan, one after another:
        the engine holds one part at a time (a union is run whole, every part at once)."""
        path = self.staging(run_id, name)
        for i, part in enumerate(parts):
            part.write.mode("append" if i else "overwrite").parquet(path)
        spark = parts[0].sparkSession
        if not self._has_parquet(path):  # an empty result leaves no file to read a schema from
            return spark.createDataFrame([], parts[0].schema)
        # read by the file's own schema: an explicit schema was matched by position on Sail, and a
        # join can write columns in another order than the plan lists them
        return spark.read.parquet(path)

    def _has_parquet(self, path: str) -> bool:
        if is_s3(path):
            from pyarrow.fs import FileSelector

            from jobs.storage import arrow_filesystem

            fs, base = arrow_filesystem(self.cfg, path)
            return any(i.path.endswith(".parquet") for i in fs.get_file_info(FileSelector(base, recursive=True)))
        return any(n.endswith(".parquet") for _, _, names in os.walk(local_root(path)) for n in names)


def partition_date(value: object) -> date:
    """A date partition's value as the log gives it (a date, or its text) as a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def record_count(files) -> int | None:
    """Rows in the data files of ``Lake.files`` (their record counts; None if a file has none)."""
    counts = files.column("num_records").to_pylist() if "num_records" in files.column_names else [None]
    return None if any(c is None for c in counts) else int(sum(counts))


__all__ = ["LAYERS", "Lake", "MissingTableError", "SchemaMismatchError", "in_list", "partition_date", "record_count",
           "sql_string"]
