"""Which cells of a notebook run when it is graded, and where (`grader.py` runs the plan).

- SETUP (the imports) runs on both sides: in the worker, and in the trusted grader.
- ANSWER cells (the student's code, by grade_id; a missing one counts as the blank release
  version) run in the worker.
- TEST cells always run the *source's* text, hidden tests included, in the trusted grader.
- LOCKED code cells (demos, data loading, training, plots) do not run, except those a later
  answer or test cell needs: a locked cell runs, in the worker, when it defines a name that a
  needed cell reads without defining it (`reuse`, `doubles` in notebook 04).
- Cells the student added (no grade_id) do not run, as `use_notebook` does not run them.

`Plan.worker_names` are the names the trusted side takes from the worker: those the source's
answer cells and worker-run locked cells define (`Linear`, `LAYER_TYPES`, ...), never a name the
grader defines itself (`np`, `check_values`, builtins), so a submission cannot replace the checks.
"""

from __future__ import annotations

import ast
import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from lablib import cells

from . import notebook
from .notebook import Role, TestCell
from .results import Status, TestResult

__all__ = ["Step", "Plan", "plan_notebook", "student_answers", "recovered_answers", "answer_text", "worker_notebook",
           "python_source", "top_level_names", "parse", "sha256"]


@dataclass(frozen=True)
class Step:
    """One planned cell: its role (SETUP, ANSWER, LOCKED: worker; TEST: trusted), grade_id, source."""

    role: Role
    grade_id: str
    source: str


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    worker_names: tuple[str, ...]  # names the trusted side takes from the worker
    tests: tuple[TestCell, ...]
    manual_points: float

    def fresh_results(self) -> list[TestResult]:
        """One not-run TestResult per test cell, in order."""
        return [TestResult(t.grade_id, t.part, t.description, t.points, Status.NOT_RUN) for t in self.tests]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


python_source = cells.python_source  # drop IPython-only lines (magics, shell escapes)


def parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(python_source(source))
    except SyntaxError:
        return None


def top_level_names(tree: ast.Module | None) -> set[str]:
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


_RUNS = (Role.SETUP, Role.ANSWER, Role.TEST, Role.LOCKED)


def plan_notebook(source_nb: Any) -> Plan:
    """Decide which of the source notebook's code cells run, and where (see the module docstring)."""
    shape = notebook.outline(source_nb)
    test_ids = {t.index: t.grade_id for t in shape.tests}
    steps: list[Step] = []
    for index, cell in enumerate(source_nb.cells):
        kind = notebook.role(cell)
        if kind in _RUNS:
            gid = test_ids.get(index) or notebook.grade_id(cell) or f"cell-{index}"
            steps.append(Step(kind, gid, cell.source))
    trees = {id(step): parse(step.source) for step in steps}
    setup_names = set().union(*(top_level_names(trees[id(s)]) for s in steps if s.role is Role.SETUP))
    needed_names: set[str] = set()
    keep: list[Step] = []
    for step in reversed(steps):
        tree = trees[id(step)]
        if step.role is Role.LOCKED:
            if not (top_level_names(tree) & needed_names):
                continue
            needed_names -= top_level_names(tree)
        keep.append(step)
        needed_names |= _free_names(tree) - setup_names
    keep.reverse()
    worker_names: set[str] = set()
    for step in keep:
        if step.role in (Role.ANSWER, Role.LOCKED):
            worker_names |= top_level_names(trees[id(step)])
    return Plan(tuple(keep), tuple(sorted(worker_names)), shape.tests, shape.manual_points)


def student_answers(student_nb: Any, source_nb: Any = None) -> dict[str, str]:
    """grade_id -> source of every code cell of the student's notebook that has one (first wins).
    With `source_nb`, answer cells that lost their nbgrader metadata are recovered too
    (`recovered_answers`)."""
    answers: dict[str, str] = {}
    for cell in student_nb.cells:
        gid = notebook.grade_id(cell)
        if gid and cell.cell_type == "code" and gid not in answers:
            answers[gid] = cell.source if isinstance(cell.source, str) else ""
    if source_nb is not None:
        answers.update(recovered_answers(source_nb, student_nb, answers))
    return answers


def _defined(tree: ast.Module | None) -> set[str]:
    """The classes and functions a cell defines at top level (else every name it binds)."""
    if tree is None:
        return set()
    defs = {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))}
    return defs or top_level_names(tree)


def recovered_answers(source_nb: Any, student_nb: Any, answers: dict[str, str]) -> dict[str, str]:
    """grade_id -> source for the source's answer cells missing from `answers` whose code the student
    has in an unmarked code cell: a cell deleted and retyped, or whose metadata was cleared, loses
    its grade_id, and nbgrader would still run it. The student's first unmarked cell that defines
    every class and function the source's answer cell defines is taken."""
    unmarked = [cell.source for cell in student_nb.cells
                if cell.cell_type == "code" and not notebook.grade_id(cell) and isinstance(cell.source, str)]
    found: dict[str, str] = {}
    for cell in source_nb.cells:
        gid = notebook.grade_id(cell)
        if notebook.role(cell) is not Role.ANSWER or not gid or gid in answers:
            continue
        wanted = _defined(parse(cell.source))
        match = next((src for src in unmarked if wanted and wanted <= top_level_names(parse(src))), None)
        if match is not None:
            found[gid] = match
    return found


def answer_text(step: Step, answers: dict[str, str]) -> str:
    """The student's answer for an answer cell, or the blank release version when it is missing."""
    return answers.get(step.grade_id, cells.blank_solutions(step.source))


def worker_notebook(source_nb: Any, student_nb: Any) -> bytes:
    """The notebook as the worker may see it: source cells, the student's answers, no test cells."""
    import nbformat

    answers = student_answers(student_nb, source_nb)
    nb = copy.deepcopy(source_nb)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        kind = notebook.role(cell)
        if kind is Role.ANSWER:
            cell.source = answers.get(notebook.grade_id(cell), cells.blank_solutions(cell.source))
        elif kind is Role.TEST:
            cell.source = ""
    return nbformat.writes(nb).encode()
