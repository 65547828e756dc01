"""`lablib feedback`: one HTML page per student from the grading results and the TA's grades.

`<build>/feedback/<student>.html` lists, per notebook: its status and score, then per part and
test cell: the description (the first line of the test's docstring, which students see), points,
passed or failed, and for a failure its message. The message is what the grader recorded
(`grader.failure_text`): a lablib check's diagnosis, an assert's message, or an exception's
type and message; never a traceback and never a line of a hidden test. Errors of the student's
own answer cells are listed too. Then, as nbgrader's feedback shows a graded cell (a "Student's
answer" panel with "Score: x / y" and a "Comments:" footer), every written answer: the question,
the student's answer (as the TA graded it, from `autograded/`), the TA's score ("not graded yet"
until there is one) and comment, all read from nbgrader's gradebook (`gradebook.cell_reviews`);
likewise a TA's comment on a code answer, and a TA's score that replaces an autograded one.
Everything the student or the TA wrote is HTML-escaped (shown as typed, not rendered).

Why not nbgrader's `generate_feedback` (which renders `autograded/` with the hidden tests
cleared): that page is the whole notebook with its outputs, to be read cell by cell; this one is
a table per part, one row per test with its description, points and diagnosis, built from the
results alone: it never renders test source, so nothing hidden can leak even if a hidden block
were mis-marked. (The TA sees the full autograded notebook in formgrader.)
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import notebook, paths
from .results import NotebookResult, Status, TestResult, load_results, write_atomic
from .results import format_points as _num

if TYPE_CHECKING:
    from .gradebook import CellReview

__all__ = ["feedback", "render", "HandGrading"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; margin: 0.5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
.passed { color: #176117; } .failed, .status-bad { color: #a31515; font-weight: bold; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: 0.4rem; margin: 0.3rem 0 0; font-size: 0.85rem; }
.answer { border: 1px solid #337ab7; border-radius: 4px; margin: 0.5rem 0 1rem; }
.answer-heading { background: #337ab7; color: white; padding: 0.3rem 0.6rem; display: flex; justify-content: space-between; }
.answer-body, .answer-footer { padding: 0.3rem 0.6rem; }
.answer-footer { border-top: 1px solid #ddd; background: #f5f5f5; }
.typed { white-space: pre-wrap; }
.question p { margin: 0.2rem 0; }
"""


def _markdown(text: str) -> str:
    """The question's markdown as HTML (bold, code, lists; LaTeX stays as typed), raw HTML escaped.
    mistune comes with nbconvert (nbgrader's); without it the text is shown as typed."""
    try:
        import mistune
    except ImportError:
        return f'<div class="typed">{html.escape(text)}</div>'
    return mistune.create_markdown(escape=True)(text)


@dataclass
class HandGrading:
    """What formgrader holds for one notebook of one student: `cells` by grade_id (the TA's scores
    and comments, `gradebook.CellReview`), and the written answers as the TA saw them (by grade_id;
    empty when the autograded notebook is not there)."""

    cells: dict[str, "CellReview"] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)


