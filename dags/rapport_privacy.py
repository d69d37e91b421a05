"""Daily: pending privacy requests, in the order they arrived (erase everywhere with proof, suppress, unsuppress),
then retention: raw lines past RAPPORT_RAW_RETENTION_DAYS lose their personal data.

Each phase of a request is idempotent, so a request interrupted at any point is finished by the next run.
"""

from datetime import datetime

from airflow.sdk import dag

from jobs.orchestration import DEFAULT_ARGS, step_task


@dag(dag_id="rapport_privacy", schedule="@daily", start_date=datetime(2026, 11, 1), catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, tags=["rapport", "privacy"], doc_md=__doc__)
def rapport_privacy():
    step_task("privacy") >> step_task("retention")


rapport_privacy()
