"""`lablib export`: `<build>/grades.csv`, one row per student.

Columns: `student`; per notebook `<stem>` (automatic points earned) and `<stem> status` (graded,
timed out, killed for memory, kernel died, malformed notebook, missing, or "not graded" when the
student was collected but `lablib grade` has not produced a result); `total`, `possible` (automatic
points of the whole lab); `review`: empty, or why a person should look at this submission (any
notebook not cleanly graded, or a worker that ran without isolation). A score is never a silent 0:
its status column says why. Written answers (graded by hand) are not included.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from . import paths
from .autograde import GRADED, MISSING, _write_atomic, load_results, plan_notebook
from lablib import cells

__all__ = ["export", "NOT_GRADED"]

NOT_GRADED = "not graded"


def export(build: str | os.PathLike | None = None) -> Path:
    """Write the grades CSV; returns its path."""
    sources = paths.source_notebooks()
    possible = {s.name: sum(t.points for t in plan_notebook(cells.load(s)).tests) for s in sources}
    results = load_results(build)
    submitted = paths.submitted_root(build)
    students = set(results)
    if submitted.is_dir():
        students |= {p.name for p in submitted.iterdir() if p.is_dir()}
    header = ["student"]
    for s in sources:
        header += [Path(s.name).stem, f"{Path(s.name).stem} status"]
    header += ["total", "possible", "review"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for student in sorted(students):
        row, total, review = [student], 0.0, []
        for s in sources:
            grade = results.get(student, {}).get(s.name)
            if grade is None:
                row += ["", NOT_GRADED]
                review.append(f"{s.name} not graded")
                continue
            row += [f"{grade.earned:g}", grade.status]
            total += grade.earned
            if grade.status not in (GRADED, MISSING):
                review.append(f"{s.name} {grade.status}")
            if grade.isolation and ("NOT ISOLATED" in grade.isolation or "no privilege drop" in grade.isolation):
                review.append(f"{s.name} graded without isolation")
        row += [f"{total:g}", f"{sum(possible.values()):g}", "; ".join(review)]
        writer.writerow(row)
    path = paths.grades_csv(build)
    _write_atomic(path, buf.getvalue())
    return path
