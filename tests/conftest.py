"""One embedded engine for the whole run (dbldatagen-style session fixture) and one small landing zone."""

from __future__ import annotations

from datetime import date

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
