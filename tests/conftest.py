"""Shared fixtures: the source notebooks, and the solution code defined in them."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from lablib import cells
from lablib.data import DatasetNotFoundError, locate
from lablib.training import budget

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


#: A line shorter than this (`self.x = x`, `return out`) may legitimately occur anywhere.
MIN_LINE = 16
_SOLUTION_REGION = re.compile(r"### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", re.S | re.M)


def long_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if len(line.strip()) >= MIN_LINE}


def solution_lines() -> set[str]:
    """Every non-trivial line of every solution (code between the markers, whole written answers)
    that does not also occur in what students may see (`optimizer.step()` in a visible test, say).
    The release and lablib must contain none of them."""
    secret, public = set(), []
    for path in SOURCE_NOTEBOOKS:
        for cell in cells.load(path).cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.cell_type == "code":
                for region in _SOLUTION_REGION.findall(cell.source):
                    secret |= long_lines(region)
                public.append(cells.strip_hidden_tests(cells.blank_solutions(cell.source)))
            elif meta.get("solution"):
                secret |= long_lines(cell.source)
            else:
                public.append(cell.source)
    seen = "\n".join(public)
    return {line for line in secret if line not in seen}


def runnable_here(notebooks: list[Path]) -> list[Path]:
    """The notebooks whose data is available: all of them under the ci and grade profiles (which
    read the sample committed in data/); under `full`, a notebook that loads Fashion-MNIST is left
    out when the data set is nowhere (it would try to download it)."""
    if budget().sample:
        return list(notebooks)
    try:
        locate("fashion-mnist")
        return list(notebooks)
    except DatasetNotFoundError:
        return [p for p in notebooks if "load_dataset(" not in p.read_text()]


@pytest.fixture(scope="session")
def student_release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The student release folder (`lablib release` into a temporary build folder), built once per
    session for the tests that only read or copy it (the browser, release-environment and notebook-03
    release tests)."""
    from lablib.grading.release import release

    return release(tmp_path_factory.mktemp("release-build")).folder
