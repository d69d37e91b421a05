"""Weekly: compact and vacuum every Delta table through delta-rs (7 days of time travel kept)."""

from datetime import datetime

from airflow.sdk import dag, task

from jobs.orchestration import DEFAULT_ARGS


@dag(dag_id="rapport_maintenance", schedule="@weekly", start_date=datetime(2026, 11, 1), catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, tags=["rapport", "maintenance"], doc_md=__doc__)
def rapport_maintenance():
    @task
    def compact_and_vacuum(**context):
        from jobs.orchestration import run_step

        return run_step("maintenance", context)

    compact_and_vacuum()


rapport_maintenance()
