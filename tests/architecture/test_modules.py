"""Modules stay small enough to hold one job: none in ``jobs/`` passes about 400 lines unless its top says why."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

JOBS = Path(__file__).resolve().parents[2] / "jobs"
LIMIT = 420


@pytest.mark.unit
def test_no_module_is_long_without_saying_why():
    long = []
    for path in sorted(JOBS.rglob("*.py")):
        lines = path.read_text().count("\n")
        if lines > LIMIT:
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            if "Why it is one module" not in doc:
                long.append(f"{path.relative_to(JOBS.parent)}: {lines} lines")
    assert not long, "split these, or say at their top why they are one module: " + "; ".join(long)
    assert sum(1 for _ in JOBS.rglob("*.py")) > 80  # the walk saw the code
