"""No single row can stop a window, and every row rule is written once.

- the quality suites check exactly the row rules refine quarantines by, and copy no value set;
- a landing zone with one hostile line per (field, value) beside a normal day passes ingest, refine and curate
  with every gate on; every audit balances; silver and gold keep every row the clean landing gives;
- property (Hypothesis, gates on): a valid record of each source with any one field, nested too, replaced by any
  JSON value never stops a window, and the records beside it reach silver.
"""

from __future__ import annotations

import copy
import functools
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
from jobs.runs.window import Window
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


REFERENCE = ("customers", "products", "campaigns", "campaign_posts")


def bases(at: datetime) -> dict[str, tuple[str, dict, str]]:
    """A valid record of each kind of line, of a person of its own (nobody in the normal day): kind -> (source,
    record, the path of its id). Each event source as its own tracking format and as the collector's envelope
    (Snowplow, a Shopify delivery, a Meta change); each reference extract."""
    n = next(_n)
    ms = str(int(at.timestamp() * 1000))
    return {
        "clickstream": ("clickstream", seg(f"hostile-device-{n}", f"hostile-user-{n}", at, kind="identify", event=None,
                                           traits={"email": f"hostile{n}@example.org", "phone": "+44 20 7946 0958"},
                                           props={"product_id": "P1", "price": 10.0, "quantity": 1, "rating": 4}),
                        "messageId"),
        "snowplow": ("clickstream", {"source": "snowplow", "received_at": iso(at), "ip": "203.0.113.9",
                                     "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                                     "payload": {"e": "pv", "eid": f"sp-{n}", "duid": f"hostile-sp-device-{n}",
                                                 "uid": f"hostile-sp-user-{n}", "url": "https://shop.example/p/P1",
                                                 "page": "P1", "dtm": ms, "stm": ms, "tv": "py-1.0.0", "p": "web"}},
                     "payload.eid"),
        "social": ("social", {**social("instagram", f"hostile-actor-{n}", f"@hostile{n}", at), "rating": 4,
                              "text": "nice"}, "event_id"),
        "meta": ("social", {"source": "meta", "object": "instagram", "entry_id": "17841400000000000",
                            "entry_time": int(at.timestamp()), "received_at": iso(at), "field": "comments",
                            "value": {"from": {"id": f"hostile-ig-{n}", "username": f"hostile_ig_{n}"},
                                      "media": {"id": "media-1"}, "id": f"comment-{n}", "text": "love it"}},
                 "value.id"),
        "orders": ("orders", order(9_000_000 + n, f"hostile{n}@example.org", at), "webhook_id"),
        "shopify": ("orders", {"source": "shopify", "topic": "orders/create", "webhook_id": f"shopify-{n}",
                               "event_id": f"event-{n}", "triggered_at": iso(at), "received_at": iso(at),
                               "shop_domain": "shop.example", "api_version": "2025-01",
                               "body": {k: v for k, v in order(9_500_000 + n, f"hostile-s{n}@example.org", at)["order"]
                                        .items()}},
                    "webhook_id"),
        "customers": ("customers", {"customer_id": f"hostile-crm-{n}", "email": f"hostile-crm{n}@example.org",
                                    "phone": "+44 20 7946 0000", "first_name": "H", "last_name": "T", "country": "GB",
                                    "loyalty_tier": "gold", "created_at": iso(at),
                                    "social_accounts": [{"platform": "instagram", "platform_user_id": f"hig-{n}",
                                                         "handle": f"@hig{n}"}]}, "customer_id"),
        "products": ("products", {"product_id": f"HP{n}", "sku": f"SKU-H-{n}", "title": "Hostile Thing",
                                  "category": "bags", "price": 12.5, "currency": "USD", "slug": f"hostile-{n}"},
                     "product_id"),
        "campaigns": ("campaigns", {"campaign_id": f"hc-{n}", "name": "Hostile", "utm_campaign": f"hostile-{n}",
                                    "message_id": f"hm-{n}", "message": "Buy", "start_date": "2026-10-01",
                                    "end_date": "2026-12-31", "platforms": ["instagram"], "product_ids": ["P1"],
                                    "discount_code": "H10"}, "campaign_id"),
        "campaign_posts": ("campaign_posts", {"platform": "instagram", "post_id": f"hp-{n}", "campaign_id": "hc-0",
                                              "message_id": "hm-0", "published_at": iso(at),
                                              "url": "https://instagram.example/p/1"}, "post_id"),
    }


def folder(source: str) -> str:
    return f"reference/{source}" if source in REFERENCE else source


def write(root: Path, source: str, at: datetime, name: str, lines: list[bytes]) -> None:
    """Lines landed at ``at``; a reference extract is a whole snapshot, so its file also holds the normal day's."""
    if source in REFERENCE:
        lines = [*(x for f in sorted((root / folder(source)).rglob("part-0*.json.gz"))
                   for x in gzip.decompress(f.read_bytes()).splitlines() if x.strip()), *lines]
        for old in (root / folder(source)).rglob("*.json.gz"):  # one extract per hour
            if f"dt={at:%Y-%m-%d}/hour={at:%H}" in str(old):
                old.unlink()
    path = root / folder(source) / f"dt={at:%Y-%m-%d}" / f"hour={at:%H}" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(line + b"\n" for line in lines), mtime=0))


def encode(record) -> bytes:
    return json.dumps(record, allow_nan=True).encode()


def with_id(record: dict, path: str, value: str) -> dict:
    """The record with its own id, unless the field holding the id was itself replaced (then it keeps its id)."""
    try:
        return replaced(record, path, value)
    except (TypeError, KeyError, IndexError, ValueError):
        return record


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
            from schemas.tables import table as registered

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


