"""The one-pass measurement agrees with Great Expectations' own validation, expectation by expectation, on a batch
with nulls, edge values and violations; what it does not compile is left to Great Expectations."""

from __future__ import annotations

from datetime import datetime

import great_expectations as gx
import pytest
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from jobs.quality import onepass

pytestmark = pytest.mark.integration

ROWS = [  # id, channel, amount, code, note, at, expired
    (1, "web", 0.0, "ck_0123456789abcdef", "a@b", datetime(2026, 1, 1, 10), None),
    (2, "web", 5.5, "ck_0123456789abcdeg", None, datetime(2026, 1, 2, 10), None),
    (2, "social", -1.0, None, "plain", datetime(2026, 1, 3, 10), datetime(2026, 2, 1)),
    (3, "fax", 100.0, "CK_X", "x", None, None),
    (None, None, None, "ck_aaaaaaaaaaaaaaaa", "", datetime(2026, 1, 4, 10), None),
]
SCHEMA = "id bigint, channel string, amount double, code string, note string, at timestamp, expired timestamp"

def check(kind: str, **kwargs) -> onepass.Check:
    return onepass.Check(kind, kwargs, {})


NOT_EXPIRED = {"type": "nullity", "column": {"name": "expired"}, "is_null": True}
CHECKS = [
    check("expect_column_values_to_not_be_null", column="id"),
    check("expect_column_values_to_not_be_null", column="channel", mostly=0.5),
    check("expect_column_values_to_not_be_null", column="note", row_condition=NOT_EXPIRED),
    check("expect_column_values_to_be_null", column="expired"),
    check("expect_column_values_to_be_in_set", column="channel", value_set=["web", "social"]),
    check("expect_column_values_to_be_in_set", column="channel", value_set=["web", "social", "fax"]),
    check("expect_column_values_to_be_between", column="amount", min_value=0),
    check("expect_column_values_to_be_between", column="amount", min_value=0, max_value=100, strict_max=True),
    check("expect_column_values_to_be_between", column="amount", min_value=-1, max_value=100),
    check("expect_column_values_to_match_regex", column="code", regex="^ck_[0-9a-f]{16}$"),
    check("expect_column_values_to_not_match_regex", column="note", regex="@"),
    check("expect_column_value_lengths_to_equal", column="code", value=19),
    check("expect_table_row_count_to_be_between", min_value=5),
    check("expect_table_row_count_to_be_between", min_value=6),
    check("expect_column_max_to_be_between", column="at", min_value=datetime(2026, 1, 4)),
    check("expect_column_max_to_be_between", column="at", min_value=datetime(2026, 1, 5)),
    check("expect_table_columns_to_match_set", column_set=["id", "channel", "amount", "code", "note", "at", "expired"]),
    check("expect_table_columns_to_match_set", column_set=["id", "channel"]),
    check("expect_column_pair_values_a_to_be_greater_than_b", column_A="expired", column_B="at", or_equal=True),
    check("expect_column_pair_values_a_to_be_greater_than_b", column_A="at", column_B="expired", or_equal=True),
    check("expect_column_pair_values_a_to_be_greater_than_b", column_A="amount", column_B="id"),
]


def expectation(c: onepass.Check):
    """The same check as Great Expectations' own expectation object."""
    return ExpectationConfiguration(type=c.type, kwargs=c.kwargs, meta=c.meta).to_domain_obj()


@pytest.fixture(scope="module")
def batch(spark):
    return spark.createDataFrame(ROWS, SCHEMA)


