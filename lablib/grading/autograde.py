"""`lablib grade`: autograde every collected submission, with scores the submission cannot change.

What runs where (per notebook of a submission; the source notebook is the instructor's, with hidden
tests; `sandbox/` describes the worker's isolation):

- **Answer cells** (nbgrader `solution` code cells): the student's text, found by grade_id in their
  notebook (a missing or non-code one counts as the blank release version), runs in the *worker*.
- **Test cells** (autograded `grade` code cells): always the source's text, hidden tests included,
  run in the *trusted grader process*: whatever the student did to the test cells (edited, retyped,
  deleted) is irrelevant, as with nbgrader's restored cells. The test code sees the student's
  classes and functions as proxies (`sandbox.Remote`) and every value as plain data, so all
  comparisons run on the grader's own NumPy and lablib. Each test cell's pass/fail and message are
  recorded here; the worker never sees a test cell.
- **`setup`** (the imports): runs on both sides. On the trusted side its *classes* (`Module`,
  `Parameter`, ...) are then replaced by the worker's, because the objects students' code creates
  and receives live in the worker; its functions (`check_layer`, ...) and modules (`np`) stay the
  grader's own.
- **Other locked code cells** (demos, data loading, training, plots) do not run, except those a
  later answer or test cell needs: a locked cell runs, in the worker, when it defines a name that a
  needed cell reads without defining it (`reuse`, which loads the student's 01/02 through
  `use_notebook` in the worker's folder, and `doubles`, the stand-in modules of notebook 04).
  They run in the worker because their objects are handed to student code, which calls their
  methods and changes their parameters in place.
- **Classes a test cell defines** at its top level (stand-ins such as `AddOne`, `PlainStep`,
  `Flip`) are defined in the worker for the same reason, and bound to a proxy in the test's
  namespace. (Only put classes in test cells that may be shown to a student's code.)
- **Cells the student added** (no grade_id) are not run, as `use_notebook` does not run them.

The trusted namespace receives from the worker only the names that the *source* notebook's answer
cells and worker-run locked cells define (`Linear`, `LAYER_TYPES`, ...), never a name the grader
defines itself (`np`, `check_values`, builtins): a submission cannot replace the checks.

Limits: every cell (answer or test) has a wall-clock limit (`cell_timeout`), the notebook one in
all (`notebook_timeout`), the worker an address-space limit (`memory_mb`). A cell that runs past its
limit fails as "timed out"; a worker that dies (`os._exit`, a crash) fails the running cell as
"kernel died"; a MemoryError fails it as "killed for memory". The worker is then restarted and the
answer cells that ran before are replayed (the culprit is skipped), so the following cells are still
graded. The notebook's status is the worst thing that happened (`STATUSES`); its score counts every
test cell that passed.

**The in-kernel comparison.** After the authoritative run, the same plan runs again as a plain
nbgrader-style autograde would: every planned cell (setup, the student's answers, the needed locked
cells, and the *source's* test cells with their hidden tests) in order, in one namespace, in a fresh
sandboxed worker (`Sandbox.exec_cell`, i.e. `lablib.cells.run_cells` in the worker), a cell that
raises not stopping the rest. Each test cell passes there when it ran without raising. That score
(`in_kernel_score`, per cell `in_kernel_tests`) is what the submission would have got if its code
and the tests shared a kernel; where it differs from the authoritative one (`disagreements`), the
submission changed what the tests saw (tampering, when the in-kernel run passes more) and
`lablib export` flags it for review (`in_kernel_review`). The in-kernel run never changes the
authoritative score or status: it runs after it, in another process, and only pass/fail per test
cell comes back (no error text: its test cells hold hidden tests, and the student never sees any
of it). It stops at the first cell that times out or kills its worker (`in_kernel_status` says so;
later cells are not compared), and is skipped when the authoritative run reached the notebook's
limit.

Results: one JSON file per student and notebook (`paths.results_root`), written atomically when
that notebook is done; a re-run skips those whose submission and source are unchanged (`force`
regrades). One grading process per core, each with one worker, one BLAS thread each.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import hashlib
import json
import os
import re
import sys
import tempfile
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

# jsonschema (imported by nbformat) loads the optional rfc3987_syntax, whose grammars take seconds to
# build; notebook validation does not need it. Every grading process and worker imports nbformat.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

import nbformat  # noqa: E402

from lablib import cells  # noqa: E402

from . import paths  # noqa: E402
from .check import _BLAS_THREAD_VARS, _outline, _read
from .sandbox import Sandbox, WorkerLost, preflight  # noqa: E402

__all__ = [
    "GRADE_CELL_TIMEOUT_S", "GRADE_NOTEBOOK_TIMEOUT_S", "GRADE_MEMORY_MB", "STATUSES",
    "GRADED", "TIMED_OUT", "MEMORY", "DIED", "MALFORMED", "MISSING",
    "TestGrade", "NotebookGrade", "GradeRun", "plan_notebook", "grade_notebook", "grade", "load_results",
    "IN_KERNEL_COMPLETE", "in_kernel_review",
]

#: Default wall-clock limit of one cell (answer or test), in seconds.
GRADE_CELL_TIMEOUT_S = 30.0
#: Default wall-clock limit of one notebook in all, in seconds.
GRADE_NOTEBOOK_TIMEOUT_S = 300.0
#: Default address-space limit of the worker that runs a submission's code, in MiB.
GRADE_MEMORY_MB = 3072

GRADED, TIMED_OUT, MEMORY, DIED = "graded", "timed out", "killed for memory", "kernel died"
MALFORMED, MISSING = "malformed notebook", "missing"
#: Notebook statuses, from best to worst; a notebook's status is the worst thing that happened.
STATUSES = (GRADED, DIED, MEMORY, TIMED_OUT, MALFORMED, MISSING)

#: Version of the result files; results of another version are regraded.
RESULT_VERSION = 2
#: `NotebookGrade.in_kernel_status` of an in-kernel run that ran every planned cell.
IN_KERNEL_COMPLETE = "complete"
#: How a cell's error text starts when it ran out of memory (MemoryError or NumPy's subclass of it).
_MEMORY_ERROR = re.compile(r"^[\w.]*MemoryError\b")
_HIDDEN_BLOCK = re.compile(rf"^[ \t]*{re.escape(cells.HIDDEN_BEGIN)}.*?^[ \t]*{re.escape(cells.HIDDEN_END)}",
                           re.S | re.M)


@dataclass
class TestGrade:
    """One autograded test cell. status: passed, failed, timed out, killed for memory, kernel died,
    not run. error: the failure's message (a lablib check's diagnosis); never test source."""

    grade_id: str
    part: str
    description: str
    points: float
    status: str = "not run"
    error: str | None = None
    hidden: bool = False

    @property
    def earned(self) -> float:
        return self.points if self.status == "passed" else 0.0


@dataclass
class NotebookGrade:
    """The grade of one notebook of one student."""

    student: str
    notebook: str
    status: str
    message: str = ""
    tests: list[TestGrade] = field(default_factory=list)
    cell_errors: dict[str, str] = field(default_factory=dict)
    manual_points: float = 0.0
    seconds: float = 0.0
    submission_sha256: str = ""
    source_sha256: str = ""
    isolation: str = ""
    # the in-kernel comparison (module docstring); never shown to the student
    in_kernel_score: float | None = None  # None: not run (missing, malformed, or skipped)
    in_kernel_status: str = ""  # IN_KERNEL_COMPLETE, a worker-lost status, "failed" (the run broke), "" (not run)
    in_kernel_message: str = ""
    in_kernel_tests: dict[str, str] = field(default_factory=dict)  # grade_id -> passed/failed/not run/...
    disagreements: list[str] = field(default_factory=list)  # test cells where the two runs disagree
    in_kernel_seconds: float = 0.0
    version: int = RESULT_VERSION

    @property
    def earned(self) -> float:
        return sum(t.earned for t in self.tests)

    @property
    def in_kernel_higher(self) -> list[str]:
        """Disagreeing cells that passed in-kernel and not in the authoritative run (tampering)."""
        status = {t.grade_id: t.status for t in self.tests}
        return [g for g in self.disagreements
                if self.in_kernel_tests.get(g) == "passed" and status.get(g) != "passed"]

    @property
    def in_kernel_lower(self) -> list[str]:
        """Disagreeing cells that passed in the authoritative run and failed in-kernel."""
        higher = set(self.in_kernel_higher)
        return [g for g in self.disagreements if g not in higher]

    @property
    def possible(self) -> float:
        return sum(t.points for t in self.tests)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "earned": self.earned, "possible": self.possible}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "NotebookGrade":
        data = {k: v for k, v in data.items() if k not in ("earned", "possible")}
        data["tests"] = [TestGrade(**t) for t in data.get("tests", [])]
        return cls(**data)


# --------------------------------------------------------------------------------------------------
# which cells run where


@dataclass
class Step:
    kind: str  # "setup", "answer", "locked" (worker), "test" (trusted)
    grade_id: str
    source: str


@dataclass
class Plan:
    steps: list[Step]
    worker_names: list[str]  # names the trusted side takes from the worker
    tests: list[TestGrade]
    manual_points: float


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(_python(source))
    except SyntaxError:
        return None


def _python(source: str) -> str:
    """Drop IPython-only lines (magics, shell escapes), as lablib.cells does."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


