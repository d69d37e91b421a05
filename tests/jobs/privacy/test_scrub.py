"""The scrubber: its engine SQL gives the Python twin's answers, and what the SQL skips holds no match."""

from __future__ import annotations

import random
import re

import pytest
from hypothesis import given, settings, strategies as st

from jobs.sql_text import sql_string
from jobs.pii.scrub import ANY, PATTERNS, scrub, scrub_sql, url_sql

MIXED = "0123456789abcdefABCDEFxyz@%:.+-() /_?=#"  # texts that often hold something to scrub
# the characters the patterns are made of, and some they stop at
TEXTS = st.text(alphabet=MIXED + "[]!&*'\"\\<>,;\t\u00e9\u0660\uff10", max_size=40)


@settings(max_examples=2000, deadline=None)
@given(TEXTS)
def test_text_the_guard_skips_holds_no_match(text):
    """The engine leaves text its one-scan guard does not match unscrubbed: the guard matches exactly when a
    pattern does, and text it skips is what the seven replacements give back."""
    assert (re.search(ANY, text) is not None) == any(re.search(pattern, text) for _, pattern, _ in PATTERNS), text
    if re.search(ANY, text) is None:
        assert scrub(text) == text


@pytest.mark.integration
def test_the_engine_scrubs_as_the_python_twin(spark):
    rng = random.Random(7)
    texts = ["jane.doe@example.com wrote", "call +1 (555) 010-2030 now", "from 203.0.113.9", "2001:db8::1 and fe80::",
             "card 4111 1111 1111 1111", "@someone_here said", "a%40b.example.org", "Product Viewed", "spring-sale",
             "/orders/4567891234", "mixed: x@y.co 10.0.0.1", "", "no digits at all", "v1.2.3 Mozilla/5.0"]
    texts += ["".join(rng.choice(MIXED) for _ in range(rng.randint(0, 40))) for _ in range(600)]
    df = spark.createDataFrame([(i, t) for i, t in enumerate(texts)] + [(len(texts), None)], "i int, t string")
    rows = df.selectExpr("i", f"{scrub_sql('t')} AS s", f"t RLIKE {sql_string(ANY)} AS guarded").collect()
    got = {r.i: r.s for r in rows}
    assert got == {i: scrub(t) for i, t in enumerate([*texts, None])}
    # the engine's regex engine reads the guard as Python's does: it lets through exactly the texts that hold a match
    assert {r.i: r.guarded for r in rows} == {i: None if t is None else re.search(ANY, t) is not None
                                              for i, t in enumerate([*texts, None])}
    assert sum(got[i] != t for i, t in enumerate(texts)) > 50  # the samples do hold matches


@pytest.mark.integration
def test_a_url_keeps_only_its_kept_parameters_and_a_broken_one_does_not_fail_the_query(spark):
    urls = {
        "https://shop.example/p/1?utm_source=ig&email=a@b.com&product_id=P1#x": "https://shop.example/p/1?utm_source=ig&product_id=P1",
        "https://shop.example/p/1#frag": "https://shop.example/p/1",
        "https://shop.example/?email=jane@x.com": "https://shop.example/",
        "https://x.example/?utm_source=&utm_medium=m": "https://x.example/?utm_source=&utm_medium=m",
        "https://x.example/#a?utm_source=b": "https://x.example/",
        "https://shop.example/p/jane@x.com": "https://shop.example/p/<email>",
        # not hosts: no parameter can be read, the rest is kept and scrubbed
        "https://P91%40/p?utm_source=ig": "https://P91%40/p",
        "https://?utm_source=a": "https://",
        "http://[::1/x?sku=1": "http://[<ip>/x",
    }
    df = spark.createDataFrame([(u,) for u in urls] + [(None,)], "u string")
    got = {r.u: r.s for r in df.selectExpr("u", f"{url_sql('u')} AS s").collect()}
    assert got == {**urls, None: None}
