"""Reuse the code a student wrote in an earlier notebook — by running it, never by copying it.

    layers = use_notebook("01_layers.ipynb")   # your Linear, ReLU, ... as written in notebook 01
    model = Sequential(layers.Linear(784, 256), layers.ReLU(), ...)

`use_notebook` runs the notebook's `setup` and `reuse` cells and its answer cells (the nbgrader cells marked as
solutions: the ones with YOUR CODE HERE) in a fresh module, and returns that module. Demos and test
cells are not run. So a later notebook always uses the student's current answers: fix a layer in
notebook 01, save, and re-run the `use_notebook` cell.
"""

from __future__ import annotations

import contextlib
import os
import types
import warnings
from pathlib import Path

from . import cells

__all__ = ["use_notebook", "NotebookReuseError", "NotebookReuseWarning"]

#: Code cells with these grade_ids are run too: the imports, and the earlier notebooks that the
#: answer cells build on (a notebook's own `use_notebook` calls).
SETUP_CELLS = ("setup", "reuse")


class NotebookReuseError(RuntimeError):
    """An earlier notebook could not be found or read."""


class NotebookReuseWarning(UserWarning):
    """One of the earlier notebook's cells raised; the others were still run."""


def _find(name: str | os.PathLike, folder: str | os.PathLike | None) -> Path:
    path = Path(name)
    tried = [path] if path.is_absolute() else [Path(folder or Path.cwd()) / path]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise NotebookReuseError(
        f"cannot find {name}: looked at {', '.join(str(p) for p in tried)}. Keep your notebooks together in "
        "one folder and open this one from there."
    )


def use_notebook(name: str | os.PathLike, folder: str | os.PathLike | None = None) -> types.ModuleType:
    """Run the setup and answer cells of an earlier notebook; return what they define as a module.

    Inputs:
        name: the notebook's file name ("01_layers.ipynb"), looked up in `folder`.
        folder: where to look; default the current directory (the notebook's own folder in Jupyter).
    Returns:
        a module whose attributes are the names the cells define (`module.Linear`, ...).
        A cell that raises is reported with a NotebookReuseWarning naming it (its errors are in
        `module.__errors__`); the other cells still run.
    Raises:
        NotebookReuseError when the notebook cannot be found or read.
    """
    path = _find(name, folder)
    try:
        nb = cells.load(path)
    except Exception as exc:  # noqa: BLE001 - any unreadable notebook gets the same clear error
        raise NotebookReuseError(f"{path.name} could not be read ({exc}); is it a valid notebook?") from None
    module = types.ModuleType(f"notebook_{path.stem}", f"Code reused from {path.name}")
    module.__file__ = str(path)
    keep = {cells.grade_id(c) for c in nb.cells if c.cell_type == "code" and
            (cells.grade_id(c) in SETUP_CELLS or c.metadata.get("nbgrader", {}).get("solution"))}
    skip = {cells.grade_id(c): "" for c in nb.cells
            if c.cell_type == "code" and cells.grade_id(c) and cells.grade_id(c) not in keep}
    unnamed = [c for c in nb.cells if c.cell_type == "code" and not cells.grade_id(c)]
    for cell in unnamed:  # cells without nbgrader metadata are the student's own scratch work
        cell.source = ""
    with contextlib.chdir(path.parent):  # as in Jupyter: a notebook runs in its own folder
        results = cells.run_cells(nb, replace=skip, namespace=vars(module))
    module.__errors__ = {gid: r.error for gid, r in results.items() if gid in keep and not r.passed}
    for gid, error in module.__errors__.items():
        # A warning, not an error: what the other cells define stays usable, and a mistake graded
        # in the earlier notebook does not stop this one.
        warnings.warn(NotebookReuseWarning(f"{path.name}, cell '{gid}' raised {error}. Fix that cell in "
                                           f"{path.name}, save it, and run this cell again."), stacklevel=2)
    return module