def _top_level_names(tree: ast.Module | None) -> set[str]:
    """Names a cell binds in the notebook's namespace (not inside functions or classes)."""
    out: set[str] = set()
    if tree is None:
        return out

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.add(child.name)
                continue
            if isinstance(child, ast.Lambda):
                continue
            if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Store):
                out.add(child.id)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                for alias in child.names:
                    out.add((alias.asname or alias.name).split(".")[0])
            visit(child)

    visit(tree)
    return out


def _free_names(tree: ast.Module | None) -> set[str]:
    """Names a cell reads that it does not bind anywhere itself (approximately: its inputs)."""
    if tree is None:
        return set()
    loads, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return loads - bound


def plan_notebook(source_nb: Any) -> Plan:
    """Decide which of the source notebook's code cells run, and where (see the module docstring)."""
    planned, manual = _outline(source_nb)
    tests = {index: t for index, t in planned}
    steps: list[tuple[int, Step]] = []
    for index, cell in enumerate(source_nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        gid = cells.grade_id(cell) or f"cell-{index}"
        if gid == "setup":
            steps.append((index, Step("setup", gid, cell.source)))
        elif meta.get("solution"):
            steps.append((index, Step("answer", gid, cell.source)))
        elif index in tests:
            steps.append((index, Step("test", tests[index].grade_id, cell.source)))
        else:
            steps.append((index, Step("locked", gid, cell.source)))
    # a locked cell runs when it defines a name read by a later cell that runs (answers, tests,
    # and locked cells already needed), and not defined by setup
    trees = {id(step): _parse(step.source) for _, step in steps}
    setup_names = set().union(*(_top_level_names(trees[id(s)]) for _, s in steps if s.kind == "setup"))
    needed_names: set[str] = set()
    keep: list[Step] = []
    for _, step in reversed(steps):
        tree = trees[id(step)]
        if step.kind == "locked":
            if not (_top_level_names(tree) & needed_names):
                continue
            needed_names -= _top_level_names(tree)
        keep.append(step)
        needed_names |= _free_names(tree) - setup_names
    keep.reverse()
    worker_names = set()
    for step in keep:
        if step.kind in ("answer", "locked"):
            worker_names |= _top_level_names(trees[id(step)])
    return Plan(keep, sorted(worker_names), [t for _, t in planned], manual)


def _student_answers(student_nb: Any) -> dict[str, str]:
    answers: dict[str, str] = {}
    for cell in student_nb.cells:
        gid = cells.grade_id(cell)
        if gid and cell.cell_type == "code" and gid not in answers:
            answers[gid] = cell.source if isinstance(cell.source, str) else ""
    return answers


def _answer_text(step: Step, answers: dict[str, str]) -> str:
    """The student's answer for an answer cell, or the blank release version when it is missing."""
    return answers.get(step.grade_id, cells.blank_solutions(step.source))


def worker_notebook(source_nb: Any, student_nb: Any) -> bytes:
    """The notebook as the worker may see it: source cells, the student's answers, no test cells."""
    answers = _student_answers(student_nb)
    nb = copy.deepcopy(source_nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            cell.source = answers.get(cells.grade_id(cell), cells.blank_solutions(cell.source))
        elif meta.get("grade"):
            cell.source = ""
    return nbformat.writes(nb).encode()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------
# one notebook


class _Grader:
    """Grades one notebook: holds the sandbox, the trusted namespace and the record."""

    def __init__(self, plan: Plan, answers: dict[str, str], sandbox: Sandbox, result: NotebookGrade,
                 cell_timeout: float, deadline: float):
        self.plan, self.answers, self.sb, self.result = plan, answers, sandbox, result
        self.cell_timeout, self.deadline = cell_timeout, deadline
        self.tests = {t.grade_id: t for t in result.tests}
        self.history: list[tuple[str, str]] = []  # worker cells to replay after a restart
        self.trusted: dict[str, Any] = {"__name__": "__main__", "display": lambda *a, **k: None,
                                        "__lablib_define__": self._define}
        self.setup_classes: list[str] = []
        self.events: list[str] = []  # statuses that happened (worst one wins)

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
            self.events.append(lost.status)
            self.result.cell_errors[name] = f"{lost.status}: {lost.message}"
            self._restart()
            return
        self.history.append((source, name))
        if error:
            self.result.cell_errors[name] = error
            if _MEMORY_ERROR.match(error):
                self.events.append(MEMORY)

    def _define(self, source: str, name: str) -> Any:
        """A class a test cell defines: defined in the worker; the test gets a proxy."""
        error = self.sb.exec_cell(source, name)
        if error:
            raise RuntimeError(f"the grader could not define {name}: {error}")
        self.history.append((source, name))
        return self.sb.names([name])[name]

    def _bind_worker_names(self) -> None:
        found = self.sb.names(self.plan.worker_names + self.setup_classes)
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
                if step.kind == "setup":
                    exec(compile(_python(step.source), "<setup>", "exec"), self.trusted)  # noqa: S102 - the source's
                    self.setup_classes = sorted(n for n in _top_level_names(_parse(step.source))
                                                if isinstance(self.trusted.get(n), type))
                    self._run_worker_cell(step.source, step.grade_id)
                elif step.kind == "answer":
                    self._run_worker_cell(_answer_text(step, self.answers), step.grade_id)
                elif step.kind == "locked":
                    self._run_worker_cell(step.source, step.grade_id)
                else:
                    self._run_test(step)
            except _NotebookTimeout:
                self.events.append(TIMED_OUT)
                self.notebook_timed_out = True
                self.result.message = (f"stopped after the notebook's limit of {self.result_limit:g} s; the "
                                       "cells after that were not graded")
                for test in self.result.tests:
                    if test.status == "not run":
                        test.error = "not graded: the notebook's time limit was reached"
                return
            except WorkerLost as lost:  # the worker could not be restarted / replayed
                self.events.append(lost.status)
                self.result.message = f"grading stopped: {lost.message}"
                for later in steps[position:]:
                    if later.kind == "test" and self.tests[later.grade_id].status == "not run":
                        self.tests[later.grade_id].error = "not graded: " + lost.message
                return

    result_limit = 0.0
    notebook_timed_out = False

    def _run_test(self, step: Step) -> None:
        test = self.tests[step.grade_id]
        try:
            self._arm()
            self._bind_worker_names()
            code = _compile_test(step.source, step.grade_id)
            with _temp_dirs_for(self.sb):
                exec(code, self.trusted)  # noqa: S102 - the instructor's test, on the trusted side
            test.status, test.error = "passed", None
        except _NotebookTimeout:
            raise
        except WorkerLost as lost:
            self.events.append(lost.status)
            test.status, test.error = lost.status, lost.message
            self._restart()
        except BaseException as exc:  # noqa: BLE001 - a failing test is a result
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            test.status = "failed"
            test.error, test.hidden = _failure_text(exc, step)


class _NotebookTimeout(Exception):
    pass


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


def _compile_test(source: str, gid: str) -> Any:
    """Compile a test cell; its top-level class statements become `Name = __lablib_define__(src, name)`."""
    text = _python(source)
    tree = ast.parse(text, filename=f"<test {gid}>")
    body = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            segment = ast.get_source_segment(text, node, padded=True) or ""
            start = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            lines = text.splitlines()[start - 1:node.end_lineno]
            segment = "\n".join(lines)
            call = ast.Assign(
                targets=[ast.Name(node.name, ast.Store())],
                value=ast.Call(ast.Name("__lablib_define__", ast.Load()),
                               [ast.Constant(_dedent(segment)), ast.Constant(node.name)], []))
            body.append(ast.copy_location(call, node))
        else:
            body.append(node)
    tree.body = body
    ast.fix_missing_locations(tree)
    return compile(tree, f"<test {gid}>", "exec")


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text)


def _hidden_lines(source: str) -> set[int]:
    text = _python(source)
    out: set[int] = set()
    for match in _HIDDEN_BLOCK.finditer(text):
        first = text.count("\n", 0, match.start()) + 1
        last = text.count("\n", 0, match.end()) + 1
        out.update(range(first, last + 1))
    return out


def _failure_text(exc: BaseException, step: Step) -> tuple[str, bool]:
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
            text = _python(step.source).splitlines()[line - 1].strip()
            return f"this check failed: {text}", False
        return "a check failed", hidden
    where = "your code raised " if remote else ""
    text = f"{where}{name}: {message}" if message else f"{where}{name}"
    if name == "NotImplementedError":
        text += " (not written yet: the answer cell still raises NotImplementedError)"
    return text, hidden


# --------------------------------------------------------------------------------------------------
# the in-kernel comparison


def _run_in_kernel(plan: Plan, answers: dict[str, str], make_sandbox: Callable[[], Sandbox],
                   result: NotebookGrade, cell_timeout: float, notebook_timeout: float) -> None:
    """Run the plan as one plain kernel would (module docstring) and record it in `result`'s
    in_kernel_* fields and `disagreements`. Touches nothing else of `result`."""
    start = time.monotonic()
    deadline = start + notebook_timeout
    outcome = {t.grade_id: "not run" for t in result.tests}
    status, message = IN_KERNEL_COMPLETE, ""
    sandbox = None
    try:
        sandbox = make_sandbox()
        sandbox.start()
        for step in plan.steps:
            source = _answer_text(step, answers) if step.kind == "answer" else step.source
            now = time.monotonic()
            if now >= deadline:
                status, message = TIMED_OUT, f"stopped at cell {step.grade_id}: the notebook's limit was reached"
                break
            sandbox.deadline = now + min(cell_timeout, deadline - now)
            try:
                error = sandbox.exec_cell(source, step.grade_id)
            except WorkerLost as lost:
                if step.kind == "test":
                    outcome[step.grade_id] = lost.status
                status, message = lost.status, f"stopped at cell {step.grade_id}: {lost.message}"
                break
            except Exception as exc:  # noqa: BLE001 - the worker could not even report the cell
                error = f"{type(exc).__name__}: {exc}"
            if step.kind == "test":
                outcome[step.grade_id] = "passed" if error is None else "failed"
    except WorkerLost as lost:  # the worker did not start
        status, message = lost.status, f"the in-kernel run could not start: {lost.message}"
    except Exception as exc:  # noqa: BLE001 - a failure of the comparison never fails the grading
        status, message = "failed", f"the in-kernel run failed: {type(exc).__name__}: {exc}"
    finally:
        if sandbox is not None:
            sandbox.close()
    authoritative = {t.grade_id: t.status for t in result.tests}
    result.in_kernel_tests = outcome
    result.in_kernel_status, result.in_kernel_message = status, message[:2000]
    result.in_kernel_score = sum(t.points for t in result.tests if outcome[t.grade_id] == "passed")
    result.disagreements = [gid for gid, ran in outcome.items()
                            if ran in ("passed", "failed") and (ran == "passed") != (authoritative[gid] == "passed")]
    result.in_kernel_seconds = round(time.monotonic() - start, 2)


def in_kernel_review(grade: NotebookGrade) -> str:
    """Why a person should look at this notebook given its in-kernel comparison ("" when nothing).

    e.g. "in-kernel 12/12 vs authoritative 8/12 in 01_layers: tampering suspected, cells test_linear_dW, ..."
    """
    if grade.in_kernel_score is None or not grade.in_kernel_status:
        return ""
    stem = Path(grade.notebook).stem
    notes = []
    if grade.disagreements:
        head = (f"in-kernel {grade.in_kernel_score:g}/{grade.possible:g} vs authoritative "
                f"{grade.earned:g}/{grade.possible:g} in {stem}: ")
        higher, lower = grade.in_kernel_higher, grade.in_kernel_lower
        parts = []
        if higher:
            parts.append("tampering suspected, cells " + ", ".join(higher))
        if lower:
            parts.append(("and " if higher else "") + "failed in-kernel but passed authoritatively, cells "
                         + ", ".join(lower))
        notes.append(head + "; ".join(parts))
    if grade.in_kernel_status != IN_KERNEL_COMPLETE and grade.status == GRADED:
        notes.append(f"{stem} in-kernel run {grade.in_kernel_status} (the cells after it not compared): "
                     f"{grade.in_kernel_message.splitlines()[0] if grade.in_kernel_message else ''}".rstrip(": "))
    return "; ".join(notes)


def grade_notebook(source_path: str | os.PathLike, submission: str | os.PathLike, student: str = "", *,
                   sources: Iterable[str | os.PathLike] | None = None,
                   cell_timeout: float = GRADE_CELL_TIMEOUT_S,
                   notebook_timeout: float = GRADE_NOTEBOOK_TIMEOUT_S,
                   memory_mb: int = GRADE_MEMORY_MB,
                   hide: Iterable[str | os.PathLike] = (), in_kernel: bool = True) -> NotebookGrade:
    """Grade one notebook of one submission (see the module docstring).

    Inputs:
        source_path: the instructor's notebook (solutions, hidden tests).
        submission: the folder holding the student's notebooks (all of them: later notebooks
            reuse earlier ones).
        sources: every source notebook of the lab (default: the folder of `source_path`), to give
            the worker restored copies of the student's other notebooks.
        hide: folders the worker must not see (the repository and build folder by default).
        in_kernel: also run the in-kernel comparison (module docstring); never changes the score.
    """
    start = time.monotonic()
    source_path, submission = Path(source_path), Path(submission)
    source_nb = cells.load(source_path)
    plan = plan_notebook(source_nb)
    result = NotebookGrade(student, source_path.name, GRADED, tests=plan.tests,
                           manual_points=plan.manual_points,
                           source_sha256=_sha256(source_path.read_bytes()))
    mine = submission / source_path.name
    if not mine.is_file():
        result.status, result.message = MISSING, f"no {source_path.name} in the submission"
        return result
    result.submission_sha256 = _sha256(mine.read_bytes())
    student_nb, problem = _read(mine)
    if student_nb is None:
        result.status, result.message = MALFORMED, f"{source_path.name}: {problem}"
        for t in result.tests:
            t.error = "not graded: the notebook could not be read"
        return result

    files: dict[str, bytes] = {}
    for other in sorted(Path(p) for p in (sources or paths.source_notebooks_in(source_path.parent))):
        theirs = submission / other.name
        if not theirs.is_file():
            continue
        their_nb = student_nb if other.name == source_path.name else _read(theirs)[0]
        files[other.name] = (worker_notebook(cells.load(other), their_nb) if their_nb is not None
                             else theirs.read_bytes())
    hidden = [Path(h) for h in hide] or [paths.repo_root(), paths.build_root(), source_path.parent]
    answers = _student_answers(student_nb)
    sandbox = Sandbox(files, memory_mb=memory_mb, hide=hidden)
    grader = _Grader(plan, answers, sandbox, result, cell_timeout, start + notebook_timeout)
    grader.result_limit = notebook_timeout
    try:
        try:
            sandbox.start()
        except WorkerLost as lost:
            result.status, result.message = lost.status, f"the submission could not be loaded: {lost.message}"
            return result
        result.isolation = sandbox.isolation
        grader.run()
    finally:
        sandbox.close()
    if grader.events:
        result.status = max(grader.events, key=STATUSES.index)
        if not result.message:
            counts = {s: grader.events.count(s) for s in dict.fromkeys(grader.events)}
            result.message = "; ".join(f"{s} ({n} cell{'s' if n > 1 else ''})" for s, n in counts.items()) + \
                ": those cells scored 0, the others were graded"
    if in_kernel and not grader.notebook_timed_out:
        _run_in_kernel(plan, answers, lambda: Sandbox(files, memory_mb=memory_mb, hide=hidden), result,
                       cell_timeout, notebook_timeout)
    elif in_kernel:
        result.in_kernel_message = "not run: the authoritative run reached the notebook's time limit"
    result.seconds = round(time.monotonic() - start, 2)
    return result


# --------------------------------------------------------------------------------------------------
# many submissions


@dataclass
class GradeRun:
    """What `grade` did: the results (graded now or earlier), how many were skipped, and how long."""

    results: list[NotebookGrade]
    graded: int
    skipped: int
    seconds: float
    jobs: int

    def summary(self) -> str:
        students = sorted({r.student for r in self.results})
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: STATUSES.index(kv[0])))
        per = self.seconds / max(1, len({(r.student) for r in self.results if r.seconds}))
        lines = [f"Graded {self.graded} notebook(s) in {self.seconds:.1f} s with {self.jobs} process(es); "
                 f"{self.skipped} unchanged since the last run were kept.",
                 f"{len(students)} student(s); notebooks: {statuses or 'none'}."]
        if self.graded:
            lines.append(f"About {per:.1f} s per submission (wall clock, all processes).")
        attention = [r for r in self.results if r.status not in (GRADED, MISSING)]
        for r in attention[:20]:
            lines.append(f"  {r.student}/{r.notebook}: {r.status}: {r.message.splitlines()[0] if r.message else ''}")
        if len(attention) > 20:
            lines.append(f"  ... and {len(attention) - 20} more (see lablib export)")
        flagged = [r for r in self.results if r.disagreements]
        if flagged:
            lines.append(f"{len(flagged)} notebook(s) where the in-kernel result disagrees with the authoritative "
                         "one (flagged for review in lablib export):")
            lines += [f"  {r.student}/{r.notebook}: {in_kernel_review(r)}" for r in flagged[:20]]
            if len(flagged) > 20:
                lines.append(f"  ... and {len(flagged) - 20} more")
        return "\n".join(lines)


