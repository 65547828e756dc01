"""Notebook 03's marking schemes stay with the instructor: nbgrader's release drops them.

The marking scheme of each written question sits in the question's manually graded answer cell,
after the model answer. nbgrader's `ClearSolutions` replaces such a cell (a markdown solution cell
without a `### BEGIN SOLUTION` region) wholesale with "YOUR ANSWER HERE", model answer and scheme
alike. nbgrader's own mark-scheme regions (`ClearMarkScheme`, "BEGIN MARK SCHEME") are not used:
nbgrader 0.9.6 accepts them only in "manually graded task" cells, which carry no student answer,
and refuses to release a notebook with one in an answer cell (the last test shows it).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from conftest import load_notebook
from lablib import cells

STEM = "03_backprop"
SCHEME = "**Marking scheme**"
#: Cells of notebook 03 that draw a figure (shown inline by the kernel).
FIGURES = {"worked_graph", "step_plot"}


def written_answers(nb):
    return [c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("solution")]


def test_every_written_question_has_a_marking_scheme_in_the_source():
    answers = written_answers(load_notebook(STEM))
    assert len(answers) == 7
    for cell in answers:
        assert SCHEME in cell.source and "point" in cell.source.split(SCHEME, 1)[1], cell.id


def test_the_release_has_no_marking_scheme_and_no_model_answer(student_release: Path):
    folder = student_release  # the session's release (conftest), built once for every test that reads it
    released = cells.load(folder / f"{STEM}.ipynb")
    text = "\n".join(c.source for c in released.cells)
    for needle in ("Marking scheme", "marking scheme", "MARK SCHEME", "Model answer"):
        assert needle not in text and needle not in (folder / f"{STEM}.ipynb").read_text()
    answers = written_answers(released)
    assert [c.id for c in answers] == [c.id for c in written_answers(load_notebook(STEM))]
    assert all(c.source == "YOUR ANSWER HERE" for c in answers)


def test_nbgrader_refuses_a_mark_scheme_region_in_an_answer_cell():
    from nbgrader.preprocessors import ClearMarkScheme

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_markdown_cell("answer\n=== BEGIN MARK SCHEME ===\nscheme\n=== END MARK SCHEME ===")
    cell.metadata["nbgrader"] = {"grade": True, "solution": True, "task": False, "locked": False, "points": 1,
                                 "grade_id": "q", "schema_version": 3}
    nb.cells.append(cell)
    with pytest.raises(RuntimeError, match="Mark scheme region detected in a non-grade cell"):
        ClearMarkScheme().preprocess(nb, {})


def fill_with_solutions(path: Path) -> None:
    """Write the source's answers into a released notebook, as a student who solved everything would."""
    source = {c.id: c.source for c in load_notebook(STEM).cells if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.id in source:
            text = source[cell.id]
            if cell.cell_type == "code":
                text = "\n".join(line for line in text.splitlines() if not line.strip().startswith(("### BEGIN", "### END")))
            else:
                text = text.split(SCHEME)[0].strip()
            cell.source = text
    nbformat.write(nb, path)


@pytest.mark.slow
def test_the_release_filled_with_the_solutions_runs_in_a_kernel_and_scores_full_marks(
        student_release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Jupyter kernel in the student folder (its own lablib), plots inline; then the self-check: 9/9."""
    from nbclient import NotebookClient

    from lablib.grading.check import check, notebook_text
    from lablib.grading.results import Status

    student = shutil.copytree(student_release, tmp_path / "student")  # a copy: the release is shared
    path = student / f"{STEM}.ipynb"
    fill_with_solutions(path)
    nb = nbformat.read(path, as_version=4)
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's own inline backend, as in JupyterLab
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(student)}}).execute()
    errors = {c.id: o.get("ename") for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.output_type == "error"}
    assert errors == {}
    drawn = {c.id for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})}
    assert drawn == FIGURES
    (result,) = check([path], timeout=120).notebooks
    assert result.status is Status.GRADED and result.earned == result.possible == 9, notebook_text(result)
