"""Shared fixtures: the source notebooks, and the solution code defined in them."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from lablib import cells

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCE_NOTEBOOKS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def notebook_path(stem: str) -> Path:
    return NOTEBOOKS / f"{stem}.ipynb"


@lru_cache(maxsize=None)
def load_notebook(stem: str) -> Any:
    return cells.load(notebook_path(stem))


def graded_cell_ids(stem: str) -> list[str]:
    """grade_ids of the autograded test cells, in order."""
    nb = load_notebook(stem)
    return [cells.grade_id(c) for c in nb.cells if c.cell_type == "code" and cells.points(c) > 0]


def solution_namespace(stem: str) -> dict[str, Any]:
    """Globals after running a notebook's setup and answer cells (its test cells are skipped)."""
    scope: dict[str, Any] = {}
    skip = {gid: "" for gid in graded_cell_ids(stem)}
    results = cells.run_cells(load_notebook(stem), replace=skip, namespace=scope)
    failed = {gid: r.error for gid, r in results.items() if not r.passed}
    assert not failed, f"{stem}: cells failed while loading the solutions: {failed}"
    return scope


@pytest.fixture(scope="session")
def layers() -> dict[str, Any]:
    return solution_namespace("01_layers")


@pytest.fixture(scope="session")
def losses() -> dict[str, Any]:
    return solution_namespace("02_losses")
