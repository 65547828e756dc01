"""One notebook's authoritative grading run: the plan (`plan.py`) executed across the sandbox boundary.

Answer cells, setup and the needed locked cells run in the *worker* (`sandbox.py` describes its
isolation). Test cells run in the *trusted grader process*, always with the source's text, hidden
tests included: whatever the student did to the test cells (edited, retyped, deleted) is
irrelevant. The test code sees the student's classes and functions as proxies (`sandbox.Remote`)
and every value as plain data, so all comparisons run on the grader's own NumPy and lablib.

- SETUP runs on both sides. On the trusted side its *classes* (`Module`, `Parameter`, ...) are then
  replaced by the worker's, because the objects students' code creates live in the worker; its
  functions (`check_layer`, ...) and modules (`np`) stay the grader's own.
- **Classes a test cell defines** at its top level (stand-ins such as `AddOne`, `Flip`) are defined
  in the worker, and bound to a proxy in the test's namespace (`compile_test`).
- A failure is worded by `failure_text`: a check's diagnosis, an assert's message, or the
  exception's type and message; never a traceback, never a line of a hidden test.

Limits: every cell has a wall-clock limit (`cell_timeout`), the notebook one in all
(`notebook_timeout`), the worker an address-space limit (`memory_mb`). A cell past its limit fails
as TIMED_OUT; a worker that dies fails the running cell as DIED; a MemoryError as MEMORY. The worker
is then restarted and the answer cells that ran before are replayed (the culprit skipped), so the
following cells are still graded. The notebook's status is the worst thing that happened.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Iterable

from lablib import cells

from . import notebook, paths
from .in_kernel import run_in_kernel
from .notebook import Role
from .plan import Plan, Step, answer_text, parse, plan_notebook, python_source, sha256, student_answers, \
    top_level_names, worker_notebook
from .results import NotebookResult, Status
from .sandbox import Sandbox, WorkerLost

__all__ = ["GRADE_CELL_TIMEOUT_S", "GRADE_NOTEBOOK_TIMEOUT_S", "GRADE_MEMORY_MB", "grade_notebook",
           "compile_test", "failure_text"]

#: Default wall-clock limit of one cell (answer or test), in seconds.
GRADE_CELL_TIMEOUT_S = 30.0
#: Default wall-clock limit of one notebook in all, in seconds.
GRADE_NOTEBOOK_TIMEOUT_S = 300.0
#: Default address-space limit of the worker that runs a submission's code, in MiB.
GRADE_MEMORY_MB = 3072

#: How a cell's error text starts when it ran out of memory (MemoryError or NumPy's subclass of it).
_MEMORY_ERROR = re.compile(r"^[\w.]*MemoryError\b")
_HIDDEN_BLOCK = re.compile(rf"^[ \t]*{re.escape(cells.HIDDEN_BEGIN)}.*?^[ \t]*{re.escape(cells.HIDDEN_END)}",
                           re.S | re.M)


class _NotebookTimeout(Exception):
    pass


class _Grader:
    """Grades one notebook: holds the sandbox, the trusted namespace and the record."""

    def __init__(self, plan: Plan, answers: dict[str, str], sandbox: Sandbox, result: NotebookResult,
                 cell_timeout: float, notebook_timeout: float):
        self.plan, self.answers, self.sb, self.result = plan, answers, sandbox, result
        self.cell_timeout, self.notebook_timeout = cell_timeout, notebook_timeout
        self.deadline = time.monotonic() + notebook_timeout
        self.tests = {t.grade_id: t for t in result.tests}
        self.history: list[tuple[str, str]] = []  # worker cells to replay after a restart
        self.trusted: dict[str, Any] = {"__name__": "__main__", "display": lambda *a, **k: None,
                                        "__lablib_define__": self._define}
        self.setup_classes: list[str] = []
        self.events: list[Status] = []  # what went wrong (the worst one is the notebook's status)
        self.notebook_timed_out = False

    # ---- helpers
    def _arm(self) -> None:
        now = time.monotonic()
        if now >= self.deadline:
            raise _NotebookTimeout()
        self.sb.deadline = now + min(self.cell_timeout, self.deadline - now)

    def _restart(self) -> None:
        """Start a fresh worker and replay the worker cells that ran so far."""
        self.sb.start()
        for source, name in self.history:
            self._arm()
            self.sb.exec_cell(source, name)

    def _run_worker_cell(self, source: str, name: str) -> None:
        try:
            self._arm()
            error = self.sb.exec_cell(source, name)
        except WorkerLost as lost:
            self.events.append(Status(lost.status))
            self.result.cell_errors[name] = f"{lost.status}: {lost.message}"
            self._restart()
            return
        self.history.append((source, name))
        if error:
            self.result.cell_errors[name] = error
            if _MEMORY_ERROR.match(error):
                self.events.append(Status.MEMORY)

    def _define(self, source: str, name: str) -> Any:
        """A class a test cell defines: defined in the worker; the test gets a proxy."""
        error = self.sb.exec_cell(source, name)
        if error:
            raise RuntimeError(f"the grader could not define {name}: {error}")
        self.history.append((source, name))
        return self.sb.names([name])[name]

    def _bind_worker_names(self) -> None:
        found = self.sb.names(list(self.plan.worker_names) + self.setup_classes)
        for name in self.plan.worker_names:
            if name in found:
                self.trusted[name] = found[name]
            else:
                self.trusted.pop(name, None)
        for name in self.setup_classes:
            if name in found:
                self.trusted[name] = found[name]

    # ---- steps
    def run(self) -> None:
        steps = self.plan.steps
        for position, step in enumerate(steps):
            try:
                if step.role is Role.SETUP:
                    exec(compile(python_source(step.source), "<setup>", "exec"), self.trusted)  # noqa: S102 - the source's
                    self.setup_classes = sorted(n for n in top_level_names(parse(step.source))
                                                if isinstance(self.trusted.get(n), type))
                    self._run_worker_cell(step.source, step.grade_id)
                elif step.role is Role.ANSWER:
                    self._run_worker_cell(answer_text(step, self.answers), step.grade_id)
                elif step.role is Role.LOCKED:
                    self._run_worker_cell(step.source, step.grade_id)
                else:
                    self._run_test(step)
            except _NotebookTimeout:
                self.events.append(Status.TIMED_OUT)
                self.notebook_timed_out = True
                self.result.message = (f"stopped after the notebook's limit of {self.notebook_timeout:g} s; the "
                                       "cells after that were not graded")
                for test in self.result.tests:
                    if test.status is Status.NOT_RUN:
                        test.error = "not graded: the notebook's time limit was reached"
                return
            except WorkerLost as lost:  # the worker could not be restarted / replayed
                self.events.append(Status(lost.status))
                self.result.message = f"grading stopped: {lost.message}"
                for later in steps[position:]:
                    if later.role is Role.TEST and self.tests[later.grade_id].status is Status.NOT_RUN:
                        self.tests[later.grade_id].error = "not graded: " + lost.message
                return

    def _run_test(self, step: Step) -> None:
        test = self.tests[step.grade_id]
        try:
            self._arm()
            self._bind_worker_names()
            code = compile_test(step.source, step.grade_id)
            with _temp_dirs_for(self.sb):
                exec(code, self.trusted)  # noqa: S102 - the instructor's test, on the trusted side
            test.status, test.error = Status.PASSED, None
        except _NotebookTimeout:
            raise
        except WorkerLost as lost:
            self.events.append(Status(lost.status))
            test.status, test.error = Status(lost.status), lost.message
            self._restart()
        except BaseException as exc:  # noqa: BLE001 - a failing test is a result
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            test.status = Status.FAILED
            test.error, test.hidden = failure_text(exc, step)


@contextlib.contextmanager
def _temp_dirs_for(sb: Sandbox):
    """While a test runs, `tempfile.mkdtemp()` makes folders the worker can write to (a test that
    hands a path to the student's save_model)."""
    original = tempfile.mkdtemp

    def mkdtemp(suffix: Any = None, prefix: Any = None, dir: Any = None) -> str:  # noqa: A002
        if suffix is None and prefix is None and dir is None:
            return sb.make_temp_dir()
        return original(suffix, prefix, dir)

    tempfile.mkdtemp = mkdtemp
    try:
        yield
    finally:
        tempfile.mkdtemp = original


def compile_test(source: str, gid: str) -> Any:
    """Compile a test cell; its top-level class statements become `Name = __lablib_define__(src, name)`."""
    text = python_source(source)
    tree = ast.parse(text, filename=f"<test {gid}>")
    body = []
    lines = text.splitlines()
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            segment = textwrap.dedent("\n".join(lines[start - 1:node.end_lineno]))
            call = ast.Assign(
                targets=[ast.Name(node.name, ast.Store())],
                value=ast.Call(ast.Name("__lablib_define__", ast.Load()),
                               [ast.Constant(segment), ast.Constant(node.name)], []))
            body.append(ast.copy_location(call, node))
        else:
            body.append(node)
    tree.body = body
    ast.fix_missing_locations(tree)
    return compile(tree, f"<test {gid}>", "exec")


def _hidden_lines(source: str) -> set[int]:
    text = python_source(source)
    out: set[int] = set()
    for match in _HIDDEN_BLOCK.finditer(text):
        first = text.count("\n", 0, match.start()) + 1
        last = text.count("\n", 0, match.end()) + 1
        out.update(range(first, last + 1))
    return out


def failure_text(exc: BaseException, step: Step) -> tuple[str, bool]:
    """The message of a failed test (a check's diagnosis), and whether it failed in the hidden tests.
    Never quotes a hidden line; quotes a visible line only for an assert without a message."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == f"<test {step.grade_id}>":
            line = tb.tb_lineno
        tb = tb.tb_next
    hidden = line is not None and line in _hidden_lines(step.source)
    remote = getattr(exc, "remote_type", None)
    name = remote or type(exc).__name__
    try:
        message = str(exc).strip()
    except Exception:  # noqa: BLE001
        message = ""
    if isinstance(exc, AssertionError) and not remote:
        if message:
            return message, hidden
        if hidden:
            return "a hidden test failed (an assert without a message)", True
        if line is not None:
            text = python_source(step.source).splitlines()[line - 1].strip()
            return f"this check failed: {text}", False
        return "a check failed", hidden
    where = "your code raised " if remote else ""
    text = f"{where}{name}: {message}" if message else f"{where}{name}"
    if name == "NotImplementedError":
        text += " (not written yet: the answer cell still raises NotImplementedError)"
    return text, hidden


def grade_notebook(source_path: str | os.PathLike, submission: str | os.PathLike, student: str = "", *,
                   sources: Iterable[str | os.PathLike] | None = None,
                   cell_timeout: float = GRADE_CELL_TIMEOUT_S,
                   notebook_timeout: float = GRADE_NOTEBOOK_TIMEOUT_S,
                   memory_mb: int = GRADE_MEMORY_MB,
                   hide: Iterable[str | os.PathLike] = (), in_kernel: bool = True) -> NotebookResult:
    """Grade one notebook of one submission (see the module docstring).

    Inputs:
        source_path: the instructor's notebook (solutions, hidden tests).
        submission: the folder holding the student's notebooks (all of them: later notebooks
            reuse earlier ones).
        sources: every source notebook of the lab (default: the folder of `source_path`), to give
            the worker restored copies of the student's other notebooks.
        hide: folders the worker must not see (the repository and build folder by default).
        in_kernel: also run the in-kernel comparison (`in_kernel.py`); never changes the score.
    """
    start = time.monotonic()
    source_path, submission = Path(source_path), Path(submission)
    source_nb = cells.load(source_path)
    plan = plan_notebook(source_nb)
    result = NotebookResult(source_path.name, Status.GRADED, tests=plan.fresh_results(), student=student,
                            manual_points=plan.manual_points, source_sha256=sha256(source_path.read_bytes()))
    mine = submission / source_path.name
    if not mine.is_file():
        result.status, result.message = Status.MISSING, f"no {source_path.name} in the submission"
        return result
    result.submission_sha256 = sha256(mine.read_bytes())
    student_nb, problem = notebook.load(mine)
    if student_nb is None:
        result.status, result.message = Status.MALFORMED, f"{source_path.name}: {problem}"
        for t in result.tests:
            t.error = "not graded: the notebook could not be read"
        return result

    files: dict[str, bytes] = {}
    for other in sorted(Path(p) for p in (sources or paths.source_notebooks_in(source_path.parent))):
        theirs = submission / other.name
        if not theirs.is_file():
            continue
        their_nb = student_nb if other.name == source_path.name else notebook.load(theirs)[0]
        files[other.name] = (worker_notebook(cells.load(other), their_nb) if their_nb is not None
                             else theirs.read_bytes())
    hidden = [Path(h) for h in hide] or [paths.repo_root(), paths.build_root(), source_path.parent]
    answers = student_answers(student_nb, source_nb)
    recovered = sorted(set(answers) - set(student_answers(student_nb)))
    sandbox = Sandbox(files, memory_mb=memory_mb, hide=hidden)
    grader = _Grader(plan, answers, sandbox, result, cell_timeout, notebook_timeout)
    try:
        try:
            sandbox.start()
        except WorkerLost as lost:
            result.status = Status(lost.status)
            result.message = f"the submission could not be loaded: {lost.message}"
            return result
        result.isolation = sandbox.isolation
        grader.run()
    finally:
        sandbox.close()
    if grader.events:
        result.status = Status.worst(grader.events)
        if not result.message:
            counts = {s: grader.events.count(s) for s in dict.fromkeys(grader.events)}
            result.message = "; ".join(f"{s} ({n} cell{'s' if n > 1 else ''})" for s, n in counts.items()) + \
                ": those cells scored 0, the others were graded"
    if recovered:  # graded, but a person should know why those cells were found without their grade_id
        note = (f"answer cell{'s' if len(recovered) > 1 else ''} {', '.join(recovered)} had lost the nbgrader "
                "metadata: graded the student's unmarked cell that defines the same names")
        result.message = "; ".join(m for m in (result.message, note) if m)
    if in_kernel and not grader.notebook_timed_out:
        run_in_kernel(plan, answers, lambda: Sandbox(files, memory_mb=memory_mb, hide=hidden), result,
                      cell_timeout, notebook_timeout)
    elif in_kernel:
        result.in_kernel_message = "not run: the authoritative run reached the notebook's time limit"
    result.seconds = round(time.monotonic() - start, 2)
    return result
