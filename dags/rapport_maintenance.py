"""Weekly: compact and vacuum every registered Delta table through delta-rs (7 days of time travel kept)."""

from datetime import datetime

from airflow.sdk import dag

from jobs.orchestration import DEFAULT_ARGS, step_task


@dag(dag_id="rapport_maintenance", schedule="@weekly", start_date=datetime(2026, 11, 1), catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, tags=["rapport", "maintenance"], doc_md=__doc__)
def rapport_maintenance():
    step_task("maintenance")


rapport_maintenance()
