"""OpenLineage events reach a real HTTP receiver on loopback, as Marquez would get them.

With ``OPENLINEAGE_URL`` set, ingest, refine, curate and export each emit START and COMPLETE run events whose
inputs and outputs name the registry's tables with their schema facets, the steps of a stage share its run as
parent, a gate's inputs carry its quality results, and a failing gate emits FAIL with the failed assertion.
Without any OpenLineage setting nothing is sent.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from jobs.pipeline.runner import run_stage
from jobs.pipeline.steps import step
from jobs.quality.gate import QualityGateError
from jobs.runs.window import Window
from schemas.tables import table


def by_job(events: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for e in events:
        out.setdefault(e["job"]["name"], []).append(e)
    return out


def test_every_step_tells_what_it_read_and_wrote(spark, small_landing, s3_config, lineage_receiver, tmp_path,
                                                 monkeypatch):
    url, events = lineage_receiver
    s3, bucket = s3_config
    cfg = dataclasses.replace(s3, lake_root=str(tmp_path / "lake"), landing_root=str(small_landing[0]),
                              pii_key="lineage-test-key-0123456789", export_uri=f"s3://{bucket}/recs")
    monkeypatch.chdir(tmp_path)  # no openlineage.yml here
    for k in ("OPENLINEAGE_CONFIG", "OPENLINEAGE_DISABLED", "OPENLINEAGE_NAMESPACE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.delenv("OPENLINEAGE_URL", raising=False)
    run_stage(spark, cfg, "ingest", Window(), only=["ingest.survey"], gate=False)
    assert events == []  # nothing configured: nothing sent

    monkeypatch.setenv("OPENLINEAGE_URL", url)
    stages = {name: run_stage(spark, cfg, name, Window()) for name in ("ingest", "refine", "curate", "export")}
    jobs = by_job(events)
    for name, result in stages.items():
        for step_name in [*result.reports, *(["gate"] if result.gate is not None else [])]:
            full = step_name if step_name != "gate" else result.gate.step
            sent = jobs[f"rapport.{full}"]
            assert [e["eventType"] for e in sent] == ["START", "COMPLETE"], (full, [e["eventType"] for e in sent])
            assert sent[0]["run"]["runId"] == sent[1]["run"]["runId"]
            parent = sent[1]["run"]["facets"]["parent"]
            assert parent["job"]["name"] == f"rapport.{name}", parent
            assert all(e["path"] == "/api/v1/lineage" for e in sent)
    # inputs and outputs are the registry's tables, with their schemas
    refine = jobs["rapport.refine.clickstream"][1]
    outputs = {d["name"]: d for d in refine["outputs"]}
    assert set(step("refine.clickstream").writes) <= set(outputs)
    fields = [f["name"] for f in outputs["silver.clickstream_events"]["facets"]["schema"]["fields"]]
    assert fields == list(table("silver.clickstream_events").column_names)
    assert {d["name"] for d in refine["inputs"]} == set(step("refine.clickstream").reads)
    assert outputs["silver.clickstream_events"]["namespace"].startswith("file://")
    curate = jobs["rapport.curate"][1]
    assert "gold.interactions" in {d["name"] for d in curate["outputs"]}
    export = jobs["rapport.export"][1]
    assert {d["namespace"] for d in export["outputs"]} == {f"s3://{bucket}"}
    assert {d["name"] for d in export["inputs"]} >= {"gold.interactions", "silver.identity_map", "gold.customer_relationship"}
    # a gate's inputs carry what it checked
    gate = jobs["rapport.gate.silver"][1]
    checked = {d["name"]: d["facets"]["dataQualityAssertions"]["assertions"] for d in gate["inputs"]
               if "dataQualityAssertions" in d["facets"]}
    assert "silver.clickstream_events" in checked
    assert all(a["success"] for a in checked["silver.clickstream_events"])
    assert any(a["assertion"] == "quarantine_rate" for a in checked["silver.clickstream_events"])

    # a failing gate: FAIL, with the failed assertion
    suites = tmp_path / "suites"
    shutil.copytree(cfg.suites_dir(), suites)
    with (suites / "silver_clickstream_events.yaml").open("a") as f:
        f.write("  - {type: expect_table_row_count_to_be_between, max_value: 0, severity: critical}\n")
    events.clear()
    with pytest.raises(QualityGateError):
        run_stage(spark, dataclasses.replace(cfg, quality_suites=str(suites)), "refine", Window())
    failed = by_job(events)["rapport.gate.silver"]
    assert [e["eventType"] for e in failed] == ["START", "FAIL"]
    assert "quality gate failed" in failed[1]["run"]["facets"]["errorMessage"]["message"]
    assertions = {d["name"]: d["facets"]["dataQualityAssertions"]["assertions"] for d in failed[1]["inputs"]
                  if "dataQualityAssertions" in d["facets"]}
    assert any(a["assertion"] == "expect_table_row_count_to_be_between" and a["success"] is False
               for a in assertions["silver.clickstream_events"])