def _grade_job(args: dict) -> dict:
    result = grade_notebook(args["source"], args["submission"], args["student"], sources=args["sources"],
                            cell_timeout=args["cell_timeout"], notebook_timeout=args["notebook_timeout"],
                            memory_mb=args["memory_mb"], hide=args["hide"], in_kernel=args.get("in_kernel", True))
    return result.to_dict()


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def result_path(build: Path, student: str, notebook: str) -> Path:
    return paths.results_root(build) / student / (Path(notebook).stem + ".json")


def load_results(build: str | os.PathLike | None = None) -> dict[str, dict[str, NotebookGrade]]:
    """{student: {notebook file name: NotebookGrade}} from the result files (unreadable ones skipped)."""
    root = paths.results_root(build)
    out: dict[str, dict[str, NotebookGrade]] = {}
    if not root.is_dir():
        return out
    for path in sorted(root.glob("*/*.json")):
        try:
            grade = NotebookGrade.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError):
            continue
        out.setdefault(path.parent.name, {})[grade.notebook] = grade
    return out


def _up_to_date(path: Path, submission_file: Path, source_sha: str) -> NotebookGrade | None:
    try:
        old = NotebookGrade.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, KeyError):
        return None
    now = _sha256(submission_file.read_bytes()) if submission_file.is_file() else ""
    if old.version == RESULT_VERSION and old.source_sha256 == source_sha and old.submission_sha256 == now:
        return old
    return None


