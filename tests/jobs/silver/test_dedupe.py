"""Property: classifying duplicates with the repeated keys split out (only their rows ranked in a window) gives
exactly what ranking every row gives, with or without existing silver rows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.silver.common import classify_duplicates, repeated_keys

pytestmark = pytest.mark.integration
T = datetime(2026, 11, 1, tzinfo=timezone.utc)
SCHEMA = "message_id string, fingerprint string, arrival_ts timestamp, source_file string, line_number bigint"

# few ids, fingerprints, times and files, so that repeats, ties and conflicts are common
row = st.tuples(st.sampled_from("abcdef"), st.sampled_from("xyz"), st.integers(0, 3).map(lambda h: T + timedelta(hours=h)),
                st.sampled_from(["f1", "f2"]), st.integers(1, 4))


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=st.lists(row, min_size=1, max_size=30, unique_by=lambda r: (r[3], r[4])),
       existing=st.lists(row, max_size=6, unique_by=lambda r: r[0]))
def test_ranking_only_the_repeated_keys_classifies_as_ranking_all(spark, batch, existing):
    df = spark.createDataFrame(batch, SCHEMA)
    ex = spark.createDataFrame(existing, SCHEMA) if existing else None
    cols = ["message_id", "source_file", "line_number", "dedupe_status", "duplicate_of"]
    every = sorted(tuple(r) for r in classify_duplicates(df, ex, ("message_id",)).select(*cols).collect())
    split = sorted(tuple(r) for r in classify_duplicates(df, ex, ("message_id",), repeated_keys(df, ("message_id",)))
                   .select(*cols).collect())
    assert split == every
    assert len(every) == len(batch) and {r[3] for r in every} <= {"new", "already", "duplicate", "id_conflict"}