def build(spark, landing: Path, lake: Path, **settings) -> Config:
    cfg = Config(lake_root=str(lake), landing_root=str(landing), pii_key=PII_KEY, **settings)
    for stage in ("ingest", "refine", "curate"):  # every gate and check on: a failure raises
        result = run_stage(spark, cfg, stage, Window())
        assert result.gate is None or result.gate.passed, (stage, result.gate)
    return cfg


def test_one_hostile_line_per_field_and_value_stops_nothing(spark, normal_day, tmp_path):
    import shutil

    hostile = tmp_path / "hostile"
    shutil.copytree(normal_day, hostile)
    at = datetime(2026, 11, 1, 23, tzinfo=timezone.utc)
    lines: dict[str, list[bytes]] = {}
    for kind, (source, base, id_path) in bases(at).items():
        for i, (path, value) in enumerate(itertools.product(list(paths(base)), VALUES)):
            record = replaced(base, path, value)
            if path != id_path:
                record = with_id(record, id_path, f"hostile-{kind}-{i}")  # each line its own event or row
            lines.setdefault(source, []).append(encode(record))
    for source, out in lines.items():
        write(hostile, source, at, "part-hostile.json.gz", out)
    assert sum(map(len, lines.values())) > 3000

    clean = build(spark, normal_day, tmp_path / "clean")
    # a landing that is a third hostile is systemic by any rate: the rate gates are opened, every other gate is on
    cfg = build(spark, hostile, tmp_path / "lake", quarantine_max_share="1")
    lake, clean_lake = Lake(cfg, spark), Lake(clean, spark)
    audit = lake.read("ops.audit").collect()
    assert audit and all(r.balanced for r in audit)
    # every row the clean landing gives is there, unchanged (hostile lines are their own people)
    for name in ("silver.clickstream_events", "silver.social_interactions", "silver.order_status_history"):
        assert rows(lake.read(name).where("source_file NOT LIKE '%part-hostile%'")) == rows(clean_lake.read(name)), name
    for name in ("silver.crm_customers", "silver.products", "silver.campaigns", "silver.campaign_posts"):
        kept = set(rows(lake.read(name)))  # the extract's clean rows are all there, unchanged
        assert kept >= set(rows(clean_lake.read(name))) and len(kept) > len(rows(clean_lake.read(name))), name
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
CLEAN_CUSTOMERS = [0]  # rows of the normal day's CRM extract in silver


@st.composite
def mutations(draw):
    at = datetime(2026, 11, 2, tzinfo=timezone.utc) + timedelta(hours=next(HOURS) % 20)
    out = {}
    good = bases(at)
    for kind, (source, base, id_path) in bases(at).items():
        path = draw(st.sampled_from(sorted(paths(base))))
        out[kind] = (source, replaced(base, path, draw(anything)), good[kind][1], id_path)  # mutated, and a valid one
    return at, out


SILVER = {"clickstream": ("silver.clickstream_events", "message_id"), "snowplow": ("silver.clickstream_events", "message_id"),
          "social": ("silver.social_interactions", "event_id"), "meta": ("silver.social_interactions", None),
          "orders": ("silver.order_status_history", "webhook_id"), "shopify": ("silver.order_status_history", "webhook_id"),
          "products": ("silver.products", "product_id"), "campaigns": ("silver.campaigns", "campaign_id"),
          "campaign_posts": ("silver.campaign_posts", "post_id"), "customers": ("silver.crm_customers", None)}


def check_any_field(spark, cfg: Config, example) -> None:
    at, records = example
    names = {}
    by_source: dict[str, list[bytes]] = {}
    for kind, (source, bad, good, _) in records.items():
        by_source.setdefault(source, []).extend([encode(bad), encode(good)])
    for source, out in by_source.items():
        names[source] = f"part-{next(_n)}.json.gz"
        write(Path(cfg.landing_root), source, at, names[source], out)
    window = Window(at, at + timedelta(hours=1))
    for stage in ("ingest", "refine", "curate"):  # every gate and check on, the rate gates as configured
        result = run_stage(spark, cfg, stage, window)
        assert result.gate is None or result.gate.passed, (stage, records)
    lake = Lake(cfg, spark)
    assert all(r.balanced for r in lake.read("ops.audit").where(f"window_start = '{window.start_text}'").collect())
    for kind, (source, bad, good, id_path) in records.items():  # the valid line beside each mutated one is in silver
        name, column = SILVER[kind]
        found = lake.read(name)
        if "source_file" in found.columns:
            found = found.where(found.source_file.endswith(names[source]))
        if column is not None:
            found = found.where(f"{column} = '{functools.reduce(lambda r, k: r[k], id_path.split('.'), good)}'")
            assert found.count() == 1, (kind, bad)
        elif kind == "meta":  # its event id is derived: the file's valid social line and valid Meta change
            assert found.count() >= 2, (kind, bad)
        else:  # CRM ids are hashed: the new extract is the clean one's rows plus the valid line (and the mutated one)
            assert CLEAN_CUSTOMERS[0] + 1 <= found.count() <= CLEAN_CUSTOMERS[0] + 2, (kind, bad)


@pytest.fixture(scope="module")
def any_field_lake(spark, normal_day, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("any-field")
    shutil.copytree(normal_day, root / "landing")
    cfg = build(spark, root / "landing", root / "lake")
    CLEAN_CUSTOMERS[:] = [Lake(cfg, spark).read("silver.crm_customers").count()]
    return cfg


@settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(example=mutations())
def test_any_field_any_value_stops_nothing(spark, any_field_lake, example):
    check_any_field(spark, any_field_lake, example)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(example=mutations())
def test_any_field_any_value_stops_nothing_long(spark, any_field_lake, example):
    check_any_field(spark, any_field_lake, example)
