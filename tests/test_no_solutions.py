"""lablib is shipped to students: it must contain no implementation a student is asked to write."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import lablib
from conftest import SOURCE_NOTEBOOKS, solution_lines
from lablib import cells

LABLIB = Path(lablib.__file__).resolve().parent


def answer_cells():
    for path in SOURCE_NOTEBOOKS:
        for cell in cells.load(path).cells:
            if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source:
                yield path.stem, cells.grade_id(cell), cell.source


def student_names() -> set[str]:
    """Top-level classes and functions defined by the answer cells."""
    names = set()
    for _, _, source in answer_cells():
        tree = ast.parse(cells.blank_solutions(source))
        names |= {node.name for node in tree.body if isinstance(node, (ast.ClassDef, ast.FunctionDef))}
    return names


def lablib_sources() -> dict[Path, str]:
    return {p: p.read_text() for p in LABLIB.rglob("*") if p.is_file() and p.suffix in {".py", ".json", ".txt", ".md"}}


def test_the_notebooks_have_solutions_to_protect():
    assert len(solution_lines()) > 20
    assert {"Linear", "ReLU", "Sigmoid", "Tanh", "GELU", "softmax", "SoftmaxCrossEntropy"} <= student_names()


MARKER_LINE = re.compile(r"^\s*### (BEGIN|END) (SOLUTION|HIDDEN TESTS)", re.M)


def test_no_solution_or_hidden_test_blocks_in_lablib():
    assert not [p for p, text in lablib_sources().items() if MARKER_LINE.search(text)]


def test_no_solution_line_appears_in_lablib():
    lines = solution_lines()
    leaks = [f"{path.name}: {line}" for path, text in lablib_sources().items() for line in lines if line in text]
    assert not leaks, "solution code found in lablib:\n" + "\n".join(leaks)


def test_lablib_defines_nothing_a_student_writes():
    names = student_names()
    found = []
    for info in pkgutil.walk_packages(lablib.__path__, "lablib."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [f"{info.name}.{n}" for n in names if n in vars(module)]
    found += [f"lablib.{n}" for n in names if n in vars(lablib)]
    assert not found, f"lablib defines names the students implement: {found}"


@pytest.mark.parametrize("leak", ["return x @ self.W.data + self.b.data", "self.W.grad = self.x.T @ dout"])
def test_the_leak_check_would_fire(tmp_path, leak):
    """The line check is not vacuous: a copied solution line is among the lines it looks for."""
    assert leak in solution_lines()
