"""The in-kernel comparison: the same plan run as a plain nbgrader-style autograde would, for review.

After the authoritative run (`grader.py`), every planned cell (setup, the student's answers, the
needed locked cells, and the *source's* test cells with their hidden tests) runs again in order,
in one namespace, in a fresh sandboxed worker, a cell that raises not stopping the rest. Each test
cell passes there when it ran without raising. That score is what the submission would have got
if its code and the tests shared a kernel; where it differs from the authoritative one
(`disagreements`), the submission changed what the tests saw (tampering, when the in-kernel run
passes more), and `lablib export` and `lablib report` flag it for review (`in_kernel_review`).

It never changes the authoritative score or status: it runs after it, in another process, and
only pass/fail per test cell comes back (no error text: its test cells hold hidden tests). It stops
at the first cell that times out or kills its worker (`in_kernel_status` says so; later cells are
not compared).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from .notebook import Role
from .plan import Plan, answer_text
from .results import NotebookResult, Status

__all__ = ["run_in_kernel", "in_kernel_review"]

#: Longest in-kernel message kept in a result.
MESSAGE_LIMIT = 2000


def run_in_kernel(plan: Plan, answers: dict[str, str], make_sandbox: Callable[[], Any],
                  result: NotebookResult, cell_timeout: float, notebook_timeout: float) -> None:
    """Run the plan as one plain kernel would and record it in `result`'s in_kernel_* fields and
    `disagreements`. Touches nothing else of `result`."""
    from .sandbox import WorkerLost

    start = time.monotonic()
    deadline = start + notebook_timeout
    outcome = {t.grade_id: Status.NOT_RUN for t in result.tests}
    status, message = Status.COMPLETE, ""
    sandbox = None
    try:
        sandbox = make_sandbox()
        sandbox.start()
        for step in plan.steps:
            source = answer_text(step, answers) if step.role is Role.ANSWER else step.source
            now = time.monotonic()
            if now >= deadline:
                status, message = Status.TIMED_OUT, f"stopped at cell {step.grade_id}: the notebook's limit was reached"
                break
            sandbox.deadline = now + min(cell_timeout, deadline - now)
            try:
                error = sandbox.exec_cell(source, step.grade_id)
            except WorkerLost as lost:
                if step.role is Role.TEST:
                    outcome[step.grade_id] = Status(lost.status)
                status, message = Status(lost.status), f"stopped at cell {step.grade_id}: {lost.message}"
                break
            except Exception as exc:  # noqa: BLE001 - the worker could not even report the cell
                error = f"{type(exc).__name__}: {exc}"
            if step.role is Role.TEST:
                outcome[step.grade_id] = Status.PASSED if error is None else Status.FAILED
    except WorkerLost as lost:  # the worker did not start
        status, message = Status(lost.status), f"the in-kernel run could not start: {lost.message}"
    except Exception as exc:  # noqa: BLE001 - a failure of the comparison never fails the grading
        status, message = Status.FAILED, f"the in-kernel run failed: {type(exc).__name__}: {exc}"
    finally:
        if sandbox is not None:
            sandbox.close()
    authoritative = {t.grade_id: t.status for t in result.tests}
    result.in_kernel_tests = outcome
    result.in_kernel_status, result.in_kernel_message = status, message[:MESSAGE_LIMIT]
    result.in_kernel_score = sum(t.points for t in result.tests if outcome[t.grade_id] is Status.PASSED)
    result.disagreements = [gid for gid, ran in outcome.items()
                            if ran in (Status.PASSED, Status.FAILED)
                            and (ran is Status.PASSED) != (authoritative[gid] is Status.PASSED)]
    result.in_kernel_seconds = round(time.monotonic() - start, 2)


def in_kernel_review(result: NotebookResult) -> str:
    """Why a person should look at this notebook given its in-kernel comparison ("" when nothing).

    e.g. "in-kernel 12/12 vs authoritative 8/12 in 01_layers: tampering suspected, cells test_linear_dW, ..."
    """
    if result.in_kernel_score is None or result.in_kernel_status is None:
        return ""
    stem = Path(result.notebook).stem
    notes = []
    if result.disagreements:
        head = (f"in-kernel {result.in_kernel_score:g}/{result.possible:g} vs authoritative "
                f"{result.earned:g}/{result.possible:g} in {stem}: ")
        higher, lower = result.in_kernel_higher, result.in_kernel_lower
        parts = []
        if higher:
            parts.append("tampering suspected, cells " + ", ".join(higher))
        if lower:
            parts.append(("and " if higher else "") + "failed in-kernel but passed authoritatively, cells "
                         + ", ".join(lower))
        notes.append(head + "; ".join(parts))
    if result.in_kernel_status is not Status.COMPLETE and result.status is Status.GRADED:
        first = result.in_kernel_message.splitlines()[0] if result.in_kernel_message else ""
        notes.append(f"{stem} in-kernel run {result.in_kernel_status} (the cells after it not compared): "
                     f"{first}".rstrip(": "))
    return "; ".join(notes)
