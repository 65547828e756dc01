"""What the grading tests share: run a notebook's graded cells in-process on variants of its answers
(`failing_cells`, `mutate`), and write the notebook a student would submit (`answers`,
`with_prefix`, `write_notebook`). The variants themselves (known mistakes, correct answers in other
styles) are in answer_variants.py.

A helper module, not a test module (pytest collects only test_*.py): tests import it by name, as
they import conftest.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable

import nbformat

from conftest import NOTEBOOKS, SOURCE_NOTEBOOKS, graded_cell_ids, load_notebook
from lablib import cells
from lablib.grading.notebook import outline

#: A known mistake: (answer cell, text in the solution, wrong replacement, graded cells that must fail).
Mistake = tuple[str, str, str, set[str]]

#: stem -> grade_ids of the code answer cells of every source notebook.
ANSWERS = {path.stem: {cells.grade_id(c) for c in load_notebook(path.stem).cells
                       if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
           for path in SOURCE_NOTEBOOKS}

#: Ungraded cells that the graded ones need; other ungraded cells (demos, training runs) are skipped.
NEEDED = {"setup", "reuse", "doubles"}


def answer_source(stem: str, gid: str) -> str:
    """The source (solution) text of cell `gid` of notebook `stem`."""
    return next(c.source for c in load_notebook(stem).cells if cells.grade_id(c) == gid)


def failing_cells(stem: str, replace: dict[str, str] | None = None, hidden: bool = True) -> set[str]:
    """grade_ids of the graded cells of notebook `stem` that fail, run in-process with the cells in
    `replace` (grade_id -> source) replaced; hidden tests run unless `hidden` is False. Ungraded
    cells other than the answers and NEEDED are skipped."""
    nb = load_notebook(stem)
    graded = set(graded_cell_ids(stem))
    run = {gid: "" for gid in (cells.grade_id(c) for c in nb.cells if c.cell_type == "code")
           if gid and gid not in graded and gid not in NEEDED and gid not in ANSWERS[stem]}
    run.update(replace or {})
    with contextlib.chdir(NOTEBOOKS):  # where use_notebook finds the earlier notebooks
        results = cells.run_cells(nb, replace=run, hidden=hidden)
    return {gid for gid, r in results.items() if gid in graded and not r.passed}


def mutate(stem: str, gid: str, old: str, new: str) -> dict[str, str]:
    """{gid: the solution of answer cell `gid` with `old` (which must occur once) replaced by `new`}."""
    source = answer_source(stem, gid)
    assert source.count(old) == 1, f"{old!r} must occur once in answer cell {gid}"
    return {gid: source.replace(old, new)}


def answers(stem: str, kind: str = "solution", mistakes: Iterable[Mistake] = ()) -> dict[str, str]:
    """grade_id -> answer text of every answer cell: the solution's, or the blank release's (kind
    "blank"); then each of `mistakes` made (its text must occur once in its cell)."""
    nb = load_notebook(stem)
    out = {cells.grade_id(c): c.source for c in nb.cells
           if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
    if kind == "blank":
        out = {gid: cells.blank_solutions(src) for gid, src in out.items()}
    elif kind != "solution":
        raise ValueError(f"kind must be 'solution' or 'blank', not {kind!r}")
    for gid, old, new, _ in mistakes:
        assert out[gid].count(old) == 1, f"{old!r} must occur once in answer cell {gid}"
        out[gid] = out[gid].replace(old, new)
    return out


def with_prefix(replace: dict[str, str], gid: str, code: str) -> dict[str, str]:
    """A copy of the answers `replace` with `code` run at the top of answer cell `gid`."""
    return {**replace, gid: code + "\n" + replace[gid]}


def written_ids(stem: str) -> list[str]:
    """grade_ids of the notebook's written answers (graded by hand)."""
    return list(outline(load_notebook(stem)).written)


def possible_points(stem: str) -> float:
    """The autograded points of notebook `stem`: every test cell is 1 point."""
    return float(len(graded_cell_ids(stem)))


def write_notebook(folder: Path, stem: str, replace: dict[str, str], released: Path | None = None) -> None:
    """The student's file: the source with these answers and the visible tests only (as released);
    with `released` (nbgrader's release folder), its notebook with these answers, checksums kept."""
    base = released / f"{stem}.ipynb" if released else NOTEBOOKS / f"{stem}.ipynb"
    nb = nbformat.read(str(base), as_version=4)
    for cell in nb.cells:
        gid = cells.grade_id(cell)
        if gid in replace:
            cell.source = replace[gid]
        elif cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = cells.strip_hidden_tests(cell.source)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / f"{stem}.ipynb"))
