"""Silver to gold when the silver gate passed: timelines, relationships, trends, campaigns, then the gold gate.

The check task refuses a window whose silver gate failed or that did not reconcile in ops.audit.
"""

from datetime import datetime

from airflow.sdk import dag

from jobs.assets import asset
from jobs.orchestration import DEFAULT_ARGS, stage_tasks


@dag(dag_id="rapport_curate", schedule=[asset("rapport.silver")], start_date=datetime(2026, 11, 1), catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, tags=["rapport", "gold"], doc_md=__doc__)
def rapport_curate():
    stage_tasks("curate", ("curate",))


rapport_curate()
