"""Run the CLI and kill the process (SIGKILL) right after its N-th table write: a fault the test injects from
outside the write path, to prove that a run killed at any point loses and duplicates nothing once it is run again.

    python -m tests.crashpoint N COMMAND [ARGS...]    # as `rapport COMMAND ARGS...`

A table write is a DataFrame save or a MERGE/DELETE statement sent to the engine: this wraps the Spark Connect
client's two methods in this process only.
"""

from __future__ import annotations

import os
import signal
import sys


def install(limit: int) -> None:
    from pyspark.sql.connect.readwriter import DataFrameWriter
    from pyspark.sql.connect.session import SparkSession

    writes = 0

    def wrote() -> None:
        nonlocal writes
        writes += 1
        if writes >= limit:
            os.kill(os.getpid(), signal.SIGKILL)

    save, sql = DataFrameWriter.save, SparkSession.sql

    def counted_save(self, *args, **kwargs):
        out = save(self, *args, **kwargs)
        wrote()
        return out

    def counted_sql(self, query, *args, **kwargs):
        out = sql(self, query, *args, **kwargs)
        if query.lstrip().upper().startswith(("MERGE", "DELETE")):
            wrote()
        return out

    DataFrameWriter.save, SparkSession.sql = counted_save, counted_sql


if __name__ == "__main__":
    install(int(sys.argv[1]))
    from jobs.cli import main

    sys.exit(main(sys.argv[2:]))