@pytest.fixture(scope="module")
def by_ge(batch, tmp_path_factory):
    ctx = gx.get_context(mode="file", project_root_dir=str(tmp_path_factory.mktemp("gx")))
    batch_def = ctx.data_sources.add_spark("s").add_dataframe_asset("a").add_batch_definition_whole_dataframe("w")
    ge_batch = batch_def.get_batch(batch_parameters={"dataframe": batch})
    return [ge_batch.validate(expectation(c), result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
            for c in CHECKS]


def test_one_pass_agrees_with_great_expectations_on_every_compiled_expectation(batch, by_ge):
    rows, results, rest = onepass.evaluate(batch, CHECKS, 5)
    assert rows == len(ROWS) and rest == []
    assert len({r.success for r in by_ge}) == 2  # the set holds passes and failures
    for i, theirs in enumerate(by_ge):
        ours, label = results[i], CHECKS[i].type
        assert ours["success"] == theirs.success, (i, label, ours["result"], theirs.result)
        assert ours["result"].get("unexpected_count") == theirs.result.get("unexpected_count"), (i, label)
        if "observed_value" in theirs.result and not isinstance(theirs.result["observed_value"], list):
            assert str(ours["result"]["observed_value"]) == str(theirs.result["observed_value"]), (i, label)
        assert sorted(map(str, ours["result"].get("partial_unexpected_list") or [])) == \
            sorted(map(str, theirs.result.get("partial_unexpected_list") or [])), (i, label)


def test_an_expectation_not_compiled_is_left_to_great_expectations(batch):
    mean = check("expect_column_mean_to_be_between", column="amount", min_value=0)
    rows, results, rest = onepass.evaluate(batch, [check("expect_column_values_to_not_be_null", column="id"), mean], 5)
    assert rest == [1] and set(results) == {0} and results[0]["result"]["unexpected_count"] == 1


def test_a_missing_column_is_reported_not_raised(batch):
    _, results, _ = onepass.evaluate(batch, [check("expect_column_values_to_not_be_null", column="nope")], 5)
    assert not results[0]["success"] and "nope" in results[0]["exception_info"]["exception_message"]


UNIQUE = [("expect_column_values_to_be_unique", {"column": "id"}),
          ("expect_compound_columns_to_be_unique", {"column_list": ["id", "channel"]}),
          ("expect_compound_columns_to_be_unique", {"column_list": ["channel", "code"]}),
          ("expect_column_values_to_be_unique", {"column": "at"})]


def test_uniqueness_counted_from_the_keys_agrees_with_great_expectations(batch, tmp_path_factory):
    """A uniqueness check is counted from the batch's keys (``expectations.expand``: no join back to the batch);
    its unexpected count and sample are Great Expectations' for the same expectation on the same rows."""
    from jobs.quality import expectations
    from jobs.quality.suites import Expectation, Suite

    again = batch.sparkSession.createDataFrame([(1, "web", 1.0, "ck_fedcba9876543210", "n", datetime(2026, 1, 9), None)],
                                               SCHEMA)
    duplicated = batch.unionByName(again)  # ids 1 and 2 twice each, (1, web) twice
    suite = Suite("test.batch", "table", tuple(Expectation(k, kw, "critical") for k, kw in UNIQUE))
    df, checks, keyed = expectations.expand(None, suite, duplicated, None)
    assert set(keyed) == {0, 1, 2, 3} and df.columns == duplicated.columns  # nothing joined back to the batch
    rows, ours, rest = onepass.evaluate(df, checks, 5, keyed=keyed)
    assert rows == len(ROWS) + 1 and rest == []
    ctx = gx.get_context(mode="file", project_root_dir=str(tmp_path_factory.mktemp("gx-unique")))
    ge_batch = ctx.data_sources.add_spark("s").add_dataframe_asset("a").add_batch_definition_whole_dataframe(
        "w").get_batch(batch_parameters={"dataframe": duplicated})
    failed = 0
    for i, (kind, kw) in enumerate(UNIQUE):
        theirs = ge_batch.validate(expectation(onepass.Check(kind, kw, {})),
                                   result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
        assert ours[i]["success"] == theirs.success, (kind, kw, ours[i]["result"], theirs.result)
        assert ours[i]["result"]["unexpected_count"] == theirs.result["unexpected_count"], (kind, kw)
        failed += not theirs.success
        if kind == "expect_column_values_to_be_unique":  # the sample: the key's value once per row
            assert sorted(map(str, ours[i]["result"]["partial_unexpected_list"])) == \
                sorted(map(str, theirs.result["partial_unexpected_list"])), (kind, kw)
    assert failed == 2  # id and (id, channel) break it; (channel, code) and at do not (nulls are not keys)
