"""The clickstream parse builds only the fields it reads (``clickstream.PARSED``, from ``common.read_fields``); a line's
other fields, whatever they hold, change nothing. Property: every parsed column equals the parse over the whole
Segment spec (``schemas.clickstream.EVENT``)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pyspark.sql.types import LongType, StringType, StructField, StructType

from jobs.silver.common import read_fields
from tests.jobs.hostile.test_odd_types import _parsed, tidy
from tests.jobs.hostile.test_properties import anything, segment

pytestmark = pytest.mark.integration

# fields of the spec the parse does not read, each holding anything at all (or absent)
UNREAD = {("groupId",): anything, ("properties", "products"): anything, ("properties", "list_id"): anything,
          ("properties", "review_body"): anything, ("traits", "first_name"): anything,
          ("traits", "created_at"): anything, ("context", "device"): anything, ("context", "locale"): anything,
          ("context", "library", "version"): anything}


def _with_unread(event: dict, extra: dict) -> str:
    event = json.loads(json.dumps(event, allow_nan=True))
    for path, value in extra.items():
        at = event
        for key in path[:-1]:
            at = at.setdefault(key, {}) if isinstance(at, dict) else None
            if not isinstance(at, dict):
                break
        else:
            at[path[-1]] = value
    return json.dumps(event, allow_nan=True)


# any JSON a line can hold (no NaN or infinity, which make the whole line unreadable, nor numbers beyond a double)
plain = st.recursive(st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(-1e9, 1e9) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                     max_leaves=8)
# hostile lines, and tidy ones: valid but for what their unread fields hold
hostile = st.tuples(segment, st.fixed_dictionaries({}, optional=UNREAD)).map(lambda t: _with_unread(*t))
valid = st.tuples(tidy.map(json.loads), st.fixed_dictionaries({}, optional={k: plain for k in UNREAD})).map(
    lambda t: _with_unread(*t))


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          phases=(Phase.explicit, Phase.generate))  # a failing batch is reported whole
@given(texts=st.tuples(st.lists(hostile, min_size=15, max_size=50), st.lists(valid, min_size=3, max_size=10)).map(
    lambda t: t[0] + t[1]))
def test_the_clickstream_parse_gives_the_same_rows_as_over_the_whole_spec(spark, tmp_path_factory, monkeypatch, texts):
    from jobs.config import Config
    from jobs.silver import clickstream
    from schemas import clickstream as schema
    from tests.lakes import PII_KEY

    cfg = Config(lake_root=str(tmp_path_factory.mktemp("unread")), pii_key=PII_KEY)
    read = _parsed(spark, cfg, texts)
    with monkeypatch.context() as m:
        m.setattr(clickstream, "PARSED", schema.EVENT)
        whole = _parsed(spark, cfg, texts)
    differ = [(i, c, read[i][c], whole[i][c]) for i in read for c in read[i] if read[i][c] != whole[i][c]]
    assert not differ, (differ[:5], [texts[i] for i, *_ in differ[:2]])
    assert len(clickstream.PARSED.simpleString()) < len(schema.EVENT.simpleString())  # it does leave fields out
    assert any(r["reason"] is None for r in read.values())  # rows that reach silver are among them


def test_read_fields_keeps_the_paths_named_with_their_types_and_refuses_unknown_ones():
    inner = StructType([StructField("a", StringType()), StructField("b", LongType()), StructField("c", StringType())])
    spec = StructType([StructField("x", StringType()), StructField("p", inner), StructField("q", inner)])
    assert read_fields(spec, ["q", "p.b", "x"]).simpleString() == (
        "struct<x:string,p:struct<b:bigint>,q:struct<a:string,b:bigint,c:string>>")
    assert read_fields(spec, ["p.c", "p.a"]).simpleString() == "struct<p:struct<a:string,c:string>>"
    with pytest.raises(KeyError, match="nope"):
        read_fields(spec, ["x", "nope"])
    with pytest.raises(KeyError, match="zz"):
        read_fields(spec, ["p.zz"])
    with pytest.raises(KeyError, match="not a struct"):
        read_fields(spec, ["x.y"])
