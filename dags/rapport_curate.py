"""Silver to gold when silver passed its gate: timelines, relationships, trends, campaigns, then the gold gate."""

from datetime import datetime

from airflow.sdk import dag, task

from jobs.assets import GOLD, SILVER, announce
from jobs.orchestration import DEFAULT_ARGS


@dag(dag_id="rapport_curate", schedule=[SILVER], start_date=datetime(2026, 11, 1), catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, tags=["rapport", "gold"], doc_md=__doc__)
def rapport_curate():
    @task
    def curate(**context):
        from jobs.orchestration import run_step

        return run_step("curate", context)

    @task(outlets=[GOLD])
    def gate_gold(**context):
        from jobs.orchestration import run_step

        result = run_step("gate_gold", context)
        announce(context, GOLD, result)
        return result

    curate() >> gate_gold()


rapport_curate()
