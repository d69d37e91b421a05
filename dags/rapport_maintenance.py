"""Weekly: every quality suite on whole tables (the daily gates read only what each run touched), then compaction
and vacuum of every registered Delta table through delta-rs (7 days of time travel kept)."""

from datetime import datetime

from airflow.sdk import dag

from jobs.orchestration import DEFAULT_ARGS, step_task


@dag(dag_id="rapport_maintenance", schedule="@weekly", start_date=datetime(2026, 11, 1), catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, tags=["rapport", "maintenance"], doc_md=__doc__)
def rapport_maintenance():
    # compaction runs even when the whole-table gate failed: it changes no row, and the failure stays recorded
    step_task("gate.full") >> step_task("maintenance", trigger_rule="all_done")


rapport_maintenance()
