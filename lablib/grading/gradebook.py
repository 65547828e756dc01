"""nbgrader's side of `lablib grade`: the autograded notebooks and their scores in the gradebook.

`lablib grade` computes the authoritative results itself (see DESIGN.md for why the tests do not run
in nbgrader's kernel). This module hands them to nbgrader in nbgrader's own terms, so that
formgrader lists every submission with its autograded parts scored and shows the TA each written
answer to grade by hand:

1. `autograded_notebook`: the notebook nbgrader's `autograde` would have written into
   `<course>/autograded/<student>/backprop-lab/`: the released notebook (cell order, metadata,
   checksums) with the student's answer cells and written answers, the source's test cells, and as
   each test cell's output the authoritative result: nothing wrong, a one-line "passed"; a failure,
   an error output carrying the diagnosis. A missing or unreadable notebook becomes the blank
   release with every test failed, so it scores 0 and its written answers count as "no response".
2. `record`: nbgrader's own `SaveAutoGrades` preprocessor reads those outputs and writes each grade
   cell's `auto_score` (a test cell with an error output scores 0, else its points; an unchanged
   written answer 0, a written one None: "needs manual grade"), exactly as after `nbgrader autograde`.
   A re-grade leaves every `manual_score` (the TA's) in place; nbgrader then marks those cells for
   review again, as its own autograde does.

The gradebook's `Grade.score` is the TA's score when there is one, else the autograder's: so
`nbgrader export`, formgrader and `lablib export` agree on every total.
"""

from __future__ import annotations

import copy
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from . import notebook, paths
from .notebook import Role
from .results import NotebookResult, Status

__all__ = ["GradebookError", "Recorded", "autograded_notebook", "autograded_path", "record", "db_url",
           "manual_scores", "CellReview", "cell_reviews"]


class GradebookError(RuntimeError):
    """The gradebook cannot take the results (no release yet, or the notebooks changed since)."""


def db_url(build: str | os.PathLike | None = None) -> str:
    """The gradebook's URL, as nbgrader_config.py sets it."""
    return "sqlite:///" + str(paths.course_root(build) / "gradebook.db")


def autograded_path(build: str | os.PathLike | None, student: str, notebook_name: str) -> Path:
    return paths.course_root(build) / "autograded" / student / paths.ASSIGNMENT_ID / notebook_name


def _error_output(name: str, text: str) -> dict:
    return {"output_type": "error", "ename": name, "evalue": text or name, "traceback": [f"{name}: {text}"]}


def _passed_output(points: float) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": f"passed ({points:g} point{'s' if points != 1 else ''})\n"}


def autograded_notebook(released: Any, source: Any, student: Any | None, result: NotebookResult) -> Any:
    """The autograded notebook (an nbformat NotebookNode) of one result; see the module docstring.

    released: nbgrader's student version (with checksums); source: the instructor's notebook;
    student: the student's notebook, or None when it is missing or unreadable.
    """
    import nbformat

    nb = nbformat.from_dict(copy.deepcopy(dict(released)))
    theirs: dict[str, Any] = {}
    if student is not None:
        for cell in student.cells:
            gid = notebook.grade_id(cell)
            if gid and gid not in theirs:
                theirs[gid] = cell
    source_text = {notebook.grade_id(c): c.source for c in source.cells if notebook.grade_id(c)}
    tests = {t.grade_id: t for t in result.tests}
    for cell in nb.cells:
        gid = notebook.grade_id(cell)
        kind = notebook.role(cell)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if kind in (Role.ANSWER, Role.WRITTEN) and gid in theirs and theirs[gid].cell_type == cell.cell_type:
            cell.source = theirs[gid].source
        if kind is Role.ANSWER and gid in result.cell_errors:
            cell.outputs = [nbformat.from_dict(_error_output("Error", result.cell_errors[gid]))]
        elif kind is Role.TEST and gid in tests:
            cell.source = source_text.get(gid, cell.source)
            test = tests[gid]
            if test.passed:
                cell.outputs = [nbformat.from_dict(_passed_output(test.points))]
            else:
                why = test.error or (result.message if result.status is not Status.GRADED else "") or str(test.status)
                cell.outputs = [nbformat.from_dict(_error_output(str(test.status).title().replace(" ", ""), why))]
    return nb


@dataclass
class Recorded:
    """What `record` did: notebooks written and scored, and why any were not."""

    notebooks: int = 0
    problem: str = ""

    def to_text(self) -> str:
        if self.problem:
            return f"Gradebook not updated: {self.problem}"
        return f"Recorded {self.notebooks} notebook(s) in nbgrader's gradebook and autograded/ (formgrader)."


def _timestamp(folder: Path) -> str | None:
    """The submission's `timestamp.txt` (written by `lablib collect`), which formgrader compares with
    the gradebook's timestamp to call a submission autograded; None when there is none."""
    try:
        return (folder / "timestamp.txt").read_text().strip() or None
    except OSError:
        return None


def record(results: Iterable[NotebookResult], build: str | os.PathLike | None = None,
           sources: Iterable[str | os.PathLike] | None = None) -> Recorded:
    """Write the autograded notebooks of `results` and their scores into nbgrader's gradebook.

    Needs a release (`lablib release` creates the assignment, its notebooks and grade cells in the
    gradebook); without one, nothing is written and `Recorded.problem` says why.
    """
    with warnings.catch_warnings():
        # nbgrader's add_submission builds its rows in a way SQLAlchemy 2 warns about ("not in
        # session, add operation ... will not proceed"); the rows are saved all the same.
        warnings.filterwarnings("ignore", message=".*not in session.*")
        return _record(list(results), build, sources)


