"""Gold to S3 for recommendation services, after the gold gate passed: interactions and customer features.

Each dataset becomes a snapshot under RAPPORT_EXPORT_URI/<dataset>/snapshot=<time>/ (data files, then
manifest.json, then _SUCCESS); unchanged gold publishes nothing new. S3 credentials, region and endpoint
come from the aws_default connection when it exists. Skipped when RAPPORT_EXPORT_URI is not set.
"""

from datetime import datetime

from airflow.sdk import dag, task

from jobs.assets import EXPORTS, GOLD
from jobs.orchestration import DEFAULT_ARGS


@dag(dag_id="rapport_export", schedule=[GOLD], start_date=datetime(2026, 11, 1), catchup=False, max_active_runs=1,
     default_args=DEFAULT_ARGS, tags=["rapport", "export"], doc_md=__doc__)
def rapport_export():
    @task(outlets=[EXPORTS])
    def export(**context):
        from jobs.orchestration import run_step

        return run_step("export", context)

    export()


rapport_export()
