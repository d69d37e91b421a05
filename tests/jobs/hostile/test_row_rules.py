"""No single row can stop a window, and every row rule is written once.

- the quality suites check exactly the row rules refine quarantines by, and copy no value set;
- a landing zone with one hostile line per (field, value) beside a normal day passes ingest, refine and curate
  with every gate on; every audit balances; silver and gold keep every row the clean landing gives;
- property (Hypothesis, gates on): a valid record of each source with any one field, nested too, replaced by any
  JSON value never stops a window, and the records beside it reach silver.
"""

from __future__ import annotations

import copy
import gzip
import itertools
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs.config import Config
from jobs.lake import Lake
from jobs.pipeline.runner import run_stage
from jobs.pipeline.window import Window
from jobs.quality.suites import SUITES_DIR, load_suites
from schemas.rules import RULES, expectation, rules_of
from tests.handmade import iso, order, seg, social
from tests.lakes import PII_KEY, RUN_COLUMNS

# values of every JSON type and the implausible ones: numbers, digit strings, booleans, objects, arrays, null, empty
# and blank strings, huge numbers, impossible dates, very long strings, deep nesting
VALUES = [0, -1, 7, 1e300, -1e308, 10**30, 2.5, "123", "", "   ", True, False, None, {}, {"a": [1, {"b": None}]}, [],
          [1, "x"], "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1901-01-01T00:00:00Z", "2026-02-30T25:61:00Z",
          "not a time", "x" * 20_000, json.loads("[" * 200 + "]" * 200), "NaN", "-0", "1e40"]


def paths(record, prefix=""):
    """Every field of a record, nested ones too (a list's first element stands for its elements)."""
    for key, value in record.items():
        here = f"{prefix}{key}"
        yield here
        if isinstance(value, dict):
            yield from paths(value, f"{here}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            yield from paths(value[0], f"{here}.0.")


def replaced(record: dict, path: str, value) -> dict:
    out = copy.deepcopy(record)
    node, keys = out, path.split(".")
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value
    return out


_n = itertools.count()


def bases(at: datetime) -> dict[str, dict]:
    """A valid record of each source, of a person of its own (nobody in the normal day)."""
    n = next(_n)
    return {
        "clickstream": seg(f"hostile-device-{n}", f"hostile-user-{n}", at, kind="identify", event=None,
                           traits={"email": f"hostile{n}@example.org", "phone": "+44 20 7946 0958"},
                           props={"product_id": "P1", "price": 10.0, "quantity": 1, "rating": 4}),
        "social": {**social("instagram", f"hostile-actor-{n}", f"@hostile{n}", at), "rating": 4, "text": "nice"},
        "orders": order(9_000_000 + n, f"hostile{n}@example.org", at),
    }


def write(root: Path, source: str, at: datetime, name: str, lines: list[bytes]) -> None:
    path = root / source / f"dt={at:%Y-%m-%d}" / f"hour={at:%H}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0))


def encode(record) -> bytes:
    return json.dumps(record, allow_nan=True).encode()


def ids_of(record: dict, source: str) -> str:
    return {"clickstream": "messageId", "social": "event_id", "orders": "webhook_id"}[source]


# ---- every rule once
@pytest.mark.unit
def test_the_suites_check_exactly_the_rules_refine_quarantines_by_and_copy_no_value_set():
    suites = {s.table: s for s in load_suites()}
    checked = 0
    for table in [*RULES, "silver.orders", "silver.order_lines"]:
        derived = [e for e in suites[table].expectations if e.severity == "critical"]
        for rule in rules_of(table):
            want = expectation(rule)
            kind = want.pop("type")
            present = any(e.type == kind and e.kwargs == want for e in derived)
            columns = {c.strip("`") for c in (rule.column, rule.not_before, (rule.at_most_after or (None,))[0]) if c}
            from jobs.pipeline.tables import table as registered

            assert present or not columns <= set(registered(table).column_names), (table, rule)
            checked += present
    assert checked >= 30
    for path in SUITES_DIR.glob("*.yaml"):  # no list of values written into a suite
        for e in yaml.safe_load(path.read_text())["expectations"]:
            assert not isinstance(e.get("value_set"), list), (path.name, e)


# ---- one line per (field, value) beside a normal day
@pytest.fixture(scope="module")
def normal_day(tmp_path_factory):
    from jobs.generate import Params, generate

    root = tmp_path_factory.mktemp("rules-landing")
    generate(Params(customers=150, days=1, start=date(2026, 11, 1), seed=31), root, workers=1, progress=False)
    return root


def rows(df) -> list[tuple]:
    cols = sorted(c for c in df.columns if c not in RUN_COLUMNS)
    return sorted(tuple(str(r[c]) for c in cols) for r in df.select(*cols).collect())


def build(spark, landing: Path, lake: Path) -> Config:
    cfg = Config(lake_root=str(lake), landing_root=str(landing), pii_key=PII_KEY)
    for stage in ("ingest", "refine", "curate"):  # every gate and check on: a failure raises
        result = run_stage(spark, cfg, stage, Window())
        assert result.gate is None or result.gate.passed, (stage, result.gate)
    return cfg


def test_one_hostile_line_per_field_and_value_stops_nothing(spark, normal_day, tmp_path):
    import shutil

    hostile = tmp_path / "hostile"
    shutil.copytree(normal_day, hostile)
    at = datetime(2026, 11, 1, 23, tzinfo=timezone.utc)
    lines = {}
    for source, base in bases(at).items():
        out = []
        for i, (path, value) in enumerate(itertools.product(list(paths(base)), VALUES)):
            record = replaced(base, path, value)
            if path != ids_of(base, source):
                record[ids_of(base, source)] = f"hostile-{source}-{i}"  # each line its own event
            out.append(encode(record))
        lines[source] = out
        write(hostile, source, at, "part-hostile.json.gz", out)
    assert sum(map(len, lines.values())) > 1000

    clean = build(spark, normal_day, tmp_path / "clean")
    cfg = build(spark, hostile, tmp_path / "lake")
    lake, clean_lake = Lake(cfg, spark), Lake(clean, spark)
    audit = lake.read("ops.audit").collect()
    assert audit and all(r.balanced for r in audit)
    # every row the clean landing gives is there, unchanged (hostile lines are their own people)
    for name in ("silver.clickstream_events", "silver.social_interactions", "silver.order_status_history"):
        assert rows(lake.read(name).where("source_file NOT LIKE '%part-hostile%'")) == rows(clean_lake.read(name)), name
    from pyspark.sql import functions as F

    ours = {r.customer_key for r in clean_lake.read("gold.customer_relationship").select("customer_key").collect()}
    for name in ("gold.customer_timeline",):  # (relationship scores are quintiles of everybody: new people move them)
        theirs = lake.read(name).where(F.col("customer_key").isin(list(ours)))
        assert rows(theirs) == rows(clean_lake.read(name)), name
    quarantined = lake.read("ops.quarantine").where("source_file LIKE '%part-hostile%'").count()
    assert quarantined > 200  # the rules did quarantine: this is not a landing of harmless values


# ---- property: any field of a valid record, any JSON value, gates on
scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30)
           | st.sampled_from(["", "  ", "123", "9999-12-31T23:59:59Z", "0000-00-00", "x" * 10_000]))
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                               max_size=3), max_leaves=8)
HOURS = itertools.count()


