"""The registry is the source of truth: the lake holds exactly its tables, with its columns, types and log
statistics; the DAGs name only its steps; a typo in a DAG file fails when the file is parsed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.lake import Lake
from jobs.pipeline.steps import STAGES, STEPS, check, step, upstream
from schemas.tables import parse_type, table, tables


@pytest.mark.unit
def test_the_declarations_agree_with_each_other():
    check()  # every table a step names is declared; every stage runs a step after those whose output it reads
    for st in STAGES.values():
        for name in st.steps:
            assert all(st.steps.index(u) < st.steps.index(name) for u in upstream(name, st.steps))
    written = {t for s in STEPS.values() for t in s.writes}
    derived = {t.qualified for t in tables() if t.layer in ("bronze", "silver", "gold") and t.write != "view"}
    assert derived <= written, sorted(derived - written)  # no table without a step that makes it
    assert not {t.qualified for t in tables() if t.write == "view"} & written  # a view is read, never written


def _logged_stats(path: Path) -> list[str]:
    """The statistics of every file a commit of the table added, as the log holds them."""
    actions = (json.loads(line) for f in sorted((path / "_delta_log").glob("*.json")) for line in f.open())
    return [a["add"]["stats"] for a in actions if a.get("add", {}).get("stats")]


@pytest.mark.integration
def test_every_table_of_the_lake_is_declared_with_its_columns_and_types(spark, refined):
    cfg, _, _ = refined
    lake = Lake(cfg, spark)
    on_disk = {f"{p.parent.parent.name}.{p.parent.name}" for p in Path(lake.root).glob("*/*/_delta_log")}
    declared = {t.qualified for t in tables()}
    assert on_disk - declared == set()  # a table on disk that the registry does not know fails here
    for name in sorted(on_disk):
        t = table(name)
        actual = {f.name: f.dataType.simpleString() for f in lake.read(t).schema.fields}
        want = {c.name: parse_type(c.type).simpleString() for c in t.columns}
        assert actual == want, name
    for name in sorted(on_disk):  # the log's statistics: declared columns only (none personal), kept by the table
        t, dt = table(name), lake.delta_table(name)
        assert {k: v for k, v in dt.metadata().configuration.items() if "dataSkipping" in k} == t.properties(), name
        for stats in _logged_stats(Path(lake.path(name))):
            named = set().union(*(json.loads(stats).get(k, {}).keys() for k in ("minValues", "maxValues", "nullCount")))
            assert named <= set(t.stats_columns) and not named & {c.name for c in t.columns if c.pii != "none"}, name
    stage_writes = {t for st in ("ingest", "refine", "curate") for s in STAGES[st].steps + (STAGES[st].gate,)
                    for t in step(s).writes if not table(t).meta.get("occasional")}
    assert stage_writes - on_disk == set()  # every table a step writes exists after the chain


PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "tasks": {d.dag_id: [t.task_id for t in d.tasks] for d in bag.dags.values()}}))
"""


def _parse(folder: Path, home: Path) -> dict:
    from jobs.airflow_local import airflow_env

    proc = subprocess.run([sys.executable, "-c", PARSE, str(folder)], env=airflow_env(home), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.unit
def test_every_dag_task_is_a_registered_step_and_a_typo_fails_at_parse_time(tmp_path):
    from jobs.airflow_local import REPO

    info = _parse(REPO / "dags", tmp_path / "airflow")
    assert info["errors"] == {}
    task_ids = {s.task_id for s in STEPS.values()} | {"check"}
    for dag_id, tasks in info["tasks"].items():
        assert set(tasks) <= task_ids, (dag_id, sorted(set(tasks) - task_ids))
    broken = tmp_path / "dags"
    broken.mkdir()
    text = (REPO / "dags" / "rapport_refine.py").read_text().replace('"refine.clickstream"', '"refine.clikstream"')
    (broken / "rapport_refine.py").write_text(text)
    errors = _parse(broken, tmp_path / "airflow")["errors"]
    assert len(errors) == 1 and "no step 'refine.clikstream'" in next(iter(errors.values()))


@pytest.mark.unit
def test_the_architecture_page_is_generated_from_the_registry():
    from jobs.pipeline.docs import render

    page = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"
    assert page.read_text() == render(), "docs/architecture.md is stale: run `python -m jobs.pipeline.docs`"
    assert os.path.getsize(page) > 2000
