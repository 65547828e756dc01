"""`lablib report`: one HTML page for the instructor about the whole class, from the stored results.

Reads `<build>/results/` (what `lablib grade` wrote) and regrades nothing. The page has:

1. the class at a glance: students, notebooks by status, the mean and median autograded total;
2. per graded test cell, the share of the students who submitted that notebook whose test passed
   (lowest first within each notebook, so the hardest parts stand out);
3. the most common diagnoses with how many students got each ("dW is transposed: 23 students"),
   read from the failure messages (the first "->" finding of a lablib check, or the first line of
   any other failure, numbers masked so that the same mistake groups together);
4. the distribution of the autograded totals as a histogram (a PNG embedded in the page);
5. the submissions to look at: a fault status (timed out, kernel died, ...), an in-kernel run
   that disagrees with the authoritative one, or a worker without isolation.

Written answers are graded in formgrader and are not part of this page. Everything a student
wrote is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import os
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from . import paths
from .in_kernel import in_kernel_review
from .results import NOTEBOOK_ORDER, NotebookResult, Status, load_results, weak_isolation, write_atomic

__all__ = ["ClassReport", "build_report", "render", "report", "diagnosis_key", "TOP_DIAGNOSES"]

#: How many diagnoses the page lists.
TOP_DIAGNOSES = 15
#: Longest diagnosis text shown (characters).
DIAGNOSIS_CHARS = 160
#: How many test cells a diagnosis row names before "and N more".
CELLS_NAMED = 5
#: Bins of the histogram of totals (at most; fewer when the lab has fewer points).
HISTOGRAM_BINS = 20
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", re.I)
_FINDING = re.compile(r"^\s*->\s*(.+)$", re.M)
_FAILED_ITEM = re.compile(r"^\s*(\S.*?)\s+FAILED\s", re.M)


def _findings(error: str) -> list[str]:
    """The "->" findings of a check report, each with the lines it was wrapped onto joined back."""
    out: list[str] = []
    indent = -1
    for line in error.splitlines():
        match = _FINDING.match(line)
        if match:
            out.append(match.group(1).strip())
            indent = len(line) - len(line.lstrip())
        elif out and indent >= 0 and line.strip() and len(line) - len(line.lstrip()) > indent:
            out[-1] += " " + line.strip()  # a continuation of the finding above
        else:
            indent = -1
    return out


def diagnosis_key(error: str) -> str:
    """The mistake a failure message names, in a form that groups students: the first "->" finding
    of a lablib check that is not a "worst entry" quote; else, for a check that named no mistake,
    which of its items failed; else the first line. Numbers become "#"."""
    findings = [f for f in _findings(error) if not f.lower().startswith("worst entry")]
    items = list(dict.fromkeys(_NUMBER.sub("#", item) for item in _FAILED_ITEM.findall(error)))
    if findings:
        text = findings[0]
    elif items:
        text = f"{', '.join(items)}: wrong values (no known mistake recognised)"
    else:
        text = next((line.strip() for line in error.splitlines() if line.strip()), "")
    for stop in (". ", "; "):  # the diagnosis, not its explanation
        text = text.split(stop, 1)[0]
    text = _NUMBER.sub("#", text.strip().rstrip("."))
    return text[:DIAGNOSIS_CHARS]


@dataclass
class CellStats:
    notebook: str
    grade_id: str
    description: str
    points: float
    passed: int = 0
    graded: int = 0  # students whose notebook was graded (any status but missing/malformed)

    @property
    def share(self) -> float:
        return self.passed / self.graded if self.graded else 0.0


@dataclass
class ClassReport:
    """What the page shows, as data (the tests read this; `render` draws it)."""

    students: list[str]
    totals: dict[str, float]
    possible: float
    statuses: Counter
    cells: list[CellStats]
    diagnoses: list[tuple[str, int, list[str]]]  # (diagnosis, students, cells it appeared in)
    flagged: list[tuple[str, str, str]] = field(default_factory=list)  # (student, notebook, why)


def build_report(results: dict[str, dict[str, NotebookResult]]) -> ClassReport:
    """Summarize `{student: {notebook: result}}` (`results.load_results`)."""
    students = sorted(results)
    totals = {s: sum(r.earned for r in nbs.values()) for s, nbs in results.items()}
    possible_by_nb: dict[str, float] = {}
    statuses: Counter = Counter()
    cells: dict[tuple[str, str], CellStats] = {}
    seen: dict[str, set[str]] = defaultdict(set)
    where: dict[str, set[str]] = defaultdict(set)
    flagged: list[tuple[str, str, str]] = []
    for student in students:
        for name, result in sorted(results[student].items()):
            statuses[result.status] += 1
            if result.tests:
                possible_by_nb[name] = max(possible_by_nb.get(name, 0.0), result.possible)
            counted = result.status not in (Status.MISSING, Status.MALFORMED)
            for test in result.tests:
                stats = cells.setdefault((name, test.grade_id), CellStats(
                    name, test.grade_id, test.description, test.points))
                if counted:
                    stats.graded += 1
                    stats.passed += test.passed
                if counted and not test.passed and test.error and not test.error.startswith("not graded"):
                    key = diagnosis_key(test.error)
                    seen[key].add(student)
                    where[key].add(test.grade_id)
            reasons = []
            if result.status.is_fault:
                reasons.append(f"{result.status}: {result.message.splitlines()[0] if result.message else ''}")
            if result.isolation and weak_isolation(result.isolation):
                reasons.append("graded without isolation")
            note = in_kernel_review(result)
            if note:
                reasons.append(note)
            if reasons:
                flagged.append((student, name, "; ".join(reasons)))
    diagnoses = sorted(((k, len(v), sorted(where[k])) for k, v in seen.items()), key=lambda d: (-d[1], d[0]))
    order = sorted(cells.values(), key=lambda c: (c.notebook, c.share, c.grade_id))
    return ClassReport(students, totals, sum(possible_by_nb.values()), statuses, order,
                       diagnoses[:TOP_DIAGNOSES], flagged)


def histogram_png(totals: list[float], possible: float) -> bytes:
    """A histogram of the totals (PNG bytes), drawn off-screen."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3), dpi=100)
    ax = fig.add_subplot()
    top = max(possible, max(totals, default=0.0), 1.0)
    bins = max(1, min(HISTOGRAM_BINS, int(top)))
    ax.hist(totals, bins=bins, range=(0, top), color="#3b6ea5", edgecolor="white")
    ax.set_xlabel(f"autograded points (of {possible:g})")
    ax.set_ylabel("students")
    ax.set_title("Distribution of autograded totals")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.bar { display: inline-block; height: 0.8rem; background: #3b6ea5; vertical-align: middle; }
.low { color: #a31515; font-weight: bold; }
table.diagnoses td:first-child { width: 60%; }
"""
#: A cell that fewer than this share of the class passed is shown in red.
LOW_SHARE = 0.5


def render(rep: ClassReport) -> str:
    """The report as one self-contained HTML page."""
    e = html.escape
    totals = list(rep.totals.values())
    mean = statistics.fmean(totals) if totals else 0.0
    median = statistics.median(totals) if totals else 0.0
    status_text = ", ".join(f"{n} {e(str(s))}" for s, n in sorted(rep.statuses.items(),
                                                                  key=lambda kv: NOTEBOOK_ORDER.index(kv[0])))
    out = [f"<h1>Backprop Lab: class report</h1>",
           f"<p><b>{len(rep.students)}</b> students; notebooks: {status_text or 'none'}. Autograded total: mean "
           f"<b>{mean:.1f}</b>, median <b>{median:g}</b> of {rep.possible:g}. Written answers are graded in "
           "formgrader and not included.</p>"]
    out.append("<h2>Distribution of totals</h2>")
    if totals:
        png = base64.b64encode(histogram_png(totals, rep.possible)).decode()
        out.append(f'<img alt="histogram of autograded totals" src="data:image/png;base64,{png}">')
    out.append("<h2>Most common diagnoses</h2>")
    if rep.diagnoses:
        out.append("<table class=diagnoses><tr><th>diagnosis</th><th>students</th><th>in test cells</th></tr>")
        for text, n, where in rep.diagnoses:
            named = ", ".join(where[:CELLS_NAMED]) + (f" and {len(where) - CELLS_NAMED} more" if len(where) > CELLS_NAMED else "")
            out.append(f"<tr><td>{e(text)}</td><td class=num>{n}</td><td>{e(named)}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>No failed test.</p>")
    out.append("<h2>Share of the class that passed each graded cell</h2>")
    notebook = None
    for c in rep.cells:
        if c.notebook != notebook:
            if notebook is not None:
                out.append("</table>")
            notebook = c.notebook
            out.append(f"<h3>{e(notebook)}</h3><table><tr><th>test cell</th><th>checks</th><th>points</th>"
                       "<th>passed</th><th></th></tr>")
        css = " class=low" if c.share < LOW_SHARE else ""
        out.append(f"<tr><td>{e(c.grade_id)}</td><td>{e(c.description)}</td><td class=num>{c.points:g}</td>"
                   f"<td class=num><span{css}>{c.passed}/{c.graded} ({100 * c.share:.0f} %)</span></td>"
                   f'<td><span class=bar style="width:{150 * c.share:.0f}px"></span></td></tr>')
    if notebook is not None:
        out.append("</table>")
    out.append("<h2>Submissions to look at</h2>")
    if rep.flagged:
        out.append("<table><tr><th>student</th><th>notebook</th><th>why</th></tr>")
        out += [f"<tr><td>{e(s)}</td><td>{e(n)}</td><td>{e(why)}</td></tr>" for s, n, why in rep.flagged]
        out.append("</table>")
    else:
        out.append("<p>None: every notebook was graded cleanly and every in-kernel run agreed.</p>")
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Backprop Lab: class report</title>'
            f"<style>{_STYLE}</style></head><body>\n" + "\n".join(out) + "\n</body></html>\n")


def report(build: str | os.PathLike | None = None, out: str | os.PathLike | None = None) -> tuple[Path, ClassReport]:
    """Write the class report (default `<build>/report.html`); returns its path and its data."""
    rep = build_report(load_results(paths.results_root(build)))
    path = Path(out) if out else paths.build_root(build) / "report.html"
    write_atomic(path, render(rep))
    return path, rep
