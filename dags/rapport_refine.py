"""Bronze to silver when any bronze source is updated (data-aware), with the silver quality gate in line."""

from datetime import datetime

from airflow.sdk import dag, task

from jobs.assets import BRONZE, SILVER, announce
from jobs.orchestration import DEFAULT_ARGS


@dag(dag_id="rapport_refine", schedule=(BRONZE["clickstream"] | BRONZE["social"] | BRONZE["orders"]),
     start_date=datetime(2026, 11, 1), catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS,
     tags=["rapport", "silver"], doc_md=__doc__)
def rapport_refine():
    @task
    def refine(**context):
        from jobs.orchestration import run_step

        return run_step("refine", context)

    @task(outlets=[SILVER])
    def gate_silver(**context):
        from jobs.orchestration import run_step

        result = run_step("gate_silver", context)
        announce(context, SILVER, result)
        return result

    refine() >> gate_silver()


rapport_refine()
