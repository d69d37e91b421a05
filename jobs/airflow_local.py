"""Run Rapport's DAGs in-process with ``dag.test()``, against a throwaway Airflow metadata DB.

``python -m jobs.airflow_local --home DIR --date 2026-11-15`` migrates a SQLite metadata
DB under DIR (if new), then runs rapport_ingest → rapport_refine → rapport_curate as
Airflow would, each DAG run recorded in that DB, and prints a JSON summary. With
``--window-start/--window-end`` every DAG processes exactly that landing window
(as a scheduled or backfill run would); without, a manual run takes everything up to
``--date``. It is what ``make demo`` and the end-to-end tests use; it always exits by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHAIN = ("rapport_ingest", "rapport_refine", "rapport_curate")


def airflow_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }


def run_chain(home: Path, date: datetime, window: tuple[str | None, str | None] = (None, None),
              dags: tuple[str, ...] = CHAIN, timeout: int = 1800, strict: bool = True) -> dict:
    """Run the chain in a child process (Airflow's settings are process-global); return its summary, DAG id ->
    state. A DAG that fails stops the chain: with ``strict`` that raises, else the summary says which failed and
    ``summary["log"]`` names the full output."""
    home.mkdir(parents=True, exist_ok=True)
    env = airflow_env(home)
    if not (home / "airflow.db").exists():
        airflow = Path(sys.executable).parent / "airflow"
        done = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed in {home}:\n{done.stderr[-3000:]}")
    args = [sys.executable, "-m", "jobs.airflow_local", "--child", "--date", date.isoformat(), "--dags", ",".join(dags)]
    if window[0] or window[1]:
        args += ["--window-start", window[0] or "", "--window-end", window[1] or ""]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    log_file = home / f"chain-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}.log"
    log_file.write_text(f"$ {' '.join(args)}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    summary = next((json.loads(line[len("RAPPORT_SUMMARY "):]) for line in done.stdout.splitlines()
                    if line.startswith("RAPPORT_SUMMARY ")), None)
    if not strict and summary is not None:
        return {**summary, "log": str(log_file)}
    if done.returncode != 0 or summary is None:
        errors = [line for line in (done.stdout + done.stderr).splitlines()
                  if "Error" in line and "File " not in line][-5:]
        raise RuntimeError(f"the DAG chain failed (exit {done.returncode}), runs: {summary}. Last errors:\n"
                           + "\n".join(errors) + f"\nFull output: {log_file}")
    return summary


def _child(date: datetime, dags: list[str], window_start: str | None, window_end: str | None) -> int:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(str(REPO / "dags"))
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1
    conf = {"window_start": window_start, "window_end": window_end} if window_start or window_end else None
    summary = {}
    for dag_id in dags:
        run = bag.get_dag(dag_id).test(logical_date=date, run_conf=conf)
        summary[dag_id] = str(run.state)
        if str(run.state) != "success":
            print(f"RAPPORT_SUMMARY {json.dumps(summary)}")
            return 1
    print(f"RAPPORT_SUMMARY {json.dumps(summary)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jobs.airflow_local", description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, help="AIRFLOW_HOME for the throwaway metadata DB")
    p.add_argument("--date", required=True, help="logical date of the runs (ISO)")
    p.add_argument("--dags", default=",".join(CHAIN), help="comma-separated DAG ids, run in order")
    p.add_argument("--window-start", help="landing window start for every DAG (ISO)")
    p.add_argument("--window-end", help="landing window end (ISO, exclusive)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    date = datetime.fromisoformat(a.date)
    date = date if date.tzinfo else date.replace(tzinfo=timezone.utc)
    if a.child:
        return _child(date, a.dags.split(","), a.window_start or None, a.window_end or None)
    if a.home is None:
        p.error("--home is required")
    print(json.dumps(run_chain(a.home, date, (a.window_start, a.window_end), tuple(a.dags.split(",")))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
