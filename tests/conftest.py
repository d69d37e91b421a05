"""One embedded engine for the whole run (dbldatagen-style session fixture) and one small landing zone."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from jobs.config import Config

SMALL = dict(customers=3000, days=3, start=date(2026, 11, 1), seed=7, shard_size=1000)


@pytest.fixture(scope="session")
def spark():
    from jobs.engine import spark_session

    with spark_session(Config(engine="embedded")) as session:
        yield session


@pytest.fixture(scope="session")
def small_landing(tmp_path_factory):
    """A generated landing zone of three shards: (path, manifest)."""
    from jobs.generate import Params, generate

    out = tmp_path_factory.mktemp("landing")
    manifest = generate(Params(**SMALL), out, workers=1, progress=False)
    return out, manifest


@pytest.fixture
def served_engine():
    """`rapport engine serve` in its own process, as a team would run it; yields (sc:// URL, process)."""
    proc = subprocess.Popen([sys.executable, "-m", "jobs.cli", "engine", "serve", "--port", "0"],
                            cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = proc.stdout.readline()
        assert "listening on sc://" in first, proc.stderr.read() if proc.poll() is not None else first
        yield first.rsplit(" ", 1)[-1].strip(), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
