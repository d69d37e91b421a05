"""Privacy requests, recorded and processed: erase (with proof), suppress, unsuppress.

``record`` writes a request to ``ops.privacy_requests`` with the person's identifiers as keyed hashes only.
``process`` (the registered ``privacy`` step, also run daily by the ``rapport_privacy`` DAG) takes pending
requests in the order they arrived and moves each along, one idempotent phase at a time, so a request
interrupted at any point is finished by the next run:

    erase:       received → resolved (who they are, stored before anything is deleted) → erased → verified
    suppress:    received → suppressed        unsuppress: received → unsuppressed

Erasing also suppresses the person, unless the request says they may come back (``allow_return``): their
later events are dropped on arrival and counted as ``suppressed`` in the audit, not quarantined.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from jobs.config import Config
from jobs.lake import Lake
from jobs.runs.report import Report
from jobs.runs.run_id import RunId
from jobs.runs.window import Window
from jobs.privacy.person import Person, resolve
from jobs.pii.scrub import scrub

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
KINDS = ("erase", "suppress", "unsuppress")
DONE = ("verified", "suppressed", "unsuppressed", "failed")


@dataclass
class PrivacyReport(Report):
    processed: dict[str, str] = field(default_factory=dict)  # request id -> status reached
    rows_erased: int = 0
    files_removed: int = 0


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _write(lake: Lake, row: dict) -> None:
    from schemas.tables import table

    cols = table("ops.privacy_requests").column_names
    lake.merge("ops.privacy_requests", lake.frame("ops.privacy_requests", [tuple(row.get(c) for c in cols)]))


def get(lake: Lake, request_id: str) -> dict | None:
    from pyspark.sql import functions as F

    if not lake.exists("ops.privacy_requests"):
        return None
    row = lake.read("ops.privacy_requests").where(F.col("request_id") == F.lit(request_id)).first()
    return row.asDict() if row else None


def record(spark: "SparkSession", cfg: Config, kind: str, identifiers: list[str], reason: str | None = None,
           allow_return: bool = False) -> str:
    """Record a request (hashed identifiers only); returns its id."""
    if kind not in KINDS:
        raise ValueError(f"unknown request kind {kind!r}; kinds are {', '.join(KINDS)}")
    request_id = f"pr_{secrets.token_hex(8)}"
    detail = json.dumps({"allow_return": allow_return})
    _write(Lake(cfg, spark), {"request_id": request_id, "kind": kind, "identifiers": identifiers, "customer_keys": [],
                              "shared_kept": [], "reason": scrub(reason), "received_at": _now(), "status": "received",
                              "status_at": _now(), "detail": detail, "proof": None})
    log.info("privacy request %s (%s) recorded", request_id, kind)
    return request_id


def _person(row: dict) -> Person:
    state = json.loads(row.get("detail") or "{}")
    return Person(keys=list(row.get("customer_keys") or []), identifiers=state.get("resolved", list(row["identifiers"])),
                  shared=list(row.get("shared_kept") or []))


def _suppress(lake: Lake, identifiers: list[str], request_id: str, active: bool) -> None:
    if identifiers:
        now = _now()
        lake.merge("ops.suppressions", lake.frame("ops.suppressions",
                                                  [(i, request_id, active, now) for i in sorted(set(identifiers))]))


def process(spark: "SparkSession", cfg: Config, window: Window, *, run_id: str | None = None,
            request_id: str | None = None) -> PrivacyReport:
    """Move every pending request (or one) as far as it goes."""
    from pyspark.sql import functions as F

    lake = Lake(cfg, spark)
    report = PrivacyReport("privacy", run_id or str(RunId.new("privacy")), window)
    if not lake.exists("ops.privacy_requests"):
        return report
    pending = lake.read("ops.privacy_requests").where(~F.col("status").isin(*DONE))
    if request_id:
        pending = pending.where(F.col("request_id") == F.lit(request_id))
    for row in sorted((r.asDict() for r in pending.collect()), key=lambda r: r["received_at"]):  # the queue
        try:
            report.processed[row["request_id"]] = _advance(spark, cfg, lake, row, report)
        except Exception as exc:
            log.exception("privacy request %s failed", row["request_id"])
            _write(lake, {**row, "status": "failed", "status_at": _now(),
                          "detail": json.dumps({**json.loads(row.get("detail") or "{}"),
                                                "error": f"{type(exc).__name__}: {exc}"[:2000]})})
            report.processed[row["request_id"]] = "failed"
    return report


def _advance(spark: "SparkSession", cfg: Config, lake: Lake, row: dict, report: PrivacyReport) -> str:
    from jobs.privacy import erase as eraser
    from jobs.privacy.verify import verify, write_report

    rid, state = row["request_id"], json.loads(row.get("detail") or "{}")
    if row["status"] == "received":
        person = resolve(spark, cfg, list(row["identifiers"]))
        state["resolved"] = person.identifiers
        row = {**row, "customer_keys": person.keys, "shared_kept": person.shared, "status": "resolved",
               "status_at": _now(), "detail": json.dumps(state)}
        _write(lake, row)  # who they are, kept before anything is deleted: a resumed run erases the same person
    person = _person(row)
    if row["kind"] == "suppress":
        _suppress(lake, person.identifiers, rid, True)
        _write(lake, {**row, "status": "suppressed", "status_at": _now()})
        return "suppressed"
    if row["kind"] == "unsuppress":
        _suppress(lake, person.identifiers, rid, False)
        _write(lake, {**row, "status": "unsuppressed", "status_at": _now()})
        return "unsuppressed"
    if row["status"] == "resolved":
        if not state.get("allow_return"):  # first, so nothing of theirs lands again while they are erased
            _suppress(lake, person.identifiers, rid, True)
        erased = eraser.erase(spark, cfg, person, rid)
        published, removed = _exports(spark, cfg, person)
        eraser.remove_staging(cfg)
        touched = sorted(set(erased.rows) | {"gold.daily_product_trends", "gold.daily_platform_engagement",
                                              "gold.campaign_performance", "gold.customer_relationship"})
        files = eraser.vacuum(lake, touched)
        report.rows_erased += sum(erased.rows.values())
        report.files_removed += files
        state.update(rows=erased.rows, dates=[str(d) for d in erased.dates], vacuumed=touched, files_removed=files,
                     snapshots_published=published, snapshots_removed=removed, docs_removed=erased.docs_removed)
        row = {**row, "status": "erased", "status_at": _now(), "detail": json.dumps(state)}
        _write(lake, row)
    proof = verify(spark, cfg, rid, person)
    where = write_report(cfg, proof)
    state["found"] = len(proof.found)
    state["at_source"] = sorted({f["path"] for f in proof.at_source})
    status = "verified" if proof.clean else "failed"
    _write(lake, {**row, "status": status, "status_at": _now(), "proof": where, "detail": json.dumps(state)})
    return status


def _exports(spark: "SparkSession", cfg: Config, person: Person) -> tuple[list[str], list[str]]:
    """Publish every dataset anew without the person; delete every older snapshot that holds them."""
    from pyspark.sql import functions as F

    from jobs.export import run as export
    from jobs.export.datasets import DATASETS
    from jobs.export.snapshot import SnapshotStore
    from jobs.storage import s3_client

    if not cfg.export_uri or not person.keys:
        return [], []
    store = SnapshotStore(s3_client(cfg), cfg.export_uri)
    had = [name for name in DATASETS if store.snapshots(name)]
    published = []
    if had:
        r = export.run(spark, cfg, Window(), datasets=had, force=True, progress=log.info)
        published = list(r.published.values())
    removed = []
    for name in had:
        newest = store.latest(name)
        for snap in store.snapshots(name):
            if newest is not None and snap.id == newest.id:
                continue
            uri = store.uri(snap.prefix).rstrip("/")
            parquet = [f"{uri}/{n}" for n in sorted(snap.names) if n.endswith(".parquet")]
            jsonl = [f"{uri}/{n}" for n in sorted(snap.names) if n.endswith(".jsonl.gz")]
            if not parquet and not jsonl:
                continue
            data = spark.read.parquet(*parquet) if parquet else spark.read.json(jsonl)
            if "customer_key" in data.columns and data.where(F.col("customer_key").isin(person.keys)).limit(1).count():
                store.remove(snap)  # an older snapshot that holds them goes
                removed.append(uri)
    return published, removed
