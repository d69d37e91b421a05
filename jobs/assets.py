"""The Airflow assets Rapport's DAGs produce and consume: one per stage, from the registry (cheap to import)."""

from airflow.sdk import Asset

from jobs.pipeline.steps import STAGES

ASSETS = {st.asset: Asset(name=st.asset, uri=f"rapport://{st.asset.removeprefix('rapport.')}") for st in STAGES.values()}


def asset(name: str) -> Asset:
    """An asset by name; an unknown name fails when the DAG file is parsed."""
    try:
        return ASSETS[name]
    except KeyError:
        raise KeyError(f"no asset {name!r}; assets are {', '.join(ASSETS)} (one per stage, jobs/pipeline/steps.py)") from None
