"""`lablib.self_check()`: the self-check from inside a notebook, shown as a table in JupyterLab.

    import lablib
    lablib.self_check()                    # the notebook this kernel runs (as saved on disk)
    lablib.self_check("01_layers.ipynb")   # a notebook by name, relative to the kernel's folder

It runs `lablib check` on the saved file (a fresh process, visible tests only: save first) and
returns the `CheckResult`, which JupyterLab shows as an HTML table (parts, points, and the
diagnosis of each failure) and a terminal as text. Which notebook the kernel runs is read from
Jupyter's `JPY_SESSION_NAME` (jupyter_server 2 sets it for each kernel) or IPython's `__session__`.
Inside the check's own child process the call does nothing, so a notebook may end with it.
Needs neither nbgrader nor nbformat.
"""

from __future__ import annotations

import html
import os
import sys
from pathlib import Path

from .check import CHECK_TIMEOUT_S, CHILD_VAR, CheckError, CheckResult, check, first_lines, saved_sentence
from .results import NotebookResult, Status
from .results import format_points as _num

__all__ = ["self_check", "check_html", "current_notebook", "SelfCheckSkipped"]

#: Colours of the table's result column (passed, anything else).
_PASSED_CSS, _FAILED_CSS = "color:#176117", "color:#a31515;font-weight:bold"
#: The result column has room for a diagnosis, which wraps between words (JupyterLab's own style for
#: <pre> in a table broke it mid-word: "has sha|pe (4,)").
_RESULT_CSS = "text-align:left;min-width:36em"
_DETAIL_CSS = "white-space:pre-wrap;word-break:normal;overflow-wrap:break-word"


def _inline_code(text: str) -> str:
    """Escaped text with its `code` spans as <code> (part titles come from the notebook's markdown)."""
    pieces = html.escape(text).split("`")
    if len(pieces) % 2 == 0:  # an unpaired backquote: leave the text as it is
        return html.escape(text)
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


class SelfCheckSkipped:
    """What `self_check()` returns inside the check's own child process (no nested check)."""

    def __repr__(self) -> str:
        return "self_check skipped: this notebook is being checked right now"

    def _repr_html_(self) -> str:
        return f"<p>{html.escape(repr(self))}</p>"


def current_notebook() -> Path | None:
    """The notebook file this kernel runs, when Jupyter says so; else None."""
    named = os.environ.get("JPY_SESSION_NAME", "")
    if not named:
        main = sys.modules.get("__main__")
        named = str(getattr(main, "__session__", "") or "")
    if not named.endswith(".ipynb"):
        return None
    path = Path(named)
    if path.is_file():
        return path.resolve()
    here = Path.cwd() / path.name  # the session name may be relative to the server's root
    return here if here.is_file() else None


def self_check(notebook: str | os.PathLike | None = None, timeout: float = CHECK_TIMEOUT_S) -> CheckResult | SelfCheckSkipped:
    """Check `notebook` (default: the one this kernel runs) as saved, with its visible tests.

    Raises CheckError when no notebook is given and Jupyter does not say which one is running.
    """
    if os.environ.get(CHILD_VAR):
        return SelfCheckSkipped()
    target = Path(notebook) if notebook is not None else current_notebook()
    if target is None:
        raise CheckError("which notebook? Jupyter did not say; name it: lablib.self_check(\"01_layers.ipynb\")")
    saved = target.stat().st_mtime if target.is_file() else None
    result = check([target], timeout=timeout, jobs=1)
    if saved is not None:
        result.saved_at[str(target)] = saved
    return result




def _notebook_html(nb: NotebookResult) -> str:
    e = html.escape
    name = Path(nb.path or nb.notebook).name
    if nb.status is Status.MALFORMED:
        return f"<h4>{e(name)}: not checked</h4><p style='{_FAILED_CSS}'>{e(nb.message)}</p>"
    out = [f"<h4>{e(name)}: {_num(nb.earned)} / {_num(nb.possible)} points from visible tests</h4>"]
    out += [f"<p><b>Note:</b> {e(note)}</p>" for note in nb.notes]
    if nb.status is not Status.GRADED:
        out.append(f"<p style='{_FAILED_CSS}'>{e(str(nb.status))}: {e(nb.message)}</p>")
    for cell, error in nb.cell_errors.items():
        out.append(f"<p>Error in cell <b>{e(cell)}</b>:</p><pre>{e(chr(10).join(first_lines(error)))}</pre>")
    out.append("<table><thead><tr><th style='text-align:left'>part</th><th style='text-align:left'>test</th>"
               "<th>points</th><th style='text-align:left'>result</th></tr></thead><tbody>")
    for part, tests in nb.parts().items():
        for i, t in enumerate(tests):
            css = _PASSED_CSS if t.passed else _FAILED_CSS
            detail = f"<pre style='{_DETAIL_CSS}'>{e(chr(10).join(first_lines(t.error)))}</pre>" if t.error else ""
            out.append(f"<tr><td style='text-align:left'>{_inline_code(part) if i == 0 else ''}</td>"
                       f"<td style='text-align:left'>{e(t.description or t.grade_id)}</td>"
                       f"<td>{_num(t.earned)} / {_num(t.points)}</td>"
                       f"<td style='{_RESULT_CSS}'><span style='{css}'>{e(str(t.status))}</span>{detail}</td></tr>")
    out.append("</tbody></table>")
    if nb.manual_points:
        out.append(f"<p>Written answers ({_num(nb.manual_points)} points) are graded by hand.</p>")
    return "\n".join(out)


def check_html(result: CheckResult) -> str:
    """The self-check as HTML (one table per notebook, then the total)."""
    body = "\n".join(_notebook_html(nb) for nb in result.notebooks)
    verdict = "all visible tests pass" if result.passed else "not passing yet"
    saved = f"<p>{html.escape(saved_sentence(result))}</p>" if result.saved_at else ""
    return (f"<div class='lablib-self-check'>{body}<p><b>Total: {_num(result.earned)} / {_num(result.possible)}"
            f"</b> points from visible tests; {verdict}. Hidden tests run at grading too, so these points are an "
            f"upper bound.</p>{saved}</div>")
