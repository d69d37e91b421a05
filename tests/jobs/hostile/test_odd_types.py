"""Property: the clickstream parse reads a line's raw field texts (for its type checks) only on the lines
``clickstream.ODD_TYPES`` matches or with a number out of range, and that changes nothing: whatever JSON type any
field holds, every parsed column equals what the parse gives when it reads the raw texts of every line. (The social
parse reads three raw texts with ``get_json_object``; guarded the same way, its 164,722 lines of the 1.1M-event
bench parsed in the same 1.6-2.1 s, so it reads them on every line.)"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.jobs.hostile.test_properties import anything, segment

pytestmark = pytest.mark.integration

numbers = st.fixed_dictionaries({k: anything | st.floats(allow_nan=True) | st.integers(-(2**70), 2**70)
                                 for k in ("price", "quantity", "total", "revenue", "rating")})
in_range = st.fixed_dictionaries({"price": st.floats(0, 5) | st.integers(0, 5), "quantity": st.integers(0, 5),
                                   "rating": st.integers(1, 5)})
page = st.fixed_dictionaries({"path": st.text(max_size=10)}) | anything
# tidy lines (every object an object, every number a number in range) that the guard passes over, beside hostile ones
hostile = st.tuples(segment, numbers, page, anything, st.sampled_from([" ", "", "\t"]), st.booleans()).map(
    lambda t: _text(*t))
tidy = st.tuples(in_range, st.sampled_from([" ", "", "\t"])).map(lambda t: _tidy(*t))
SPOILABLE = ("properties", "context", "traits", "page", "price", "quantity", "rating")
# tidy lines but for one field, each field in turn: the raw-text checks decide their reasons
spoilt = st.tuples(in_range, st.sampled_from([" ", ""]),
                   st.text(max_size=8) | st.booleans() | st.floats(allow_nan=True) | st.lists(st.integers(), max_size=2)
                   | anything).map(lambda t: [_tidy(t[0], t[1], f, t[2]) for f in SPOILABLE])
# numbers a JSON encoder of Python would not write: beyond a double, beyond a long, a fraction in an integer field
_CORNER = ('{"type": "track", "messageId": "m", "anonymousId": "a", "timestamp": "2026-11-02T10:00:00Z", '
           '"receivedAt": "2026-11-02T10:00:02Z", "properties": {"%s": %s}}')
CORNERS = ([_CORNER % ("price", v) for v in ("1e400", "-1e400", "12345678901234567890123", "1.0")]
           + [_CORNER % ("quantity", v) for v in ("1.0", "1e0", "12345678901234567890", "-1", "1.5e400")]
           + [_CORNER % ("\\u0070rice", '"12"'), _CORNER.replace('"properties": {"%s": %s}', '"pr\\u006fperties": "x"'),
              _CORNER % ("quantity\\u0020", "1.5")])  # keys written with escapes


def _tidy(numbers, gap: str, spoil: str | None = None, value=None) -> str:
    """A line the guard passes over: every object an object, every number a number in range; but ``spoil``, which
    holds ``value``."""
    event = {"type": "track", "event": "Viewed", "messageId": "m-1", "anonymousId": "a-1",
             "timestamp": "2026-11-02T10:00:00Z", "sentAt": "2026-11-02T10:00:01Z",
             "receivedAt": "2026-11-02T10:00:02Z", "properties": {"product_id": "p-1", **numbers},
             "context": {"userAgent": "Mozilla/5.0", "page": {"path": "/p"}}, "traits": {"plan": "basic"}}
    if spoil in ("properties", "context", "traits"):
        event[spoil] = value
    elif spoil == "page":
        event["context"]["page"] = value
    elif spoil:
        event["properties"][spoil] = value
    return json.dumps(event, allow_nan=True).replace('": ', '":' + gap)


def _text(event, numbers, page, traits, gap: str, escaped: bool) -> str:
    event = dict(event)
    props = event.get("properties")
    event["properties"] = {**props, **numbers} if isinstance(props, dict) else props
    context = event.get("context")
    event["context"] = {**context, "page": page} if isinstance(context, dict) else context
    event["traits"] = traits
    text = json.dumps(event, allow_nan=True, ensure_ascii=False).replace('": ', '":' + gap)
    return text.replace('"price"', '"\\u0070rice"') if escaped else text  # a key JSON reads as price


def _parsed(spark, cfg, texts: list[str]):
    from pyspark.sql import functions as F

    from jobs.silver import clickstream

    bronze = (spark.createDataFrame([(t, "clickstream/f.json", i) for i, t in enumerate(texts)],
                                    "value string, source_file string, line_number bigint")
              .withColumn("landing_dt", F.lit("2026-11-02").cast("date")).withColumn("landing_hour", F.lit(10))
              .withColumn("ingested_at", F.lit("2026-11-02 10:30:00").cast("timestamp")))
    return {r.line_number: r.asDict() for r in clickstream.parse(bronze, cfg).collect()}


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          phases=(Phase.explicit, Phase.generate))  # a failing batch is reported whole: shrinking one took minutes
@given(texts=st.tuples(st.lists(hostile, min_size=15, max_size=50), st.lists(tidy, min_size=3, max_size=10),
                       st.lists(spoilt, min_size=1, max_size=3)).map(
    lambda t: t[0] + t[1] + [x for spoilt_lines in t[2] for x in spoilt_lines] + CORNERS))
def test_clickstream_reads_raw_texts_where_they_can_matter_and_nowhere_else(spark, tmp_path_factory, monkeypatch,
                                                                             texts):
    from jobs.config import Config
    from jobs.silver import clickstream
    from tests.lakes import PII_KEY

    cfg = Config(lake_root=str(tmp_path_factory.mktemp("odd")), pii_key=PII_KEY)
    guarded = _parsed(spark, cfg, texts)
    with monkeypatch.context() as m:
        m.setattr(clickstream, "ODD_TYPES", "")  # matches every line: the raw texts of all of them are read
        everywhere = _parsed(spark, cfg, texts)
    differ = [(i, c, guarded[i][c], everywhere[i][c]) for i in guarded for c in guarded[i]
              if guarded[i][c] != everywhere[i][c]]
    assert not differ, (differ[:5], [texts[i] for i, *_ in differ[:2]])
    # and the guard is not vacuous: lines it passes over exist, and so do lines whose raw texts decide their reason
    assert any(not re.search(clickstream.ODD_TYPES, t) for t in texts)
    assert any(r["reason"] == "wrong_types" for r in guarded.values())
