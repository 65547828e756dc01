"""Tests of `lablib check` (the student's self-check) and of the `lablib` command line.

The self-check runs on the real source notebooks (full visible points), on copies with one answer
made wrong (only that part's test fails, with the diagnosis), with an infinite loop (timed out,
the earlier results kept), with `os._exit` (crashed) and on a file that is not JSON (one line,
no traceback). The released notebooks are checked in test_release.py.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from conftest import runnable_here
from lablib import cells, cli
from lablib.grading import paths
from lablib.grading.check import CHECK_PROFILE, CheckResult, check, check_notebook, notebook_text
from lablib.grading.results import Status
from lablib.training import PROFILE_VAR

SOURCES = paths.source_notebooks()
LAYERS = paths.repo_root() / "notebooks" / "01_layers.ipynb"
#: Wall-clock limit for the notebooks that hang: enough for the child to start and reach the loop.
SHORT_TIMEOUT = 10.0
#: Memory limit for the bad notebooks, in MiB: well above what notebook 01 needs.
SMALL_MEMORY_MB = 1024
#: The one-line edit that makes Linear.backward return dW transposed.
CORRECT_DW, TRANSPOSED_DW = "self.W.grad = self.x.T @ dout", "self.W.grad = (self.x.T @ dout).T"


def visible_points(path: Path) -> dict[str, float]:
    """{grade_id: points} of the autograded test cells, read from the notebook itself."""
    nb = cells.load(path)
    return {cells.grade_id(c): cells.points(c) for c in nb.cells
            if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")
            and not c.metadata["nbgrader"].get("solution")}


def edited(folder: Path, name: str, grade_id: str, old: str | None, new: str) -> Path:
    """A copy of 01_layers in `folder` whose cell `grade_id` has `old` replaced by `new`
    (the whole source when `old` is None)."""
    nb = nbformat.read(str(LAYERS), as_version=4)
    (cell,) = [c for c in nb.cells if cells.grade_id(c) == grade_id]
    if old is None:
        cell.source = new
    else:
        assert old in cell.source, f"the {grade_id} cell changed: update this test's edit"
        cell.source = cell.source.replace(old, new)
    path = folder / name
    nbformat.write(nb, str(path))
    return path


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def source_result(tmp_path_factory: pytest.TempPathFactory) -> CheckResult:
    """The check of copies of the source notebooks (kept together: later notebooks reuse earlier
    ones), so that what the notebooks write (checkpoints) stays out of the repository."""
    folder = tmp_path_factory.mktemp("source")
    for path in SOURCES:
        shutil.copyfile(path, folder / path.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PROFILE_VAR, CHECK_PROFILE)  # the check's own default, whatever the test run set
        return check(runnable_here([folder / path.name for path in SOURCES]), timeout=120)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> tuple[CheckResult, float, dict[str, Path]]:
    """The checks of a folder of bad notebooks, and how long the looping one took."""
    folder = tmp_path_factory.mktemp("bad")
    made = {
        "transposed": edited(folder, "01_transposed.ipynb", "linear", CORRECT_DW, TRANSPOSED_DW),
        "loop": edited(folder, "01_loop.ipynb", "relu", None, "while True:\n    pass\n"),
        "exit": edited(folder, "01_exit.ipynb", "sigmoid", None, "import os\nos._exit(3)\n"),
        "not_json": folder / "01_not_json.ipynb",
    }
    made["not_json"].write_text('{"cells": [{"cell_type": "code", "source": "x = 1"},')
    made["hog"] = folder / "01_hog.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("hog = bytearray(4 * 1024**3)", metadata={"nbgrader": {"grade_id": "hog"}}),
        nbformat.v4.new_code_cell('"""Runs after the hog."""\nassert True', metadata={
            "nbgrader": {"grade": True, "solution": False, "points": 1, "grade_id": "test_after"}}),
    ]), str(made["hog"]))
    # Only the looping notebook gets the short limit, and it starts first; two run at a time, so
    # that a loaded machine does not push the others over any limit.
    order = [made["loop"]] + [path for key, path in made.items() if key != "loop"]

    def run(path: Path):
        limit = SHORT_TIMEOUT if path == made["loop"] else 120
        start = time.perf_counter()
        return check_notebook(path, limit, memory_mb=SMALL_MEMORY_MB), time.perf_counter() - start

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(run, order))
    loop_seconds = done[0][1]
    return CheckResult([nb for nb, _ in done]), loop_seconds, made


def by_name(result: CheckResult, path: Path):
    (nb,) = [nb for nb in result.notebooks if Path(nb.path).name == path.name]
    return nb


def test_source_notebooks_get_full_visible_points(source_result: CheckResult) -> None:
    assert source_result.passed, source_result.to_text()
    checked = {Path(nb.path).name for nb in source_result.notebooks}
    for nb, path in zip(source_result.notebooks, [p for p in SOURCES if p.name in checked]):
        assert nb.status is Status.GRADED and not nb.cell_errors
        points = visible_points(path)
        assert {t.grade_id: t.earned for t in nb.tests} == points
        assert nb.earned == nb.possible == sum(points.values()) > 0
        assert all(t.passed and t.error is None for t in nb.tests)
        assert nb.manual_points > 0  # the written answers are counted apart, not run


def test_tests_are_grouped_by_the_heading_of_their_part(source_result: CheckResult) -> None:
    layers = source_result.notebooks[0]
    parts = layers.parts()
    linear = [part for part in parts if "Linear" in part]
    assert len(linear) == 1 and linear[0].startswith("Part A")
    assert [t.grade_id for t in parts[linear[0]]] == [
        "test_linear_forward", "test_linear_dx", "test_linear_dW", "test_linear_db", "test_linear_skip_dx"]
    assert all(t.description for t in layers.tests)  # each test cell's docstring


def test_text_report_of_a_passing_check(source_result: CheckResult) -> None:
    text = source_result.to_text()
    total = f"{source_result.possible:g}"
    assert f"Total: {total}/{total} points from visible tests; all visible tests pass." in text
    assert "Visible tests only" in text and "graded by hand" in text
    assert "Part A" in text and "test_linear_dW" in text and "failed" not in text


def test_a_transposed_dW_fails_only_its_test_and_says_why(bad) -> None:
    result, _, made = bad
    nb = by_name(result, made["transposed"])
    assert nb.status is Status.GRADED
    failed = {t.grade_id for t in nb.tests if not t.passed}
    assert failed == {"test_linear_dW"}
    assert nb.earned == nb.possible - visible_points(LAYERS)["test_linear_dW"]
    (dw,) = [t for t in nb.tests if t.grade_id == "test_linear_dW"]
    assert dw.error.startswith("AssertionError") and "transpose" in dw.error
    text = notebook_text(nb)
    assert "failed     test_linear_dW" in text and "transpose" in text


def test_an_infinite_loop_times_out_and_keeps_the_earlier_results(bad) -> None:
    result, seconds, made = bad
    nb = by_name(result, made["loop"])
    assert nb.status is Status.TIMED_OUT
    assert f"stopped after {SHORT_TIMEOUT:g} s while running cell relu" in nb.message
    assert seconds < SHORT_TIMEOUT + 10  # stopped, not waited for
    status = {t.grade_id: t.status for t in nb.tests}
    assert all(status[gid] == "passed" for gid in status if gid.startswith("test_linear"))
    linear = sum(points for gid, points in visible_points(LAYERS).items() if gid.startswith("test_linear"))
    assert status["test_relu_forward"] == "not run" and nb.earned == linear > 0
    assert "TIMED OUT" in notebook_text(nb)


def test_a_notebook_that_kills_its_process_is_reported_as_died(bad) -> None:
    result, _, made = bad
    nb = by_name(result, made["exit"])
    assert nb.status is Status.DIED
    assert "while running cell sigmoid with exit status 3" in nb.message
    status = {t.grade_id: t.status for t in nb.tests}
    assert status["test_relu_backward"] == "passed" and status["test_sigmoid_forward"] == "not run"


@pytest.mark.skipif(sys.platform != "linux", reason="the memory limit is RLIMIT_AS, enforced on Linux")
def test_a_memory_hog_fails_its_cell_and_the_notebook_goes_on(bad) -> None:
    result, _, made = bad
    nb = by_name(result, made["hog"])
    assert nb.status is Status.GRADED
    assert nb.cell_errors["hog"].startswith("MemoryError")
    assert [t.status for t in nb.tests] == ["passed"]
    assert notebook_text(nb).index("error in cell hog") < notebook_text(nb).index("test_after")


def test_a_file_that_is_not_json_is_reported_in_one_line(bad) -> None:
    result, _, made = bad
    nb = by_name(result, made["not_json"])
    assert nb.status is Status.MALFORMED and "not valid JSON" in nb.message and nb.tests == []
    assert "\n" not in notebook_text(nb) and "Traceback" not in notebook_text(nb)
    assert not result.passed


def test_cli_check_prints_the_diagnosis_and_fails(tmp_path: Path) -> None:
    path = edited(tmp_path, "01_layers.ipynb", "linear", CORRECT_DW, TRANSPOSED_DW)
    code, out, err = run_main("check", str(path))
    assert code == 1, out + err
    assert "test_linear_dW" in out and "transpose" in out and "Traceback" not in out + err
    assert "points from visible tests" in out and "not passing: 01_layers.ipynb" in out


def test_cli_check_json_on_a_malformed_notebook(tmp_path: Path) -> None:
    (tmp_path / "01_broken.ipynb").write_text("not a notebook")
    code, out, err = run_main("check", "--json", str(tmp_path))
    assert code == 1 and not err
    data = json.loads(out)
    assert data["passed"] is False and data["visible_tests_only"] is True
    assert data["notebooks"][0]["status"] == Status.MALFORMED


def test_cli_usage_errors(tmp_path: Path) -> None:
    code, out, err = run_main("check", str(tmp_path / "missing.ipynb"))
    assert code == 2 and "no such file or folder" in err and "Traceback" not in err
    code, out, err = run_main("check", str(tmp_path))
    assert code == 2 and "no notebooks" in err
    code, out, err = run_main("check", "--timeout", "0", str(LAYERS))
    assert code == 2 and "--timeout" in err
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stderr(io.StringIO()):
        cli.main([])  # a subcommand is required
    assert exc.value.code == 2


def test_help_lists_the_commands() -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stdout(out):
        cli.main(["--help"])
    assert exc.value.code == 0 and "release" in out.getvalue() and "check" in out.getvalue()


def test_python_dash_m_lablib(tmp_path: Path) -> None:
    (tmp_path / "bad.ipynb").write_text("{")
    proc = subprocess.run([sys.executable, "-m", "lablib", "check", str(tmp_path / "bad.ipynb")],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 1 and "bad.ipynb: NOT CHECKED" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_grade_with_nothing_to_grade_says_what_to_do(tmp_path, capsys) -> None:
    """`lablib grade` with nothing collected, or for a student not collected, printed '0 student(s)' and
    exited 0 (TA review)."""
    build = tmp_path / "build"
    assert cli.main(["grade", "--build", str(build), "--quiet"]) == 1
    assert "nothing collected in" in capsys.readouterr().err
    (paths.submitted_root(build) / "alice" / paths.ASSIGNMENT_ID).mkdir(parents=True)
    assert cli.main(["grade", "--build", str(build), "--quiet", "--student", "nobody"]) == 2
    err = capsys.readouterr().err
    assert "no collected submission for 'nobody' (collected: alice)" in err