def _written_html(name: str, outline: notebook.Outline, hand: HandGrading) -> str:
    """The written answers as nbgrader's feedback shows them, and the TA's comments on code answers."""
    e = html.escape
    out = []
    graded = [hand.cells[w.grade_id] for w in outline.written_cells
              if w.grade_id in hand.cells and hand.cells[w.grade_id].graded]
    possible = sum(w.points for w in outline.written_cells)
    if outline.written_cells:
        so_far = "" if len(graded) == len(outline.written_cells) else \
            f", {len(outline.written_cells) - len(graded)} of {len(outline.written_cells)} not graded yet"
        out.append(f"<h3>Written answers ({_num(sum(r.score for r in graded))} / {_num(possible)}, "
                   f"graded by hand{so_far})</h3>")
    for w in outline.written_cells:
        review = hand.cells.get(w.grade_id)
        if review is not None and review.graded:
            extra = f" (extra credit {_num(review.extra_credit)})" if review.extra_credit else ""
            score = f"Score: {_num(review.score)} / {_num(w.points)}{extra}"
        else:
            score = f"Score: not graded yet ({_num(w.points)} point{'s' if w.points != 1 else ''})"
        answer = hand.answers.get(w.grade_id)
        body = f'<div class="typed">{e(answer)}</div>' if answer is not None else "<i>(your answer is not shown here)</i>"
        out.append(f'<div class="answer" id="{e(Path(name).stem)}-{e(w.grade_id)}">')
        if w.question:
            out.append(f'<div class="answer-body question">{_markdown(w.question)}</div>')
        out.append(f'<div class="answer-heading"><span>Your answer</span><span>{e(score)}</span></div>'
                   f'<div class="answer-body">{body}</div>')
        if review is not None and review.comment:
            out.append(f'<div class="answer-footer"><b>Comments:</b> <span class="typed">{e(review.comment)}</span></div>')
        out.append("</div>")
    written = set(outline.written)
    tests = {t.grade_id for t in outline.tests}
    code = [(gid, r.comment) for gid, r in hand.cells.items() if r.comment and gid not in written | tests]
    if code:
        out.append("<h3>Comments on your code</h3><ul>")
        out += [f'<li><b>{e(gid)}</b>: <span class="typed">{e(text)}</span></li>' for gid, text in sorted(code)]
        out.append("</ul>")
    return "\n".join(out)




def _counted(t: TestResult, hand: HandGrading | None) -> float:
    """A test's points as they count: the TA's score when formgrader changed it, else the autograder's."""
    review = hand.cells.get(t.grade_id) if hand is not None else None
    return review.score if review is not None and review.manual_score is not None else t.earned


def _earned(grade: NotebookResult, hand: HandGrading | None) -> float:
    """A notebook's autograded points with the TA's changes, as grades.csv and nbgrader export count them."""
    return sum(_counted(t, hand) for t in grade.tests)


def _notebook_html(grade: NotebookResult, outline: notebook.Outline | None = None,
                   hand: HandGrading | None = None) -> str:
    e = html.escape
    out = [f"<h2>{e(grade.notebook)}: {_num(_earned(grade, hand))} / {_num(grade.possible)} points</h2>"]
    if grade.status is not Status.GRADED:
        out.append(f'<p class="status-bad">Status: {e(grade.status)}. {e(grade.message)}</p>')
    reviewed = outline is not None and hand is not None
    if grade.manual_points and not reviewed:
        out.append(f"<p>Written answers ({_num(grade.manual_points)} points) are graded by hand and not included.</p>")
    if grade.cell_errors:
        out.append("<p>Your answer cells that raised an error when run:</p><ul>")
        out += [f"<li><b>{e(cell)}</b><pre>{e(error)}</pre></li>" for cell, error in grade.cell_errors.items()]
        out.append("</ul>")
    for part, tests in grade.parts().items():
        earned, possible = sum(_counted(t, hand) for t in tests), sum(t.points for t in tests)
        out.append(f"<h3>{e(part)} ({_num(earned)} / {_num(possible)})</h3>")
        out.append("<table><tr><th>check</th><th>points</th><th>result</th></tr>")
        for t in tests:
            css = "passed" if t.passed else "failed"
            detail = ""
            if not t.passed and t.error:
                where = " (in the hidden tests)" if t.hidden else ""
                detail = f"<pre>{e(t.error)}{e(where)}</pre>"
            review = hand.cells.get(t.grade_id) if hand is not None else None
            changed = ""
            if review is not None and review.manual_score is not None:
                changed = f" (changed by the TA to {_num(review.score)} / {_num(t.points)})"
            out.append(f"<tr><td>{e(t.description or t.grade_id)}</td><td>{_num(t.earned)} / {_num(t.points)}"
                       f'{e(changed)}</td><td><span class="{css}">{e(t.status)}</span>{detail}</td></tr>')
        out.append("</table>")
    if reviewed:
        out.append(_written_html(grade.notebook, outline, hand))
    return "\n".join(out)


