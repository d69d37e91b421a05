"""The one-pass measurement agrees with Great Expectations' own validation, expectation by expectation, on a batch
with nulls, edge values and violations; what it does not compile is left to Great Expectations."""

from __future__ import annotations

from datetime import datetime

import great_expectations as gx
import great_expectations.expectations as gxe
import pytest

from jobs.quality import onepass
from great_expectations.expectations.row_conditions import Column

pytestmark = pytest.mark.integration

ROWS = [  # id, channel, amount, code, note, at, expired
    (1, "web", 0.0, "ck_0123456789abcdef", "a@b", datetime(2026, 1, 1, 10), None),
    (2, "web", 5.5, "ck_0123456789abcdeg", None, datetime(2026, 1, 2, 10), None),
    (2, "social", -1.0, None, "plain", datetime(2026, 1, 3, 10), datetime(2026, 2, 1)),
    (3, "fax", 100.0, "CK_X", "x", None, None),
    (None, None, None, "ck_aaaaaaaaaaaaaaaa", "", datetime(2026, 1, 4, 10), None),
]
SCHEMA = "id bigint, channel string, amount double, code string, note string, at timestamp, expired timestamp"

EXPECTATIONS = [
    gxe.ExpectColumnValuesToNotBeNull(column="id"),
    gxe.ExpectColumnValuesToNotBeNull(column="channel", mostly=0.5),
    gxe.ExpectColumnValuesToNotBeNull(column="note", row_condition=Column("expired").is_null()),
    gxe.ExpectColumnValuesToBeNull(column="expired"),
    gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=["web", "social"]),
    gxe.ExpectColumnValuesToBeInSet(column="channel", value_set=["web", "social", "fax"]),
    gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0),
    gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=0, max_value=100, strict_max=True),
    gxe.ExpectColumnValuesToBeBetween(column="amount", min_value=-1, max_value=100),
    gxe.ExpectColumnValuesToMatchRegex(column="code", regex="^ck_[0-9a-f]{16}$"),
    gxe.ExpectColumnValuesToNotMatchRegex(column="note", regex="@"),
    gxe.ExpectColumnValueLengthsToEqual(column="code", value=19),
    gxe.ExpectTableRowCountToBeBetween(min_value=5),
    gxe.ExpectTableRowCountToBeBetween(min_value=6),
    gxe.ExpectColumnMaxToBeBetween(column="at", min_value=datetime(2026, 1, 4)),
    gxe.ExpectColumnMaxToBeBetween(column="at", min_value=datetime(2026, 1, 5)),
    gxe.ExpectTableColumnsToMatchSet(column_set=["id", "channel", "amount", "code", "note", "at", "expired"]),
    gxe.ExpectTableColumnsToMatchSet(column_set=["id", "channel"]),
]


@pytest.fixture(scope="module")
def batch(spark):
    return spark.createDataFrame(ROWS, SCHEMA)


@pytest.fixture(scope="module")
def by_ge(batch, tmp_path_factory):
    ctx = gx.get_context(mode="file", project_root_dir=str(tmp_path_factory.mktemp("gx")))
    batch_def = ctx.data_sources.add_spark("s").add_dataframe_asset("a").add_batch_definition_whole_dataframe("w")
    ge_batch = batch_def.get_batch(batch_parameters={"dataframe": batch})
    return [ge_batch.validate(e, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
            for e in EXPECTATIONS]


def test_one_pass_agrees_with_great_expectations_on_every_compiled_expectation(batch, by_ge):
    rows, results, rest = onepass.evaluate(batch, EXPECTATIONS, 5)
    assert rows == len(ROWS) and rest == []
    assert len({r.success for r in by_ge}) == 2  # the set holds passes and failures
    for i, (ours, theirs) in enumerate(zip((results[i] for i in range(len(EXPECTATIONS))), by_ge)):
        label = type(EXPECTATIONS[i]).__name__
        assert ours.success == theirs.success, (i, label, ours.result, theirs.result)
        assert ours.result.get("unexpected_count") == theirs.result.get("unexpected_count"), (i, label)
        if "observed_value" in theirs.result and not isinstance(theirs.result["observed_value"], list):
            assert str(ours.result["observed_value"]) == str(theirs.result["observed_value"]), (i, label)
        assert sorted(map(str, ours.result.get("partial_unexpected_list") or [])) == \
            sorted(map(str, theirs.result.get("partial_unexpected_list") or [])), (i, label)


def test_an_expectation_not_compiled_is_left_to_great_expectations(batch):
    mean = gxe.ExpectColumnMeanToBeBetween(column="amount", min_value=0)
    rows, results, rest = onepass.evaluate(batch, [gxe.ExpectColumnValuesToNotBeNull(column="id"), mean], 5)
    assert rest == [mean] and set(results) == {0} and results[0].result["unexpected_count"] == 1


def test_a_missing_column_is_reported_not_raised(batch):
    _, results, _ = onepass.evaluate(batch, [gxe.ExpectColumnValuesToNotBeNull(column="nope")], 5)
    assert not results[0].success and "nope" in results[0].exception_info["exception_message"]