@st.composite
def mutations(draw):
    at = datetime(2026, 11, 2, tzinfo=timezone.utc) + timedelta(hours=next(HOURS) % 20)
    out = {}
    for source, base in bases(at).items():
        path = draw(st.sampled_from(sorted(paths(base))))
        out[source] = (replaced(base, path, draw(anything)), bases(at)[source])  # the mutated one and a valid one
    return at, out


def check_any_field(spark, cfg: Config, example) -> None:
    at, records = example
    for source, (bad, good) in records.items():
        write(Path(cfg.landing_root), source, at, f"part-{next(_n)}.json.gz", [encode(bad), encode(good)])
    window = Window(at, at + timedelta(hours=1))
    for stage in ("ingest", "refine", "curate"):  # gates and checks on
        result = run_stage(spark, cfg, stage, window)
        assert result.gate is None or result.gate.passed, (stage, records)
    lake = Lake(cfg, spark)
    assert all(r.balanced for r in lake.read("ops.audit").where(f"window_start = '{window.start_text}'").collect())
    keys = {"clickstream": ("silver.clickstream_events", "message_id", "messageId"),
            "social": ("silver.social_interactions", "event_id", "event_id"),
            "orders": ("silver.order_status_history", "webhook_id", "webhook_id")}
    for source, (_, good) in records.items():
        name, column, field_ = keys[source]
        assert lake.read(name).where(f"{column} = '{good[field_]}'").count() == 1, (source, records[source][0])


@pytest.fixture(scope="module")
def any_field_lake(spark, normal_day, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("any-field")
    shutil.copytree(normal_day, root / "landing")
    return build(spark, root / "landing", root / "lake")


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(example=mutations())
def test_any_field_any_value_stops_nothing(spark, any_field_lake, example):
    check_any_field(spark, any_field_lake, example)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(example=mutations())
def test_any_field_any_value_stops_nothing_long(spark, any_field_lake, example):
    check_any_field(spark, any_field_lake, example)