def render(student: str, grades: dict[str, NotebookResult], notebooks: list[str],
           outlines: dict[str, notebook.Outline] | None = None, hand: dict[str, HandGrading] | None = None) -> str:
    """The feedback page of one student (`notebooks`: every notebook of the lab, in order). With
    `outlines` (by notebook name) and `hand` (what formgrader holds, by notebook name), the written
    answers with the TA's scores and comments as well."""
    e = html.escape
    outlines, hand = outlines or {}, hand or {}
    body = []
    total = possible = written = written_possible = 0.0
    written_open = 0
    for name in notebooks:
        grade = grades.get(name)
        if grade is None:
            body.append(f"<h2>{e(name)}</h2><p class=\"status-bad\">Not graded yet.</p>")
            continue
        outline, mine = outlines.get(name), hand.get(name)
        total, possible = total + _earned(grade, mine), possible + grade.possible
        if outline is not None and mine is not None:
            for w in outline.written_cells:
                review = mine.cells.get(w.grade_id)
                written_possible += w.points
                if review is not None and review.graded:
                    written += review.score
                else:
                    written_open += 1
        body.append(_notebook_html(grade, outline, mine))
    summary = (f"<p>Automatically graded points: <b>{_num(total)} / {_num(possible)}</b>. Hidden tests ran too; "
               "a failed check says what was wrong.")
    if written_possible:
        pending = f" ({written_open} answer{'s' if written_open != 1 else ''} not graded yet)" if written_open else ""
        summary += f" Written answers, graded by hand: <b>{_num(written)} / {_num(written_possible)}</b>{pending}."
        summary += (f" Total: <b>{_num(total + written)} / {_num(possible + written_possible)}</b>"
                    f"{' so far' if written_open else ''}.")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Backprop Lab: feedback for "
            f"{e(student)}</title><style>{_STYLE}</style></head><body>\n"
            f"<h1>Backprop Lab: feedback for {e(student)}</h1>\n"
            f"{summary}</p>\n" + "\n".join(body) + "\n</body></html>\n")


def _hand_grading(build: str | os.PathLike | None, results: dict[str, dict[str, NotebookResult]]
                  ) -> dict[str, dict[str, HandGrading]]:
    """{student: {notebook name: HandGrading}} for every notebook the gradebook holds (none without
    nbgrader or a gradebook); the answers come from the autograded notebooks the TA graded."""
    try:
        from .gradebook import autograded_path, cell_reviews
        reviews = cell_reviews(build)
    except ImportError:  # no nbgrader here: the autograded results only
        return {}
    out: dict[str, dict[str, HandGrading]] = {}
    for student, grades in results.items():
        for name in grades:
            mine = reviews.get(student, {}).get(Path(name).stem)
            if mine is None:
                continue
            nb, _ = notebook.load(autograded_path(build, student, name))
            answers = {} if nb is None else {
                notebook.grade_id(c): c.source for c in nb.cells if notebook.is_hand_graded(c) and notebook.grade_id(c)}
            out.setdefault(student, {})[name] = HandGrading(mine, answers)
    return out


def feedback(build: str | os.PathLike | None = None, students: list[str] | None = None) -> list[Path]:
    """Write `<build>/feedback/<student>.html` for every graded student; returns the files written."""
    results = load_results(paths.results_root(build))
    if students is not None:
        results = {s: g for s, g in results.items() if s in students}
    sources = paths.source_notebooks()
    outlines = {p.name: notebook.outline(notebook.read(p, validate=False)) for p in sources}
    notebooks = [p.name for p in sources]
    notebooks += sorted({n for g in results.values() for n in g} - set(notebooks))
    hand = _hand_grading(build, results)
    out = []
    for student, grades in sorted(results.items()):
        path = paths.feedback_root(build) / f"{student}.html"
        write_atomic(path, render(student, grades, notebooks, outlines, hand.get(student, {})))
        out.append(path)
    return out
