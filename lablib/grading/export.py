"""`lablib export`: `<build>/grades.csv`, one row per student, through nbgrader's exporter plug-in point.

`GradesCsv` is an nbgrader `ExportPlugin`, so the same file comes out of either command:

    lablib export
    nbgrader export --exporter=lablib.grading.export.GradesCsv     (from the repository root)

Columns: `student`; per notebook `<stem>` (its score as the gradebook counts it: autograded points,
or a TA's score where one was given, plus the written answers' points), `<stem> auto` (the
authoritative autograded points), `<stem> written` (points the TA gave the written answers; empty
while none is graded), `<stem> status` (graded, timed out, killed for memory, kernel died,
malformed notebook, missing, or "not graded" when the student was collected but `lablib grade`
has not produced a result); `total` (equal to `nbgrader export`'s score), `auto`, `written`,
`in_kernel` (the autograded total a plain in-kernel run scored; empty when none ran), `possible`
(every point of the lab, written answers included), `written_open` (written answers no TA has
graded yet); `review`: empty, or why a person should look at this submission (any notebook not
cleanly graded, a worker without isolation, an in-kernel result that disagrees with the
authoritative one); `isolation`: how the student's code was isolated (`bwrap`, or `limits, own uid` /
`limits only`, which are flagged for review); `comments`: the TA's comments on the written answers,
each prefixed by its notebook. A score is never a silent 0: its status column says why.

Without a gradebook (no release), `total` counts the autograded points and the written columns
stay empty.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from lablib import cells

from . import notebook, paths
from .in_kernel import in_kernel_review
from .results import load_results, weak_isolation, write_atomic

__all__ = ["export", "table", "NOT_GRADED", "GradesCsv"]

NOT_GRADED = "not graded"


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def table(build: str | os.PathLike | None = None, manual: dict[str, Any] | None = None) -> list[list[str]]:
    """The rows of grades.csv (header first). manual: `gradebook.manual_scores()` (read when None)."""
    if manual is None:
        try:
            from .gradebook import manual_scores
        except ImportError:  # no nbgrader: autograded points only
            manual = {}
        else:
            manual = manual_scores(build)
    sources = paths.source_notebooks()
    outlines = {s.name: notebook.outline(cells.load(s)) for s in sources}
    possible = sum(sum(t.points for t in o.tests) + o.manual_points for o in outlines.values())
    results = load_results(paths.results_root(build))
    submitted = paths.submitted_root(build)
    students = set(results)
    if submitted.is_dir():
        students |= {p.name for p in submitted.iterdir() if p.is_dir()}
    header = ["student"]
    for s in sources:
        stem = Path(s.name).stem
        header += [stem, f"{stem} auto", f"{stem} written", f"{stem} status"]
    header += ["total", "auto", "written", "in_kernel", "possible", "written_open", "review", "isolation", "comments"]
    rows = [header]
    for student in sorted(students):
        row, review = [student], []
        total = auto = 0.0
        written: float | None = None
        in_kernel: float | None = None
        open_answers = 0
        isolation: set[str] = set()
        comments: list[str] = []
        for s in sources:
            stem = Path(s.name).stem
            grade = results.get(student, {}).get(s.name)
            book = manual.get(student, {}).get(stem)
            if grade is None:
                row += ["", "", "", NOT_GRADED]
                review.append(f"{s.name} not graded")
                continue
            mine_written = None
            if book is not None:
                comments += [f"{stem}: {text}" for text in book.get("comments", [])]
            if book is not None and book["written_graded"]:
                mine_written = book["written"]
                written = (written or 0.0) + mine_written
            score = book["score"] if book is not None else grade.earned
            open_answers += book["written_open"] if book is not None else 0
            row += [_num(score), _num(grade.earned), _num(mine_written), str(grade.status)]
            total, auto = total + score, auto + grade.earned
            if grade.status.is_fault:
                review.append(f"{s.name} {grade.status}")
            elif grade.message:  # graded, with something a person should know (answer cells recovered)
                review.append(f"{s.name}: {grade.message}")
            if grade.isolation and weak_isolation(grade.isolation):
                review.append(f"{s.name} graded without isolation")
            if grade.isolation:  # "<level>: details" (sandbox.Isolation.describe)
                isolation.add(grade.isolation.split(":", 1)[0])
            if grade.in_kernel_score is not None:
                in_kernel = (in_kernel or 0.0) + grade.in_kernel_score
            note = in_kernel_review(grade)
            if note:
                review.append(note)
        row += [_num(total), _num(auto), _num(written), _num(in_kernel), _num(possible), str(open_answers),
                "; ".join(review), ", ".join(sorted(isolation)), " | ".join(comments)]
        rows.append(row)
    return rows


def _write(rows: list[list[str]], path: Path) -> Path:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    write_atomic(path, buf.getvalue())
    return path


def export(build: str | os.PathLike | None = None) -> Path:
    """Write the grades CSV (`<build>/grades.csv`); returns its path."""
    return _write(table(build), paths.grades_csv(build))


try:
    from nbgrader.plugins import ExportPlugin
except ImportError:  # the student's release: no nbgrader, no exporter
    ExportPlugin = None  # type: ignore[assignment,misc]
else:
    class GradesCsv(ExportPlugin):
        """nbgrader's exporter plug-in: `nbgrader export --exporter=lablib.grading.export.GradesCsv`
        writes lablib's grades.csv (`--to FILE` moves it). It reads the gradebook nbgrader hands it
        and the authoritative results beside it (statuses and review notes live only there)."""

        def export(self, gradebook: Any) -> None:  # noqa: D102 - see the class
            from .gradebook import manual_scores

            build = paths.build_root()
            path = Path(self.to) if self.to else paths.grades_csv(build)
            self.log.info("Writing %s", path)
            _write(table(build, manual_scores(build)), path)
