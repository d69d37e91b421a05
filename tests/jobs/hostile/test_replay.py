"""Systemic trouble fails a gate by its rate; once fixed, the quarantined lines are replayed and the window reconciles.

A tracking release that sends ``"type": "Track"`` for every track event of a day is not one bad row: the silver
gate fails on the quarantine rate of ``unknown_event_type`` with a message that says which rate, how many and what
to do, and curate refuses the window. ``rapport quarantine replay --reason unknown_event_type --fix type="track"``
lands the lines again in the hours they first arrived and runs them: the gate passes, the audit balances, and
silver and gold hold what a clean landing of the same day gives.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from jobs.config import Config
from jobs.lake import Lake
from jobs.pipeline.replay import ReplayError, replay
from jobs.pipeline.runner import run_stage
from jobs.runs.window import Window
from jobs.quality.gate import QualityGateError
from tests.lakes import PII_KEY, RUN_COLUMNS

LINEAGE = {"source_file", "line_number", "fingerprint", *RUN_COLUMNS}


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    from jobs.generate import Params, generate

    root = tmp_path_factory.mktemp("replay-day")
    generate(Params(customers=150, days=1, start=date(2026, 11, 3), seed=7), root / "clean", workers=1, progress=False)
    broken = root / "broken"
    shutil.copytree(root / "clean", broken)
    changed = 0
    for path in (broken / "clickstream").rglob("*.gz"):  # a tracking release capitalises one event type
        try:
            lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        except (EOFError, OSError, UnicodeDecodeError):  # the generator's damaged files stay as they are
            continue
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                record = None
            if isinstance(record, dict) and record.get("type") == "track":
                record["type"] = "Track"
                line, changed = json.dumps(record), changed + 1
            out.append(line)
        path.write_bytes(gzip.compress(("\n".join(out) + "\n").encode(), mtime=0))
    return root, changed


def rows(df, drop=LINEAGE) -> list[tuple]:
    cols = sorted(c for c in df.columns if c not in drop)
    return sorted(tuple(str(r[c]) for c in cols) for r in df.select(*cols).collect())


def test_a_systemic_rate_fails_the_gate_and_a_fixed_replay_reconciles(spark, day, tmp_path):
    root, changed = day
    assert changed > 100
    clean = Config(lake_root=str(tmp_path / "clean-lake"), landing_root=str(root / "clean"), pii_key=PII_KEY)
    for stage in ("ingest", "refine", "curate"):
        run_stage(spark, clean, stage, Window())
    landing = tmp_path / "landing"
    shutil.copytree(root / "broken", landing)
    cfg = Config(lake_root=str(tmp_path / "lake"), landing_root=str(landing), pii_key=PII_KEY)

    run_stage(spark, cfg, "ingest", Window())
    with pytest.raises(QualityGateError) as failed:
        run_stage(spark, cfg, "refine", Window())
    message = str(failed.value)
    lake = Lake(cfg, spark)
    q = lake.read("ops.quarantine").where("reason = 'unknown_event_type'").count()
    assert changed - 5 <= q <= changed  # (a changed line can break an earlier rule too, as the generator's defects do)
    assert "quarantine_rate" in message and "quarantined as unknown_event_type" in message, message
    assert f"{q:,} of" in message and "rapport quarantine replay --source clickstream --reason " \
        "unknown_event_type" in message and "RAPPORT_QUARANTINE_MAX_SHARE" in message, message
    with pytest.raises(Exception, match="gate"):  # the window is not built on
        run_stage(spark, cfg, "curate", Window())

    # a bad replay request says why
    with pytest.raises(ReplayError, match="reference extract"):
        replay(spark, cfg, source="customers", reasons=("wrong_types",))
    with pytest.raises(ReplayError, match="JSON value"):
        replay(spark, cfg, source="clickstream", reasons=("unknown_event_type",), fixes=("type=track",))
    dry = replay(spark, cfg, source="clickstream", reasons=("unknown_event_type",), dry_run=True)
    assert dry.replayed == q and not dry.files

    r = replay(spark, cfg, source="clickstream", reasons=("unknown_event_type",), fixes=('type="track"',))
    # every copy is accounted for; the generator's own defects among them (a duplicate, a clock in the future) are
    # judged as the clean landing judges them
    assert r.replayed == q and r.silver + sum(r.quarantined.values()) + r.duplicates == q, r
    assert r.silver >= q - 5 and "unknown_event_type" not in r.quarantined, r
    assert r.balanced and not r.gates, r
    clean_lake = Lake(clean, spark)
    assert all(a.balanced for a in lake.read("ops.audit").collect())
    assert lake.read("ops.replays").count() == q
    # silver and gold hold what the clean landing gives (the copies have their own lineage)
    assert rows(lake.read("silver.clickstream_events")) == rows(clean_lake.read("silver.clickstream_events"))
    for name in ("gold.customer_timeline", "gold.customer_relationship", "silver.sessions"):
        assert rows(lake.read(name)) == rows(clean_lake.read(name)), name

    # a second replay finds nothing new to land; the CLI says what is quarantined and what was replayed
    again = replay(spark, cfg, source="clickstream", reasons=("unknown_event_type",), fixes=('type="track"',))
    assert again.replayed == 0 and again.already == q
    env = {**os.environ, "RAPPORT_LAKE_ROOT": str(cfg.lake_root), "RAPPORT_LANDING_ROOT": str(landing),
           "RAPPORT_PII_KEY": PII_KEY}
    out = subprocess.run([sys.executable, "-m", "jobs.cli", "quarantine", "list", "--source", "clickstream"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    line = next(x for x in out.stdout.splitlines() if "unknown_event_type" in x)
    assert line.split()[2:4] == [f"{q:,}", f"{q:,}"], out.stdout


@pytest.mark.unit
def test_a_few_bad_rows_never_fail_the_rate_gate():
    """The rate is mostly-style: below min_rows a reason never fails, whatever its share, and the setting raises a
    share (RAPPORT_QUARANTINE_MAX_SHARE), which a wrong value of refuses at start."""
    from jobs.config import ConfigError
    from jobs.quality.rates import Limits, Measure, judge, limits

    cfg = Config(pii_key=PII_KEY, quarantine_max_share="0.5,too_late=0.9")
    got = limits({"max_share": 0.2, "min_rows": 50}, "critical", cfg)
    assert got == Limits(0.5, 50, {"too_late": 0.9})
    assert limits({"max_share": 0.02, "min_rows": 20}, "warning", cfg) == Limits(0.02, 20, {})
    w = Window()
    assert judge(Limits(0.2, 50, {}), Measure(60, {"bad_timestamp": 50}), "clickstream", w)[0]  # 83 %, only 50
    assert not judge(Limits(0.2, 50, {}), Measure(200, {"bad_timestamp": 51}), "clickstream", w)[0]
    assert judge(Limits(0.2, 50, {"bad_timestamp": 0.3}), Measure(200, {"bad_timestamp": 51}), "clickstream", w)[0]
    for bad in ("1.5", "x", "too_late=", "=0.2"):
        with pytest.raises(ConfigError, match="RAPPORT_QUARANTINE_MAX_SHARE"):
            Config.load(env={"RAPPORT_QUARANTINE_MAX_SHARE": bad})
