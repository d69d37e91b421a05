"""The layer contracts (``setup.cfg``, checked by ``lint-imports`` in ``make test``) hold, and can fail.

``make test`` runs ``lint-imports`` on the checkout; this test runs it too, then on copies of the code with one
import added that breaks a contract: a lazy upward import (a foundation reaching for a job), and a cycle between
two jobs of one layer. Both must be refused, so a contract that silently checks nothing fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache", "--config", str(root / "setup.cfg")], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def copy(tmp_path: Path) -> Path:
    out = tmp_path / "code"
    for name in ("jobs", "schemas"):
        shutil.copytree(ROOT / name, out / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", out / "setup.cfg")
    return out


@pytest.mark.unit
def test_the_layer_contracts_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.unit
@pytest.mark.parametrize("module, line, broken", [
    ("jobs/lake.py", "\n\ndef _probe():\n    from jobs.silver import refine  # a foundation reaching up, lazily\n",
     "jobs.lake is not allowed to import jobs.silver"),
    ("jobs/silver/sessions.py", "\n\ndef _probe():\n    from jobs.bronze import check  # silver -> bronze, while bronze -> silver\n",
     "No cycles are allowed in jobs"),
])
def test_an_import_that_breaks_a_layer_is_refused(tmp_path, module, line, broken):
    code = copy(tmp_path)
    (code / module).write_text((code / module).read_text() + line)
    result = lint(code)
    assert result.returncode != 0 and broken in result.stdout, result.stdout
