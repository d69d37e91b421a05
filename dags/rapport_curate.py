"""Silver to gold when the silver gate passed: timelines, relationships, trends, campaigns, then the gold gate;
once it passed, the marketing report (<lake>/_reports/<date>/index.html) and the Data Docs pages of the gates that
passed since the last render.

The check task refuses a window whose silver gate failed or that did not reconcile in ops.audit.
"""

from datetime import datetime

from airflow.sdk import dag

from jobs.assets import asset
from jobs.orchestration import DEFAULT_ARGS, stage_tasks, step_task


@dag(dag_id="rapport_curate", schedule=[asset("rapport.silver")], start_date=datetime(2026, 11, 1), catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, tags=["rapport", "gold"], doc_md=__doc__)
def rapport_curate():
    tasks = stage_tasks("curate", ("curate",))
    # only from gold that passed its gate; the gates' Data Docs pages beside the report, off the path to gold
    tasks["gate.gold"] >> [step_task("report"), step_task("quality.docs")]


rapport_curate()