def _record(results: list[NotebookResult], build: str | os.PathLike | None,
            sources: Iterable[str | os.PathLike] | None) -> Recorded:
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.preprocessors import SaveAutoGrades

    from lablib import cells

    released_dir = paths.course_root(build) / "release" / paths.ASSIGNMENT_ID
    sources = {Path(s).name: Path(s) for s in (sources or paths.source_notebooks())}
    url = db_url(build)
    if not results:
        return Recorded()
    if not (paths.course_root(build) / "gradebook.db").is_file() or not released_dir.is_dir():
        return Recorded(problem="no release in this build folder (run lablib release first)")
    with Gradebook(url) as gb:
        try:
            known = {nb.name for nb in gb.find_assignment(paths.ASSIGNMENT_ID).notebooks}
        except MissingEntry:
            return Recorded(problem=f"the gradebook has no assignment {paths.ASSIGNMENT_ID} (run lablib release)")
        stale = sorted({Path(r.notebook).stem for r in results} - known)
        if stale:
            return Recorded(problem=f"the gradebook does not know {', '.join(stale)} (run lablib release again)")
        for student in sorted({r.student for r in results}):
            gb.update_or_create_student(student)
            folder = paths.submitted_root(build) / student / paths.ASSIGNMENT_ID
            when = _timestamp(folder)
            gb.update_or_create_submission(paths.ASSIGNMENT_ID, student, **({"timestamp": when} if when else {}))
    done = 0
    loaded: dict[str, tuple[Any, Any]] = {}
    for result in results:
        name = result.notebook
        if name not in loaded:
            loaded[name] = (nbformat.read(str(released_dir / name), as_version=4), cells.load(sources[name]))
        released, source = loaded[name]
        mine = paths.submitted_root(build) / result.student / paths.ASSIGNMENT_ID / name
        student_nb = notebook.load(mine)[0] if mine.is_file() else None
        nb = autograded_notebook(released, source, student_nb, result)
        resources = {"nbgrader": {"notebook": Path(name).stem, "assignment": paths.ASSIGNMENT_ID,
                                  "student": result.student, "db_url": url}}
        SaveAutoGrades().preprocess(nb, resources)
        out = autograded_path(build, result.student, name)
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(out))
        done += 1
    return Recorded(done)


def manual_scores(build: str | os.PathLike | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """{student: {notebook stem: {"score", "auto", "written", "written_graded", "written_open", "comments"}}}
    from the gradebook: the notebook's score as nbgrader counts it (a TA's score where there is one),
    the autograded part of it, the written answers' part, how many written answers a TA has graded
    and how many still wait. Empty when there is no gradebook."""
    from nbgrader.api import Gradebook

    if not (paths.course_root(build) / "gradebook.db").is_file():
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    with Gradebook(db_url(build)) as gb:
        try:
            submissions = gb.assignment_submissions(paths.ASSIGNMENT_ID)
        except Exception:  # noqa: BLE001 - no assignment yet: nothing graded by hand
            return {}
        for sub in submissions:
            for snb in sub.notebooks:
                written = [g for g in snb.grades if g.cell.cell_type == "markdown"]  # written answers, tasks
                comments = [c.manual_comment for c in snb.comments if c.manual_comment]
                out.setdefault(sub.student.id, {})[snb.name] = {
                    "score": float(snb.score),
                    "written": float(sum(g.score for g in written)),
                    "auto": float(snb.score) - float(sum(g.score for g in written)),
                    "written_graded": sum(g.manual_score is not None for g in written),
                    "written_open": sum(g.manual_score is None and g.auto_score is None for g in written),
                    "comments": comments,
                }
    return out



@dataclass(frozen=True)
class CellReview:
    """What the gradebook holds for one cell of one submitted notebook, as nbgrader's feedback shows it.

    points: the cell's maximum score (0 for an ungraded answer cell, which can still get a comment);
    auto_score / manual_score: the autograder's and the TA's (None: not given); score: what counts
    (nbgrader's `Grade.score`: the TA's when given, else the autograder's, extra credit included);
    comment: nbgrader's `Comment.comment`, the TA's comment, else the automatic one ("No response.").
    """

    grade_id: str
    points: float = 0.0
    auto_score: float | None = None
    manual_score: float | None = None
    score: float = 0.0
    extra_credit: float = 0.0
    comment: str = ""

    @property
    def graded(self) -> bool:
        """A score exists: given by the TA, or by the autograder (0 for an untouched written answer)."""
        return self.manual_score is not None or self.auto_score is not None


def cell_reviews(build: str | os.PathLike | None = None) -> dict[str, dict[str, dict[str, CellReview]]]:
    """{student: {notebook stem: {grade_id: CellReview}}}: every grade and comment formgrader holds
    (the grade cells, and the answer cells that have a comment). Empty when there is no gradebook."""
    from nbgrader.api import Gradebook

    if not (paths.course_root(build) / "gradebook.db").is_file():
        return {}
    out: dict[str, dict[str, dict[str, CellReview]]] = {}
    with Gradebook(db_url(build)) as gb:
        for sub in gb.assignment_submissions(paths.ASSIGNMENT_ID):  # none: no assignment yet
            for snb in sub.notebooks:
                cells_: dict[str, dict[str, Any]] = {}
                for g in snb.grades:
                    cells_[g.name] = {
                        "points": float(g.max_score), "auto_score": g.auto_score, "manual_score": g.manual_score,
                        "score": float(g.score), "extra_credit": float(g.extra_credit or 0.0)}
                for c in snb.comments:
                    if c.comment:
                        cells_.setdefault(c.name, {})["comment"] = c.comment
                out.setdefault(sub.student.id, {})[snb.name] = {
                    gid: CellReview(gid, **fields) for gid, fields in cells_.items()}
    return out