def grade(build: str | os.PathLike | None = None, *, students: Iterable[str] | None = None,
          jobs: int | None = None, cell_timeout: float = GRADE_CELL_TIMEOUT_S,
          notebook_timeout: float = GRADE_NOTEBOOK_TIMEOUT_S, memory_mb: int = GRADE_MEMORY_MB,
          force: bool = False, progress: bool = True, sources: Iterable[str | os.PathLike] | None = None,
          on_result: Callable[[NotebookGrade], None] | None = None, in_kernel: bool = True) -> GradeRun:
    """Grade every collected submission (`<build>/course/submitted/<student>/backprop-lab/`).

    jobs: grading processes (default one per core). force: regrade results that are up to date.
    students: only these. sources: the source notebooks (default the repository's notebooks/).
    in_kernel: also run the in-kernel comparison of each notebook (flags disagreements for review).
    """
    start = time.monotonic()
    build = paths.build_root(build)
    sources = [Path(s).resolve() for s in (sources or paths.source_notebooks())]
    submitted = paths.submitted_root(build)
    names = sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []
    if students is not None:
        wanted = set(students)
        names = [n for n in names if n in wanted]
    source_sha = {s.name: _sha256(s.read_bytes()) for s in sources}
    hide = [str(paths.repo_root()), str(build)] + sorted({str(s.parent) for s in sources})
    results: list[NotebookGrade] = []
    todo: list[dict] = []
    for student in names:
        folder = submitted / student / paths.ASSIGNMENT_ID
        for source in sources:
            out = result_path(build, student, source.name)
            kept = None if force else _up_to_date(out, folder / source.name, source_sha[source.name])
            if kept is not None:
                results.append(kept)
                continue
            todo.append({"source": str(source), "submission": str(folder), "student": student,
                         "sources": [str(s) for s in sources], "cell_timeout": cell_timeout,
                         "notebook_timeout": notebook_timeout, "memory_mb": memory_mb, "hide": hide,
                         "in_kernel": in_kernel})
    skipped = len(results)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    if todo:  # isolation (issue 13): no sandbox can start -> SandboxUnavailable before the first submission
        preflight(memory_mb)

    def record(data: dict) -> None:
        grade = NotebookGrade.from_dict(data)
        _write_atomic(result_path(build, grade.student, grade.notebook), json.dumps(grade.to_dict(), indent=1))
        results.append(grade)
        if on_result:
            on_result(grade)

    bar = _progress(len(todo), progress)
    try:
        if jobs == 1 or len(todo) <= 1:
            for job in todo:
                record(_grade_job(job))
                bar.update(1)
        else:
            _run_pool(todo, jobs, record, bar)
    finally:
        bar.close()
    results.sort(key=lambda r: (r.student, r.notebook))
    return GradeRun(results, len(todo), skipped, round(time.monotonic() - start, 2), jobs)


def _run_pool(todo: list[dict], jobs: int, record: Callable[[dict], None], bar: Any) -> None:
    import multiprocessing

    saved = {var: os.environ.get(var) for var in _BLAS_THREAD_VARS}
    os.environ.update({var: "1" for var in _BLAS_THREAD_VARS})  # the grading processes: one BLAS thread
    try:
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value
    try:
        pending = {pool.submit(_grade_job, job): job for job in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    record(future.result())
                except Exception as err:  # noqa: BLE001 - a grading process that failed: say so, go on
                    record(_failed_job(job, err))
                bar.update(1)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _failed_job(job: dict, err: BaseException) -> dict:
    source = Path(job["source"])
    detail = "".join(traceback.format_exception_only(type(err), err)).strip()
    grade = NotebookGrade(job["student"], source.name, DIED,
                          message=f"the grading process failed ({detail}); regrade with lablib grade")
    return grade.to_dict()


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit="notebook", desc="grading", file=sys.stderr)
