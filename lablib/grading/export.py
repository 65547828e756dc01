"""`lablib export`: `<build>/grades.csv`, one row per student.

Columns: `student`; per notebook `<stem>` (automatic points earned) and `<stem> status` (graded,
timed out, killed for memory, kernel died, malformed notebook, missing, or "not graded" when the
student was collected but `lablib grade` has not produced a result); `total`, `in_kernel` (the total
a plain in-kernel run of the same notebooks scored: see `autograde`'s in-kernel comparison; empty
when none ran), `possible` (automatic points of the whole lab); `review`: empty, or why a person
should look at this submission (any notebook not cleanly graded, a worker that ran without
isolation, or an in-kernel result that disagrees with the authoritative one, e.g. "in-kernel 12/12
vs authoritative 8/12 in 01_layers: tampering suspected, cells test_linear_dW, ..."). A score is
never a silent 0: its status column says why. Written answers (graded by hand) are not included.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from lablib import cells

from . import notebook, paths
from .in_kernel import in_kernel_review
from .results import Status, load_results, weak_isolation, write_atomic

__all__ = ["export", "NOT_GRADED"]

NOT_GRADED = "not graded"


def export(build: str | os.PathLike | None = None) -> Path:
    """Write the grades CSV; returns its path."""
    sources = paths.source_notebooks()
    possible = {s.name: sum(t.points for t in notebook.outline(cells.load(s)).tests) for s in sources}
    results = load_results(paths.results_root(build))
    submitted = paths.submitted_root(build)
    students = set(results)
    if submitted.is_dir():
        students |= {p.name for p in submitted.iterdir() if p.is_dir()}
    header = ["student"]
    for s in sources:
        header += [Path(s.name).stem, f"{Path(s.name).stem} status"]
    header += ["total", "in_kernel", "possible", "review"]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for student in sorted(students):
        row, total, review = [student], 0.0, []
        in_kernel: float | None = None
        for s in sources:
            grade = results.get(student, {}).get(s.name)
            if grade is None:
                row += ["", NOT_GRADED]
                review.append(f"{s.name} not graded")
                continue
            row += [f"{grade.earned:g}", grade.status]
            total += grade.earned
            if grade.status.is_fault:
                review.append(f"{s.name} {grade.status}")
            if grade.isolation and weak_isolation(grade.isolation):
                review.append(f"{s.name} graded without isolation")
            if grade.in_kernel_score is not None:
                in_kernel = (in_kernel or 0.0) + grade.in_kernel_score
            note = in_kernel_review(grade)
            if note:
                review.append(note)
        row += [f"{total:g}", "" if in_kernel is None else f"{in_kernel:g}", f"{sum(possible.values()):g}",
                "; ".join(review)]
        writer.writerow(row)
    path = paths.grades_csv(build)
    write_atomic(path, buf.getvalue())
    return path
