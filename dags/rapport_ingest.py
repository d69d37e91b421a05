"""Hourly: the hour's landing files into bronze, every source and reference extract, then the bronze gate.

Micro-batches: ``RAPPORT_INGEST_SCHEDULE`` (a cron expression, read when the DAG file is parsed) runs it more
often, e.g. ``*/5 * * * *``; with the collector's files rolled as often (``RAPPORT_COLLECTOR_ROLL_SECONDS``), an
acknowledged event reaches gold within minutes (refine and curate follow on their assets; docs/pipeline.md).

The gate announces rapport.bronze (with the window) only when it passed, so refine never starts on
a window whose bronze data failed its checks.
"""

import os
from datetime import datetime

from airflow.sdk import dag

from jobs.orchestration import DEFAULT_ARGS, stage_tasks


@dag(dag_id="rapport_ingest", schedule=os.environ.get("RAPPORT_INGEST_SCHEDULE") or "@hourly",
     start_date=datetime(2026, 11, 1), catchup=False, max_active_runs=1, default_args=DEFAULT_ARGS, tags=["rapport", "bronze"], doc_md=__doc__)
def rapport_ingest():
    stage_tasks("ingest", ("ingest.clickstream", "ingest.social", "ingest.orders", "ingest.customers",
                           "ingest.products", "ingest.campaigns", "ingest.campaign_posts", "ingest.survey"))


rapport_ingest()
