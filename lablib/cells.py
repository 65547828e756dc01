"""Read nbgrader notebooks and run their code cells in one Python namespace.

Used by the student's self-check and by the tests that prove each graded test cell fails for
the mistake it targets: running cells in-process takes milliseconds, where starting a kernel per
variant takes seconds. (Untrusted submissions are graded elsewhere, in separate processes.)
"""

from __future__ import annotations

import contextlib
import io
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from lablib.grading.notebook import grade_id, points  # the one place that knows nbgrader's cell roles

__all__ = ["CellResult", "load", "grade_id", "points", "strip_hidden_tests", "blank_solutions", "run_cells"]

# nbgrader's markers, spelled in two parts so that a search of lablib for them finds only real leaks.
SOLUTION_BEGIN, SOLUTION_END = "### BEGIN " + "SOLUTION", "### END " + "SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN " + "HIDDEN TESTS", "### END " + "HIDDEN TESTS"

_HIDDEN = re.compile(rf"^[ \t]*{HIDDEN_BEGIN}.*?^[ \t]*{HIDDEN_END}[^\n]*\n?", re.S | re.M)
_SOLUTION = re.compile(rf"^([ \t]*){SOLUTION_BEGIN}.*?^[ \t]*{SOLUTION_END}[^\n]*", re.S | re.M)


#: At most this many characters of a cell's printed output are kept (a print loop cannot fill memory).
OUTPUT_LIMIT = 100_000


class _CappedText(io.TextIOBase):
    """A text sink that keeps the first `limit` characters written to it and counts the rest."""

    def __init__(self, limit: int = OUTPUT_LIMIT):
        self.parts: list[str] = []
        self.kept = self.dropped = 0
        self.limit = limit

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.limit - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(len(text), room)
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        tail = f"\n[... {self.dropped} more characters of output not kept]\n" if self.dropped else ""
        return "".join(self.parts) + tail


@dataclass
class CellResult:
    """The outcome of one code cell: `error` is None when it ran without raising; `output` is
    what it printed (stdout and stderr together)."""

    grade_id: str | None
    points: float
    error: str | None
    output: str = ""

    @property
    def passed(self) -> bool:
        return self.error is None


def load(path: str | Path) -> Any:
    """Read and validate a notebook (nbformat 4)."""
    import nbformat  # imported here: running cells (the self-check's child) needs no nbformat

    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    return nb


def strip_hidden_tests(source: str) -> str:
    """Remove the hidden-test blocks (what students never see)."""
    return _HIDDEN.sub("", source)


def blank_solutions(source: str) -> str:
    """Replace each solution region as nbgrader's release does."""
    return _SOLUTION.sub(lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()", source)


def python_source(source: str) -> str:
    """Drop IPython-only lines (magics, shell escapes), which plain Python cannot run."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def _describe(exc: BaseException) -> str:
    """One line for an exception raised by a cell: its type and message (with the line, for syntax)."""
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}: {exc.msg} (line {exc.lineno}: {(exc.text or '').strip()})"
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def run_cells(
    nb: Any,
    *,
    replace: Mapping[str, str] | None = None,
    hidden: bool = True,
    namespace: dict[str, Any] | None = None,
) -> dict[str, CellResult]:
    """Run every code cell of `nb` in order, in one namespace; a cell that raises does not stop the rest.

    Inputs:
        replace: grade_id -> source to run instead of that cell's (a student's answer, say).
        hidden: False runs test cells without their hidden-test blocks (the student's view).
        namespace: the globals to run in (filled in place, so the caller sees what the cells
            defined); `display` is provided (a no-op) unless already there.
    Returns:
        {grade_id: CellResult} for every code cell that has a grade_id, in notebook order.
    """
    replace = dict(replace or {})
    scope: dict[str, Any] = {} if namespace is None else namespace
    scope.setdefault("__name__", "__main__")
    scope.setdefault("display", lambda *a, **k: None)
    results: dict[str, CellResult] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        gid = grade_id(cell)
        source = replace.pop(gid, cell.source) if gid else cell.source
        if not hidden:
            source = strip_hidden_tests(source)
        printed = _CappedText()
        try:
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                exec(compile(python_source(source), f"<cell {gid or index}>", "exec"), scope)  # noqa: S102
            error = None
        except BaseException as exc:  # noqa: BLE001 - a failing cell is a result, not a crash
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            error = _describe(exc)
        if gid:
            results[gid] = CellResult(gid, points(cell), error, printed.getvalue())
    if replace:
        raise KeyError(f"no code cells with grade_id {sorted(replace)}")
    return results
