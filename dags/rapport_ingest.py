"""Hourly: landing files of the hour into bronze, one task group per source, then the bronze quality gate."""

from datetime import datetime

from airflow.sdk import dag, task, task_group

from jobs.assets import BRONZE, announce
from jobs.orchestration import DEFAULT_ARGS


@dag(dag_id="rapport_ingest", schedule="@hourly", start_date=datetime(2026, 11, 1), catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, tags=["rapport", "bronze"], doc_md=__doc__)
def rapport_ingest():
    @task
    def reference(**context):
        from jobs.orchestration import run_step

        return [run_step(f"ingest_{name}", context) for name in ("customers", "products", "campaigns", "campaign_posts")]

    @task
    def gate_bronze(**context):
        from jobs.orchestration import run_step

        return run_step("gate_bronze", context)

    gate = gate_bronze()
    reference() >> gate
    for source, asset in BRONZE.items():
        @task_group(group_id=source)
        def per_source(source=source, asset=asset):
            @task(task_id="ingest", outlets=[asset])
            def ingest(**context):
                from jobs.orchestration import run_step

                result = run_step(f"ingest_{source}", context)
                announce(context, asset, result)
                return result

            return ingest()

        per_source() >> gate


rapport_ingest()
