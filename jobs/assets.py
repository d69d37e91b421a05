"""The Airflow assets Rapport's DAGs produce and consume (cheap to import at DAG parse time)."""

from airflow.sdk import Asset

BRONZE = {s: Asset(name=f"rapport.bronze.{s}", uri=f"rapport://lake/bronze/{s}") for s in ("clickstream", "social", "orders")}
SILVER = Asset(name="rapport.silver", uri="rapport://lake/silver")
GOLD = Asset(name="rapport.gold", uri="rapport://lake/gold")
EXPORTS = Asset(name="rapport.exports", uri="rapport://exports")


def announce(context: dict, asset: Asset, result: dict) -> None:
    """Attach the processed window to the asset event, so the consumer processes the same window."""
    context["outlet_events"][asset].extra = {k: v for k, v in result.items() if k.startswith("window_")}
