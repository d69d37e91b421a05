"""Bronze to silver when the bronze gate passed: reference data, the three event sources, identities, sessions,
then the silver gate, which announces rapport.silver. The check task refuses a window whose bronze gate failed.
"""

from datetime import datetime

from airflow.sdk import dag

from jobs.assets import asset
from jobs.orchestration import DEFAULT_ARGS, stage_tasks


@dag(dag_id="rapport_refine", schedule=[asset("rapport.bronze")], start_date=datetime(2026, 11, 1), catchup=False,
     max_active_runs=1, default_args=DEFAULT_ARGS, tags=["rapport", "silver"], doc_md=__doc__)
def rapport_refine():
    stage_tasks("refine", ("refine.reference", "refine.clickstream", "refine.social", "refine.orders",
                           "refine.identity", "refine.sessions"))


rapport_refine()
