"""The one module that knows where Delta tables live and how Rapport writes them.

Tables are ``<lake_root>/<layer>/<name>`` with layers ``bronze``, ``silver``, ``gold``
and ``ops``. Writes go through Spark (``format("delta")`` and SQL ``MERGE``/``DELETE``);
what Sail lacks (history, compaction, vacuum, existence checks without a read) goes
through delta-rs on the same files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from jobs.config import Config
from jobs.storage import is_s3, local_root

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

LAYERS = ("bronze", "silver", "gold", "ops")


class MissingTableError(RuntimeError):
    """A table a step needs has not been made yet; the message names the command that makes it."""


class Lake:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.root = cfg.lake_root.rstrip("/") if is_s3(cfg.lake_root) else local_root(cfg.lake_root)

    def path(self, layer: str, name: str) -> str:
        if layer not in LAYERS and not layer.startswith("_"):
            raise ValueError(f"unknown layer {layer!r}; layers are {', '.join(LAYERS)}")
        return f"{self.root}/{layer}/{name}"

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

    def exists(self, path: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(path, storage_options=self.storage_options() or None)

    def read(self, spark: "SparkSession", path: str) -> "DataFrame":
        return spark.read.format("delta").load(path)

    def require(self, spark: "SparkSession", layer: str, name: str) -> "DataFrame":
        """A table that an earlier step must have made; a clear error, naming that step, if it has not."""
        path = self.path(layer, name)
        if not self.exists(path):
            step = {"bronze": "rapport ingest", "silver": "rapport refine", "gold": "rapport curate"}.get(layer, "the pipeline")
            raise MissingTableError(f"{layer}.{name} does not exist yet under {self.root}; run `{step}` first "
                                    f"(or check RAPPORT_LAKE_ROOT).")
        return self.read(spark, path)

    def append(self, df: "DataFrame", path: str, partition_by: Iterable[str] = ()) -> None:
        writer = df.write.format("delta").mode("append")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(path)

    def replace_for_keys(self, spark: "SparkSession", rows: "DataFrame", path: str, touched: "DataFrame | None",
                         key: str, match_on: Iterable[str], partition_by: Iterable[str] = ()) -> None:
        """Make the table's rows for the ``touched`` keys exactly ``rows``, in one MERGE: update what matches on
        ``match_on``, insert what is new, delete what those keys no longer have (all of it for keys that
        disappeared). Without ``touched``, or without a table yet, replace the whole table with ``rows``."""
        if touched is None or not self.exists(path):
            writer = rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
            if partition_by:
                writer = writer.partitionBy(*partition_by)
            writer.save(path)
            return
        from pyspark.sql import functions as F

        match_on = list(match_on)
        existing = self.read(spark, path).join(touched.select(key).distinct(), key).select(*match_on)
        gone = existing.join(rows.select(*match_on), match_on, "left_anti")
        staged = rows.withColumn("_op", F.lit("upsert")).unionByName(gone.withColumn("_op", F.lit("delete")),
                                                                      allowMissingColumns=True)
        view = f"_replace_{abs(hash(path)) % 10**8}"
        staged.createOrReplaceTempView(view)
        cols = rows.columns
        on = " AND ".join(f"t.{c} = s.{c}" for c in match_on)
        spark.sql(f"""
            MERGE INTO delta.`{path}` t USING {view} s ON {on}
            WHEN MATCHED AND s._op = 'delete' THEN DELETE
            WHEN MATCHED THEN UPDATE SET {', '.join(f't.{c} = s.{c}' for c in cols)}
            WHEN NOT MATCHED AND s._op = 'upsert' THEN INSERT ({', '.join(cols)}) VALUES ({', '.join(f's.{c}' for c in cols)})
        """)

    def checkpoint(self, df: "DataFrame", run_id: str, name: str) -> "DataFrame":
        """Materialise a plan once as Parquet under ``_staging/<run_id>``; later steps read the result.

        Over Spark Connect a DataFrame is a plan, evaluated again by every action: without this, a
        step that reads a table another step has since rewritten sees different data.
        """
        path = self.path("_staging", f"{run_id}/{name}")
        df.write.mode("overwrite").parquet(path)
        spark = df.sparkSession
        if not self._has_parquet(path):  # an empty result leaves no file to read a schema from
            return spark.createDataFrame([], df.schema)
        # read by the file's own schema: an explicit schema was matched by position on Sail, and a
        # join can write columns in another order than the plan lists them
        return spark.read.parquet(path)

    def _has_parquet(self, path: str) -> bool:
        if is_s3(path):
            from jobs.storage import arrow_filesystem

            fs, base = arrow_filesystem(self.cfg, path)
            from pyarrow.fs import FileSelector

            return any(i.path.endswith(".parquet") for i in fs.get_file_info(FileSelector(base, recursive=True)))
        import os

        return any(n.endswith(".parquet") for _, _, names in os.walk(local_root(path)) for n in names)

    def ensure(self, spark: "SparkSession", path: str, schema, partition_by: Iterable[str] = ()) -> None:
        """Create an empty table with its declared schema, so nullability is the schema's, not what the
        first write happened to infer (a NOT NULL inferred from one writer would reject another's rows)."""
        if not self.exists(path):
            self.append(spark.createDataFrame([], schema), path, partition_by)

    def version(self, path: str) -> int | None:
        from deltalake import DeltaTable

        return DeltaTable(path, storage_options=self.storage_options() or None).version() if self.exists(path) else None


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def in_list(values: Iterable[str]) -> str:
    return ", ".join(sql_string(v) for v in values)
