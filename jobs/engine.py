"""The one way Rapport gets a SparkSession.

Job code takes a ``SparkSession`` and never asks what is behind it. ``spark_session``
picks the engine from the config:

* ``embedded`` (default): a Sail Spark Connect server started in this process on
  127.0.0.1 with a free port. Sail carries Delta Lake natively.
* ``remote``: ``SPARK_REMOTE=sc://host:port``, any Spark 4 Connect server with Delta
  (a cluster, or ``rapport engine serve`` on another machine).
* ``spark-local``: the JVM engine from the pyspark wheel via ``remote("local[*]")``,
  for portability checks only (no Delta jars here).

Whatever this module starts, it stops: the session first, then the server. Leaving
an embedded server running made Airflow's ``dag.test()`` hang on exit.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from jobs.config import Config

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

# Settings every session gets, whichever engine: UTC everywhere, small shuffles on small machines.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    # PySpark would put the calling file and line of every column call into the plan for error messages: a stack walk
    # and a failed `import IPython` per call (a quarter of a millisecond; 7,500 calls a daily run) that Sail ignores
    "spark.python.sql.dataFrameDebugging.enabled": "false",
}


class EngineError(RuntimeError):
    """The engine could not be started or reached; the message says what to check."""


@dataclass
class EmbeddedServer:
    """A Sail Spark Connect server running in this process."""

    host: str = "127.0.0.1"
    port: int = 0
    #: Seconds a client session may sit idle before Sail drops it (Sail's default is 900). A server embedded in
    #: one process serves only that process, which may wait far longer between queries (an Airflow task
    #: waiting on a subprocess, a test suite): there the session lives as long as the server.
    idle_timeout_secs: int = 7 * 24 * 3600
    #: The engine's memory pool in bytes (None: unbounded). Past it, sorts, joins and aggregations spill to
    #: disk; an operator that cannot spill fails with Sail's "Failed to allocate" message.
    memory_bytes: int | None = None
    _server: object = field(default=None, repr=False)

    def start(self) -> "EmbeddedServer":
        # Sail runs a plan on worker threads of a fixed stack size: a curate over a lake with ten months of date
        # partitions overflowed it and the process died with a segfault (docs/sail-gaps.md, gap 12). Sail's own tests
        # raise it to 16 MiB for large plans; so does Rapport, unless the user set it. Read when the runtime starts.
        os.environ.setdefault("SAIL_RUNTIME__STACK_SIZE", str(STACK_BYTES))
        # Sail allocates with mimalloc, which by default asks for transparent huge pages on its arenas: every page it
        # freed and took back was then zeroed by the kernel 2 MiB at a time. A ~25k-event daily run spent 13 % of its
        # CPU in the kernel's clear_page (4.8 s of system time; 2.9 s without): docs/sail-gaps.md, gap 23. Read once,
        # when the library loads.
        os.environ.setdefault("MIMALLOC_ALLOW_THP", "0")
        try:
            from pysail.spark import SparkConnectServer
        except ImportError as exc:  # pragma: no cover - the package pins pysail
            raise EngineError("pysail is not installed; run `make install` (or pip install -e .)") from exc
        # Sail logs through Rust's env_logger; keep it to warnings unless the user asked for more.
        os.environ.setdefault("RUST_LOG", "warn" if log.getEffectiveLevel() <= logging.INFO else "error")
        os.environ.setdefault("SAIL_SPARK__SESSION_TIMEOUT_SECS", str(self.idle_timeout_secs))
        _set_memory_pool(self.memory_bytes)
        # A Parquet writer holds a row group in memory, which the pool cannot spill: with Sail's default of 1M rows,
        # staging a day of raw lines took the pool and the next sort was refused (ingest failed at
        # RAPPORT_ENGINE_MEMORY=1g; with this it passes at 512m). Sail's Delta writer keeps its own 1M rows.
        os.environ.setdefault("SAIL_PARQUET__MAX_ROW_GROUP_SIZE", str(ROW_GROUP_ROWS))
        self._server = SparkConnectServer(ip=self.host, port=self.port)
        self._server.start(background=True)
        self.host, self.port = self._server.listening_address
        log.info("embedded Sail Spark Connect server listening on %s", self.url)
        return self

    @property
    def url(self) -> str:
        return f"sc://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return bool(self._server is not None and self._server.running)

    def stop(self) -> None:
        if self._server is not None and self._server.running:
            self._server.stop()
            log.info("embedded Sail server on %s stopped", self.url)

    def wait(self) -> None:
        """Block until the process is interrupted (for `rapport engine serve`)."""
        stop = threading.Event()
        try:
            while self.running and not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()


ROW_GROUP_ROWS = 131_072  # rows per row group of the Parquet the embedded engine stages (Sail's default: 1,048,576)
STACK_BYTES = 16 * 2**20
POOL_SETTINGS = ("SAIL_RUNTIME__MEMORY_POOL__TYPE", "SAIL_RUNTIME__MEMORY_POOL__FAIR__MAX_SIZE")
_pool_set_here: dict[str, str] = {}  # the pool settings this module put in the environment


def _set_memory_pool(memory_bytes: int | None) -> None:
    """Sail reads its pool from the environment when a server starts. A setting the user made (``SAIL_RUNTIME__…``)
    wins; one made here for an earlier server of this process is replaced, so each server gets its own size."""
    if any(k in os.environ and os.environ[k] != _pool_set_here.get(k) for k in POOL_SETTINGS):
        return
    for k in _pool_set_here:
        os.environ.pop(k, None)
    _pool_set_here.clear()
    if memory_bytes:  # fair: no one operator takes the whole pool
        _pool_set_here.update(zip(POOL_SETTINGS, ("fair", str(memory_bytes))))
        os.environ.update(_pool_set_here)


def configure_storage(cfg: Config) -> None:
    """Give an engine that runs in this process (embedded Sail) the S3 settings of the configuration.

    Sail reads S3 endpoint and credentials from the standard AWS environment variables when it first
    reaches a bucket. A remote engine keeps its own settings: configure them where it runs.
    """
    if cfg.engine != "embedded":
        return
    values = {"AWS_ENDPOINT": cfg.s3_endpoint_url, "AWS_ACCESS_KEY_ID": cfg.aws_access_key_id,
              "AWS_SECRET_ACCESS_KEY": cfg.aws_secret_access_key, "AWS_REGION": cfg.s3_region,
              "AWS_ALLOW_HTTP": "true" if (cfg.s3_endpoint_url or "").startswith("http://") else None}
    for name, value in values.items():
        if value:
            os.environ[name] = value


def _build(url: str) -> "SparkSession":
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.remote(url)
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    if url.startswith("local"):
        # py4j logs at INFO while the interpreter shuts down, when the streams may be closed already
        logging.getLogger("py4j").setLevel(logging.WARNING)
        session = _without_other_sessions(builder.getOrCreate)  # the JVM engine allows one session per process
    else:
        # create(), not getOrCreate(): getOrCreate hands back any session this process already has, whatever its URL
        session = builder.create()
    from jobs.pii import keyring

    keyring.register(session)  # the keyed hash's SQL functions: the key stays where the engine runs
    return session


def _without_other_sessions(get_or_create):
    """Run ``getOrCreate`` as if no Spark Connect session existed, then put the others back.

    The JVM engine can only be started through ``getOrCreate``, which hands back the process's active
    or default Connect session when there is one (an embedded engine's, say) instead of a session on
    the JVM it just started. pyspark has no public way to set those aside, hence its private fields.
    """
    from pyspark.sql.connect.session import SparkSession as ConnectSession

    default, active = ConnectSession._default_session, getattr(ConnectSession._active_session, "session", None)
    ConnectSession._default_session, ConnectSession._active_session.session = None, None
    mode = os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)  # else the JVM launcher starts in Connect mode and dies
    try:
        return get_or_create()
    finally:
        if mode is not None:
            os.environ["SPARK_CONNECT_MODE_ENABLED"] = mode
        ConnectSession._default_session = default or ConnectSession._default_session
        ConnectSession._active_session.session = active or ConnectSession._active_session.session


def _check_reachable(url: str, timeout: float = 5.0) -> None:
    """Fail fast: the Connect client otherwise retries an unreachable server for minutes."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or 15002
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise EngineError(
            f"SPARK_REMOTE={url}: nothing answers at {host}:{port} ({exc.strerror or exc}). Start the server "
            "(for example `rapport engine serve --port 15002`), check host and port, or unset SPARK_REMOTE to "
            "use the embedded engine."
        ) from exc


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its cgroup's limit when lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


def memory_limit(value: str | None, total: int | None = None) -> int | None:
    """``RAPPORT_ENGINE_MEMORY`` in bytes: ``12.5%`` (of the machine), ``8g``, ``512m``, a number of bytes, or
    ``unbounded`` (None)."""
    text = (value or "").strip().lower().removesuffix("b").removesuffix("i")
    if text in ("", "unbounded", "0"):
        return None
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
    try:
        if text.endswith("%"):
            share = float(text[:-1])
            if not 0 < share <= 100:
                raise ValueError
            return int((total or machine_memory()) * share / 100)
        if text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except (ValueError, IndexError):
        raise EngineError(f"RAPPORT_ENGINE_MEMORY={value!r} is not a size: use 12.5%, 8g, 512m or unbounded") from None


def open_session(cfg: Config | None = None) -> tuple["SparkSession", EmbeddedServer | None]:
    """Start (or connect to) the configured engine and return the session and any server started.

    Callers own both: stop the session, then the server. Prefer ``spark_session``.
    """
    cfg = cfg or Config.load()
    if cfg.engine == "remote":
        _check_reachable(cfg.spark_remote)
        try:
            return _build(cfg.spark_remote), None
        except Exception as exc:
            raise EngineError(
                f"could not connect to the Spark Connect server at SPARK_REMOTE={cfg.spark_remote}: {exc}. "
                "Check that the server is running and reachable, or unset SPARK_REMOTE to use the embedded engine."
            ) from exc
    if cfg.engine == "spark-local":
        # Keep the JVM on loopback; otherwise it binds to the first network interface.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        return _build("local[*]"), None
    configure_storage(cfg)
    server = EmbeddedServer(memory_bytes=memory_limit(cfg.engine_memory)).start()
    try:
        return _build(server.url), server
    except Exception:
        server.stop()
        raise


def close_session(spark: "SparkSession | None", server: EmbeddedServer | None) -> None:
    """Stop the session, then the server; safe to call twice."""
    try:
        if spark is not None:
            mode = os.environ.get("SPARK_CONNECT_MODE_ENABLED")
            spark.stop()
            # stopping the JVM engine switches pyspark out of Connect mode for the whole process, which
            # would break any other Connect session still open (an embedded engine's)
            if mode is not None:
                os.environ["SPARK_CONNECT_MODE_ENABLED"] = mode
    finally:
        if server is not None:
            server.stop()


@contextmanager
def spark_session(cfg: Config | None = None) -> Iterator["SparkSession"]:
    """A session for the configured engine, stopped (with anything it started) on exit."""
    spark, server = open_session(cfg)
    # If the process is torn down without leaving the block (a signal, os._exit aside), still stop.
    def stop() -> None:
        close_session(spark, server)

    atexit.register(stop)
    try:
        yield spark
    finally:
        atexit.unregister(stop)
        stop()
