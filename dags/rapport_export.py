"""Gold to S3 for recommendation services, after the gold gate passed: interactions and customer features.

Each dataset becomes a snapshot under RAPPORT_EXPORT_URI/<dataset>/snapshot=<time>/ (data files, then
manifest.json, then _SUCCESS); unchanged gold publishes nothing new. S3 credentials, region and endpoint
come from the aws_default connection when it exists. Skipped when RAPPORT_EXPORT_URI is not set.
"""

from datetime import datetime

from airflow.sdk import dag

from jobs.assets import asset
from jobs.orchestration import DEFAULT_ARGS, stage_tasks


@dag(dag_id="rapport_export", schedule=[asset("rapport.gold")], start_date=datetime(2026, 11, 1), catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, tags=["rapport", "export"], doc_md=__doc__)
def rapport_export():
    stage_tasks("export", ("export",))


rapport_export()
