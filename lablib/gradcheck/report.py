"""The result of a check: one `Item` per checked property, printed as text and as HTML.

A test cell asserts on it (`report.assert_ok("dW")`), so a failing autograded cell shows the student
the diagnosis; a notebook cell that ends with the report displays it as a small table.

How it reads in a notebook (IPython/Jupyter):
- a failing `assert_ok` raises an AssertionError that renders itself (IPython's `_render_traceback_`):
  the failed rows and their diagnosis first, wrapped at word boundaries, and no traceback through
  lablib, whose frames say nothing about the student's code;
- a test cell whose checks all passed ends with one line saying so (`PassedChecks`, shown after the
  cell by an IPython `post_run_cell` callback registered on the first `assert_ok`);
- each test cell shows only the rows it grades: `assert_ok("dx")` never shows the dW row.
Outside IPython (pytest, the grader, a script) nothing is displayed: the AssertionError's message
carries the same text.
"""

from __future__ import annotations

import html
import re
import sys
import textwrap
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Item", "CheckReport", "MEASURED", "check_failed", "FailureRendering", "PassedChecks", "TEXT_WIDTH"]

#: Column at which text reports wrap (at word boundaries): narrower than a notebook's output area,
#: so that the browser never wraps a line in the middle of a word.
TEXT_WIDTH = 88
_TOP = "vertical-align:top"  # a row's name and status beside its first line, not beside its middle
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RED, _GREEN, _BOLD, _RESET = "\x1b[31m", "\x1b[32m", "\x1b[1m", "\x1b[0m"


#: How a measured line (not a diagnosis) of an item begins: it stays when a mistake is named.
MEASURED = "worst entry"


@dataclass
class Item:
    """One checked property, such as "forward", "dx" or "dW".

    passed: whether it holds. detail: what was measured ("max scaled error 3e-11 ≤ 1e-06 over all 15
    entries"). problems: plain-word findings, most important first (empty when passed).
    """

    name: str
    passed: bool = True
    detail: str = ""
    problems: list[str] = field(default_factory=list)

    def fail(self, problem: str) -> None:
        self.passed = False
        if problem not in self.problems:
            self.problems.append(problem)

    def explain(self, *sentences: str) -> None:
        """Make `sentences` (a named mistake) the item's diagnosis, in place of any generic one
        ("wrong at k of n entries", "a constant factor"): one mistake, told once. What was measured
        (the worst entry) stays, after them."""
        self.passed = False
        self.problems = list(sentences) + [q for q in self.problems if q.startswith(MEASURED)]


@dataclass
class CheckReport:
    """Everything one check found.

    title: what was checked, on what input. items: the properties in display order. notes: facts
    worth knowing that do not fail the check (kinks skipped, warnings numpy raised). evaluations:
    how many times the numeric gradients ran the student's forward (the cost of the check).
    """

    title: str
    items: dict[str, Item] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    evaluations: int = 0

    def item(self, name: str) -> Item:
        if name not in self.items:
            self.items[name] = Item(name)
        return self.items[name]

    @property
    def passed(self) -> bool:
        return all(item.passed for item in self.items.values())

    def __bool__(self) -> bool:
        return self.passed

    def failed(self) -> list[str]:
        return [name for name, item in self.items.items() if not item.passed]

    def assert_ok(self, *names: str) -> None:
        """Raise an AssertionError carrying the diagnosis of the named items only (`check_failed`)
        unless every named item passed.

        With no names, every item must pass. An unknown name is an error of the test, not of the
        student, and raises KeyError listing the known ones. When they pass inside IPython, the names
        are noted for the one line shown after the cell ("✓ passed: dx").
        """
        wanted = names or tuple(self.items)
        unknown = [n for n in wanted if n not in self.items]
        if unknown:
            raise KeyError(f"no check named {unknown}; this report has {list(self.items)}")
        if not all(self.items[n].passed for n in wanted):
            raise check_failed(self, wanted)
        _cell_summary.passed(wanted)

    def to_text(self, names: tuple[str, ...] | None = None, *, color: bool = False) -> str:
        """The title, one row per named item (all by default) with its problems, and the notes;
        wrapped at TEXT_WIDTH. color: ANSI colours for a terminal or a notebook's error output."""
        shown = [self.items[n] for n in (names or self.items)]
        width = max([len(item.name) for item in shown] + [4])
        lines = _wrap(self.title, "", "    ")
        for item, problems in zip(shown, _told_once(shown)):
            status = "ok    " if item.passed else "FAILED"
            if color:
                status = f"{_GREEN}{status}{_RESET}" if item.passed else f"{_BOLD}{_RED}{status}{_RESET}"
            head = f"  {item.name:<{width}}  {status}  "
            lines += _wrap(item.detail, head, " " * (width + 12)) if item.detail else [head.rstrip()]
            for problem in problems:
                lines += _wrap(problem, f"  {'':<{width}}  -> ", " " * (width + 7))
        for note in self.notes:
            lines += _wrap(note, "  note: ", "        ")
        return "\n".join(lines)

    __str__ = to_text

    def __repr__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, names: tuple[str, ...] | None = None) -> str:
        """The report as a small HTML table (the named items, all by default)."""
        rows = []
        shown = [self.items[n] for n in (names or self.items)]
        for item, told in zip(shown, _told_once(shown)):
            colour = "#1a7f37" if item.passed else "#cf222e"
            status = "ok" if item.passed else "FAILED"
            problems = "".join(f"<li>{html.escape(p)}</li>" for p in told)
            problems = f"<ul style='margin:0.2em 0'>{problems}</ul>" if problems else ""
            rows.append(
                f"<tr><td style='{_TOP}'><code>{html.escape(item.name)}</code></td>"
                f"<td style='{_TOP};color:{colour};font-weight:bold'>{status}</td>"
                f"<td style='{_TOP};text-align:left'>{html.escape(item.detail)}"
                f"{problems}</td></tr>"
            )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        return (
            f"<div><b>{html.escape(self.title)}</b>"
            "<table><tr><th>check</th><th>result</th><th style='text-align:left'>details</th></tr>"
            + "".join(rows) + "</table>"
            + (f"<ul style='color:#57606a'>{notes}</ul>" if notes else "")
            + "</div>"
        )


