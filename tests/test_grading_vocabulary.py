"""The grading package's shared vocabulary: cell roles agree with nbgrader's, statuses round-trip,
the layering rules hold (who may import whom), and `lablib check` starts without nbformat."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import NOTEBOOKS
from lablib.grading import notebook, paths
from lablib.grading.notebook import Role
from lablib.grading.results import NotebookResult, Status, TestResult

GRADING = paths.repo_root() / "lablib" / "grading"


def imports_of(module: Path) -> set[str]:
    """The lablib.grading modules `module` imports (relative or absolute), by short name."""
    out = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            name = node.module or ""
            if node.level == 1:
                out |= {name.split(".")[0]} if name else {a.name for a in node.names}
            elif name.startswith("lablib.grading"):
                rest = name[len("lablib.grading"):].lstrip(".")
                out |= {rest.split(".")[0]} if rest else {a.name for a in node.names}
    return out - {""}


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_cell_roles_agree_with_nbgrader(path):
    utils = pytest.importorskip("nbgrader.utils")
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        for name in ("is_grade", "is_solution", "is_task", "is_locked"):
            assert getattr(notebook, name)(cell) == bool(getattr(utils, name)(cell)), (name, notebook.grade_id(cell))
    roles = [notebook.role(c) for c in nb.cells]
    assert roles.count(Role.SETUP) == 1 and Role.ANSWER in roles and Role.TEST in roles and Role.WRITTEN in roles


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_checksums_agree_with_nbgrader(path):
    """released.checksum is nbgrader's compute_checksum (what generate_assignment writes into each cell)."""
    utils = pytest.importorskip("nbgrader.utils")
    import nbformat

    from lablib.grading.released import checksum

    nb = nbformat.read(str(path), as_version=4)
    graded = [c for c in nb.cells if notebook.grade_id(c) and (utils.is_grade(c) or utils.is_locked(c))]
    assert any(notebook.role(c) is Role.TEST for c in graded)
    for cell in graded:
        assert checksum(cell) == utils.compute_checksum(cell), notebook.grade_id(cell)
        edited = nbformat.from_dict({**cell, "source": cell.source + " "})
        assert checksum(edited) == utils.compute_checksum(edited) != utils.compute_checksum(cell)


def test_read_needs_no_nbformat_and_says_what_is_wrong(tmp_path):
    bad = tmp_path / "bad.ipynb"
    bad.write_text('{"cells": [')
    with pytest.raises(notebook.NotebookError, match="not valid JSON"):
        notebook.read(bad)
    bad.write_text('{"cells": 3, "nbformat": 4}')
    with pytest.raises(notebook.NotebookError, match="not a valid Jupyter notebook"):
        notebook.read(bad)
    nb = notebook.read(NOTEBOOKS / "01_layers.ipynb", validate=False)
    assert isinstance(nb.cells[0].source, str)


def test_statuses_round_trip_through_json():
    result = NotebookResult("01_layers.ipynb", Status.TIMED_OUT, student="s",
                            tests=[TestResult("t", "p", "d", 1.0, Status.DIED)],
                            in_kernel_status=Status.COMPLETE, in_kernel_tests={"t": Status.PASSED})
    back = NotebookResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back == result and back.status is Status.TIMED_OUT and back.tests[0].status is Status.DIED
    assert Status("kernel died") is Status.DIED  # the sandbox's words for a lost worker
    assert Status.worst([Status.DIED, Status.TIMED_OUT, Status.GRADED]) is Status.TIMED_OUT
    assert Status.TIMED_OUT.is_fault and not Status.MISSING.is_fault and not Status.GRADED.is_fault
    with pytest.raises(ValueError):
        Status("crashed")


def test_layering():
    """results, notebook and _proc import nothing of grading; check and autograde not each other."""
    for base in ("results", "notebook", "_proc"):
        assert imports_of(GRADING / f"{base}.py") == set(), base
    assert "autograde" not in imports_of(GRADING / "check.py") | imports_of(GRADING / "selfcheck.py")
    assert "check" not in imports_of(GRADING / "autograde.py") | imports_of(GRADING / "grader.py")
    for reader in ("feedback", "report"):  # they read stored results (feedback: and the TA's gradebook entries)
        if (GRADING / f"{reader}.py").exists():
            assert imports_of(GRADING / f"{reader}.py") <= {"paths", "results", "in_kernel", "notebook", "gradebook"}, reader


def test_cli_check_starts_without_nbformat_or_nbgrader(tmp_path):
    """`python -m lablib check` in a Python that has neither (the student's JupyterLab terminal)."""
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nclass _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('nbformat', 'nbgrader'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, _Block())\n")
    nb = tmp_path / "01_tiny.ipynb"
    nb.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "a", "metadata": {"nbgrader": {"grade_id": "x", "solution": True}},
         "source": "x = 1", "outputs": [], "execution_count": None},
        {"cell_type": "code", "id": "b", "metadata": {"nbgrader": {"grade_id": "test_x", "grade": True,
                                                                     "solution": False, "points": 2}},
         "source": '"""x is one"""\nassert x == 1', "outputs": [], "execution_count": None}]}))
    env = {"PYTHONPATH": f"{blocker}:{paths.repo_root()}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "lablib", "check", str(nb)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "01_tiny.ipynb: 2/2 points" in proc.stdout


def test_cli_defaults_are_the_graders():
    from lablib import cli
    from lablib.grading import grader

    assert (cli.GRADE_CELL_TIMEOUT_S, cli.GRADE_NOTEBOOK_TIMEOUT_S, cli.GRADE_MEMORY_MB) == \
        (grader.GRADE_CELL_TIMEOUT_S, grader.GRADE_NOTEBOOK_TIMEOUT_S, grader.GRADE_MEMORY_MB)


def test_a_gradebook_that_fails_leaves_the_results_and_says_so(monkeypatch, tmp_path):
    from lablib.grading import autograde, gradebook

    def locked(*args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(gradebook, "record", locked)
    note = autograde._record_in_gradebook([], tmp_path, [])
    assert note.startswith("Gradebook not updated (RuntimeError: database is locked)")
    monkeypatch.undo()
    without_release = gradebook.record([NotebookResult("01_layers.ipynb", Status.GRADED, student="s")], tmp_path)
    assert without_release.to_text() == "Gradebook not updated: no release in this build folder (run lablib release first)"
