"""`lablib feedback`: one HTML page per student from the grading results.

`<build>/feedback/<student>.html` lists, per notebook: its status and score, then per part and
test cell: the description (the first line of the test's docstring, which students see), points,
passed or failed, and for a failure its message. The message is what the grader recorded
(`grader.failure_text`): a lablib check's diagnosis, an assert's message, or an exception's
type and message; never a traceback and never a line of a hidden test. Errors of the student's
own answer cells are listed too. Everything the student wrote is HTML-escaped.

Why not nbgrader's `generate_feedback` (which renders `autograded/` with the hidden tests
cleared): that page is the whole notebook with its outputs, to be read cell by cell; this one is
a table per part, one row per test with its description, points and diagnosis, built from the
results alone: it never renders test source, so nothing hidden can leak even if a hidden block
were mis-marked. (The TA sees the full autograded notebook in formgrader.)
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from . import paths
from .results import NotebookResult, Status, load_results, write_atomic
from .results import format_points as _num

__all__ = ["feedback", "render"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
.passed { color: #176117; } .failed, .status-bad { color: #a31515; font-weight: bold; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: 0.4rem; margin: 0.3rem 0 0; font-size: 0.85rem; }
"""




def _notebook_html(grade: NotebookResult) -> str:
    e = html.escape
    out = [f"<h2>{e(grade.notebook)}: {_num(grade.earned)} / {_num(grade.possible)} points</h2>"]
    if grade.status is not Status.GRADED:
        out.append(f'<p class="status-bad">Status: {e(grade.status)}. {e(grade.message)}</p>')
    if grade.manual_points:
        out.append(f"<p>Written answers ({_num(grade.manual_points)} points) are graded by hand and not included.</p>")
    if grade.cell_errors:
        out.append("<p>Your answer cells that raised an error when run:</p><ul>")
        out += [f"<li><b>{e(cell)}</b><pre>{e(error)}</pre></li>" for cell, error in grade.cell_errors.items()]
        out.append("</ul>")
    for part, tests in grade.parts().items():
        earned, possible = sum(t.earned for t in tests), sum(t.points for t in tests)
        out.append(f"<h3>{e(part)} ({_num(earned)} / {_num(possible)})</h3>")
        out.append("<table><tr><th>check</th><th>points</th><th>result</th></tr>")
        for t in tests:
            css = "passed" if t.passed else "failed"
            detail = ""
            if not t.passed and t.error:
                where = " (in the hidden tests)" if t.hidden else ""
                detail = f"<pre>{e(t.error)}{e(where)}</pre>"
            out.append(f"<tr><td>{e(t.description or t.grade_id)}</td><td>{_num(t.earned)} / {_num(t.points)}</td>"
                       f'<td><span class="{css}">{e(t.status)}</span>{detail}</td></tr>')
        out.append("</table>")
    return "\n".join(out)


def render(student: str, grades: dict[str, NotebookResult], notebooks: list[str]) -> str:
    """The feedback page of one student (`notebooks`: every notebook of the lab, in order)."""
    e = html.escape
    body = []
    total = possible = 0.0
    for name in notebooks:
        grade = grades.get(name)
        if grade is None:
            body.append(f"<h2>{e(name)}</h2><p class=\"status-bad\">Not graded yet.</p>")
            continue
        total, possible = total + grade.earned, possible + grade.possible
        body.append(_notebook_html(grade))
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Backprop Lab: feedback for "
            f"{e(student)}</title><style>{_STYLE}</style></head><body>\n"
            f"<h1>Backprop Lab: feedback for {e(student)}</h1>\n"
            f"<p>Automatically graded points: <b>{_num(total)} / {_num(possible)}</b>. Hidden tests ran too; a failed "
            "check says what was wrong.</p>\n" + "\n".join(body) + "\n</body></html>\n")


def feedback(build: str | os.PathLike | None = None, students: list[str] | None = None) -> list[Path]:
    """Write `<build>/feedback/<student>.html` for every graded student; returns the files written."""
    results = load_results(paths.results_root(build))
    notebooks = [p.name for p in paths.source_notebooks()]
    notebooks += sorted({n for g in results.values() for n in g} - set(notebooks))
    out = []
    for student, grades in sorted(results.items()):
        if students is not None and student not in students:
            continue
        path = paths.feedback_root(build) / f"{student}.html"
        write_atomic(path, render(student, grades, notebooks))
        out.append(path)
    return out
