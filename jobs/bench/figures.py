"""What a pipeline run produced, as figures two runs can be compared by: every stored table's row count, the
quarantine by source, layer and reason, the audit of every source, and identity against the generator's truth.

A speed-up must not change what the pipeline produces. ``rapport bench --compare-with REV`` builds a second lake
from the same landing with the code of git revision ``REV`` (a worktree, its own CLI, in its own processes) and
prints these figures side by side; ``results.json`` keeps them (``comparison``) and ``results.md`` shows every one
that differs. Counting reads the Delta logs and the small ``ops`` tables with delta-rs (no engine): the bench
measures, it is not a pipeline step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jobs.bench.pipeline import BENCH_KEY


def figures(lake: Path) -> dict[str, int]:
    """Flat ``name -> count`` figures of a lake built by any revision (read from its files, not its code)."""
    from deltalake import DeltaTable

    out: dict[str, int] = {}
    for layer in ("bronze", "silver", "gold"):
        for folder in sorted((lake / layer).glob("*/_delta_log")):
            table = DeltaTable(str(folder.parent))
            out[f"rows {layer}.{folder.parent.name}"] = table.to_pyarrow_dataset().count_rows()
    ops = lake / "ops"
    if (ops / "quarantine" / "_delta_log").exists():
        q = DeltaTable(str(ops / "quarantine")).to_pyarrow_table(columns=["source", "layer", "reason"])
        for (source, layer, reason), n in q.group_by(["source", "layer", "reason"]).aggregate(
                [("reason", "count")]).to_pandas().set_index(["source", "layer", "reason"])["reason_count"].items():
            out[f"quarantine {source}/{layer}/{reason}"] = int(n)
    if (ops / "audit" / "_delta_log").exists():
        audit = DeltaTable(str(ops / "audit")).to_pandas()  # one row per source and window
        columns = [c for c in ("landed", "bronze_rows", "silver_rows", "quarantined", "duplicates", "suppressed")
                   if c in audit]
        for source, sums in audit.groupby("source")[columns].sum().iterrows():
            out.update({f"audit {source} {c}": int(sums[c]) for c in columns})
    if (ops / "duplicates" / "_delta_log").exists():
        out["rows ops.duplicates"] = DeltaTable(str(ops / "duplicates")).to_pyarrow_dataset().count_rows()
    return out


def build_with(revision: str, landing: Path, lake: Path, workdir: Path, progress) -> Path:
    """A lake built from ``landing`` by the code of git ``revision``: its own worktree and CLI, one process per
    stage, gates on, the bench's key. Returns the lake."""
    repo = Path(__file__).resolve().parents[2]
    # the old code runs in its own worktree: a relative path (the default ./.bench) would name another folder there
    landing, lake, workdir = landing.resolve(), lake.resolve(), workdir.resolve()
    tree = workdir / f"code-{revision.replace('/', '_')}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "--force", str(tree), revision],
                       check=True, capture_output=True, text=True)
    env = {**os.environ, "PYTHONPATH": str(tree), "RAPPORT_LAKE_ROOT": str(lake), "RAPPORT_LANDING_ROOT": str(landing),
           "RAPPORT_PII_KEY": BENCH_KEY}
    env.pop("RAPPORT_CONFIG", None)
    for stage in ("ingest", "refine", "curate"):
        proc = subprocess.run([sys.executable, "-m", "jobs.cli", stage], cwd=tree, env=env, capture_output=True,
                              text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{stage} with the code of {revision} failed (exit {proc.returncode}):\n"
                               f"{proc.stderr[-3000:]}")
    progress(f"  built a lake from the same landing with the code of {revision}")
    return lake


def remove_worktrees(workdir: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    for tree in workdir.glob("code-*"):
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], capture_output=True)


def compare(now: dict[str, int], before: dict[str, int]) -> dict:
    """Every figure on either side: equal, or both values."""
    names = sorted(set(now) | set(before))
    differ = {n: {"now": now.get(n), "before": before.get(n)} for n in names if now.get(n) != before.get(n)}
    return {"figures": len(names), "equal": len(names) - len(differ), "differ": differ}