def _told_once(items: list[Item]) -> list[list[str]]:
    """Each item's problems as shown: a finding that an earlier row already gave in full (one mistake
    failing several rows, such as a Sequential chaining its layers wrongly) is referred to, not repeated."""
    first: dict[str, str] = {}
    told = []
    for item in items:
        lines = []
        for problem in item.problems:
            if problem in first and not problem.startswith(MEASURED):
                lines.append(f"the same finding as for {first[problem]}, above.")
            else:
                first.setdefault(problem, item.name)
                lines.append(problem)
        told.append(lines)
    return told


def _wrap(text: str, first: str, rest: str) -> list[str]:
    """`text` wrapped at word boundaries to TEXT_WIDTH, the first line after the prefix `first`
    (which may hold ANSI codes: its visible width counts), the others indented by `rest`."""
    visible = len(_ANSI.sub("", first))
    body = textwrap.wrap(text, width=TEXT_WIDTH, initial_indent="\0" * visible, subsequent_indent=rest,
                         break_long_words=False, break_on_hyphens=False) or [""]
    return [first + body[0][visible:]] + body[1:]


@dataclass(frozen=True)
class FailureRendering:
    """How IPython shows a failed `assert_ok` instead of a traceback (IPython calls an exception's
    `_render_traceback_` when it has one): which check failed, then its rows, in colour."""

    report: CheckReport
    names: tuple[str, ...]

    def failed(self) -> list[str]:
        """The names among those asserted that failed."""
        return [n for n in self.names if not self.report.items[n].passed]

    def __call__(self) -> list[str]:
        head = f"{_BOLD}{_RED}Check failed: {', '.join(self.failed())}{_RESET}"
        return [head] + self.report.to_text(self.names, color=True).splitlines()


def check_failed(report: CheckReport, names: tuple[str, ...]) -> AssertionError:
    """The AssertionError a failed `assert_ok` raises: a plain AssertionError (what pytest, nbgrader
    and the grader expect, named as students know it) whose message is the text of the named rows,
    and which renders itself in IPython (`_render_traceback_`) as those rows, without a traceback
    through lablib. `.check` holds the FailureRendering (the report and the names)."""
    error = AssertionError("\n" + report.to_text(names))
    error.check = error._render_traceback_ = FailureRendering(report, tuple(names))
    return error


@dataclass
class PassedChecks:
    """What a test cell shows when every check in it passed: one line naming them."""

    names: list[str]

    def __repr__(self) -> str:
        listed = ", ".join(self.names)
        return f"✓ passed: {listed}" if len(listed) <= TEXT_WIDTH - 10 else f"✓ all {len(self.names)} checks passed"

    def _repr_html_(self) -> str:
        return f"<div style='color:#1a7f37;font-weight:bold'>{html.escape(repr(self))}</div>"


class _CellSummary:
    """Collects the names that `assert_ok` accepted during one IPython cell and shows them in one
    line after the cell when it ran without an error. Registered with IPython on first use, so it
    never touches a process that is not an IPython shell."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.shell: Any = None

    def passed(self, names: tuple[str, ...]) -> None:
        shell = self._shell()
        if shell is None:
            return
        self.names += [n for n in names if n not in self.names]

    def _shell(self) -> Any:
        if "IPython" not in sys.modules:  # not imported: certainly not running in IPython
            return None
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None and shell is not self.shell:
            shell.events.register("post_run_cell", self.after_cell)
            self.shell = shell
        return shell

    def after_cell(self, result: Any) -> None:
        names, self.names = self.names, []
        if names and getattr(result, "success", False):
            from IPython.display import display

            display(PassedChecks(names))


_cell_summary = _CellSummary()
