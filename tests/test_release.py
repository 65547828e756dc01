"""End to end tests of `lablib release`: nbgrader's generate_assignment on the real notebooks.

The release runs once per module (nbgrader takes seconds) into a temporary build folder named by
$LABLIB_BUILD, so a build/ of the checkout is never touched. The tests then prove that the student
folder holds no solution and no hidden test, keeps every test cell's visible part and every
grade_id, ships a working lablib, and that the self-check scores it 0.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import nbformat
import pytest

from conftest import long_lines, runnable_here, solution_lines
from lablib import cells, cli
from lablib.grading import paths
from lablib.grading import release as release_module
from lablib.grading.check import CHECK_PROFILE, check, notebook_text
from lablib.grading.released import RELEASED_TESTS
from lablib.grading.results import Status
from lablib.grading.release import INSTRUCTOR_ONLY, ReleaseError, release
from lablib.training import PROFILE_VAR

SOURCES = paths.source_notebooks()
_HIDDEN_REGION = re.compile(r"### BEGIN HIDDEN TESTS[^\n]*\n(.*?)^[ \t]*### END HIDDEN TESTS", re.S | re.M)


def meta(cell: Any) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test(cell: Any) -> bool:
    return cell.cell_type == "code" and meta(cell).get("grade") and not meta(cell).get("solution")


def hidden_lines() -> set[str]:
    """Non-trivial lines of hidden test blocks that do not also occur in a notebook's visible text."""
    hidden, visible = set(), []
    for path in SOURCES:
        for cell in cells.load(path).cells:
            for region in _HIDDEN_REGION.findall(cell.source):
                hidden |= long_lines(region)
            visible.append(cells.strip_hidden_tests(cell.source))
    seen = "\n".join(visible)
    return {line for line in hidden if line not in seen}


def texts(folder: Path, archive: Path) -> dict[str, str]:
    """{name: text} of every file of the release, and of every member of its zip; for notebooks,
    the cell sources as the student sees them (not JSON-escaped)."""

    def readable(name: str, data: bytes) -> str:
        text = data.decode("utf-8", "replace")
        if name.endswith(".ipynb"):
            nb = nbformat.reads(text, as_version=4)
            text = "\n".join(cell.source for cell in nb.cells) + "\n" + text
        elif name == RELEASED_TESTS:  # the test cells' sources, not JSON-escaped
            tests = json.loads(text)["notebooks"].values()
            text = "\n".join(t["source"] for listed in tests for t in listed) + "\n" + text
        return text

    found = {str(p.relative_to(folder)): readable(p.name, p.read_bytes())
             for p in folder.rglob("*") if p.is_file()}
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            if not name.endswith("/"):
                found[f"zip:{name}"] = readable(name, zf.read(name))
    return found


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run `lablib release` once, with the build folder moved by $LABLIB_BUILD."""
    build = tmp_path_factory.mktemp("build")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(paths.BUILD_ENV, str(build))
        assert cli.main(["release"]) == 0
    return build


@pytest.fixture(scope="module")
def folder(build: Path) -> Path:
    return build / "release" / paths.ASSIGNMENT_ID


def test_there_are_notebooks_to_release() -> None:
    assert len(SOURCES) >= 2, SOURCES
    assert solution_lines(), "no solution found in the source notebooks: the leak tests would prove nothing"


def test_build_folder_comes_from_argument_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(paths.BUILD_ENV, raising=False)
    assert paths.build_root() == paths.repo_root() / "build"
    monkeypatch.setenv(paths.BUILD_ENV, str(tmp_path / "env"))
    assert paths.build_root() == tmp_path / "env"
    assert paths.course_root() == tmp_path / "env" / "course"
    assert paths.build_root(tmp_path / "arg") == tmp_path / "arg"


def test_layout(build: Path, folder: Path) -> None:
    names = [p.name for p in SOURCES]
    assert sorted(p.name for p in folder.glob("*.ipynb")) == names
    for name in names:
        assert (build / "course" / "source" / paths.ASSIGNMENT_ID / name).is_file()
        assert (build / "course" / "release" / paths.ASSIGNMENT_ID / name).is_file()
    assert (build / "course" / "gradebook.db").is_file()
    for needed in ("README.md", "requirements.txt", "lablib/__init__.py", "lablib/gradcheck/checks.py",
                   "lablib/cells.py", "lablib/grading/check.py", "data/checksums.json", "data/README.md"):
        assert (folder / needed).is_file(), needed
    assert not list(folder.rglob("__pycache__")) and not list(folder.rglob("*.pyc"))
    with zipfile.ZipFile(build / "release" / f"{paths.ASSIGNMENT_ID}.zip") as zf:
        members = set(zf.namelist())
    assert {f"{paths.ASSIGNMENT_ID}/{name}" for name in names + ["README.md", "lablib/__init__.py"]} <= members
    # nothing left over from assembling it
    assert sorted(p.name for p in (build / "release").iterdir()) == [paths.ASSIGNMENT_ID, f"{paths.ASSIGNMENT_ID}.zip"]


def test_student_readme_and_requirements(folder: Path) -> None:
    readme = (folder / "README.md").read_text()
    assert "python -m lablib check" in readme and "pip install -r requirements.txt" in readme
    assert all(p.name in readme for p in SOURCES)
    requirements = (folder / "requirements.txt").read_text().split()
    assert any(r.startswith("numpy") for r in requirements)
    assert not [r for r in requirements if r.split(">")[0].split("=")[0].lower() in INSTRUCTOR_ONLY]


def test_released_notebooks_have_no_solution_and_no_hidden_test_markers(folder: Path) -> None:
    for path in folder.glob("*.ipynb"):
        text = path.read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
            assert marker not in text, f"{path.name} contains {marker!r}"


def test_no_solution_line_anywhere_in_the_release(build: Path, folder: Path) -> None:
    """Not in the notebooks, not in the shipped lablib, not in the zip."""
    secret = solution_lines()
    files = texts(folder, build / "release" / f"{paths.ASSIGNMENT_ID}.zip")
    leaks = {name: sorted(line for line in secret if line in text) for name, text in files.items()}
    assert not {name: lines for name, lines in leaks.items() if lines}


def test_no_hidden_test_line_anywhere_in_the_release(build: Path, folder: Path) -> None:
    secret = hidden_lines()
    assert secret
    files = texts(folder, build / "release" / f"{paths.ASSIGNMENT_ID}.zip")
    leaks = {name: sorted(line for line in secret if line in text) for name, text in files.items()}
    assert not {name: lines for name, lines in leaks.items() if lines}


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_released_cells_match_the_source(folder: Path, source: Path) -> None:
    """Same cells and grade_ids in the same order; visible tests kept word for word; answers blanked."""
    src, rel = cells.load(source), cells.load(folder / source.name)
    assert [cells.grade_id(c) for c in rel.cells] == [cells.grade_id(c) for c in src.cells]
    assert [cells.points(c) for c in rel.cells] == [cells.points(c) for c in src.cells]
    for s, r in zip(src.cells, rel.cells):
        gid = cells.grade_id(s)
        if is_test(s):
            visible = cells.strip_hidden_tests(s.source)
            assert r.source.rstrip() == visible.rstrip(), gid
            assert "check_" in visible or "assert" in visible, f"{gid} has no visible check"
        elif meta(s).get("solution") and s.cell_type == "code":
            assert r.source.rstrip() == cells.blank_solutions(s.source).rstrip(), gid
            assert "raise NotImplementedError()" in r.source, gid
        elif meta(s).get("solution"):
            assert r.source == "YOUR ANSWER HERE", gid
        else:
            assert r.source.rstrip() == s.source.rstrip(), gid
        assert not r.get("outputs"), f"{gid} kept its outputs"


def test_check_scores_the_release_zero(folder: Path, tmp_path: Path) -> None:
    """Every autograded test of the blank release fails, because the answer cells raise. (On a copy
    of the student folder, with its own lablib: running the notebooks writes files next to them.)"""
    student = tmp_path / "student"
    shutil.copytree(folder, student)
    notebooks = runnable_here(sorted(student.glob("*.ipynb")))

    def folders() -> list[str]:
        return sorted(str(p.relative_to(student)) for p in student.rglob("*") if p.is_dir() and "__pycache__" not in p.parts)

    before = folders()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PROFILE_VAR, CHECK_PROFILE)
        mp.delenv(paths.BUILD_ENV, raising=False)  # as in the student's terminal
        result = check(notebooks, timeout=120)
    assert folders() == before  # the check created nothing in the release (no build/checkpoints/, say)
    assert [Path(nb.path).name for nb in result.notebooks] == [p.name for p in runnable_here(SOURCES)]
    for nb in result.notebooks:
        assert nb.status is Status.GRADED, notebook_text(nb)
        assert nb.tests and nb.earned == 0 and nb.possible > 0
        for test in nb.tests:
            assert test.status == "failed", test
            assert "NotImplementedError" in test.error or "not implemented" in test.error, test
    assert not result.passed and "0/" in result.to_text()


def test_the_check_runs_the_released_test_cells_when_the_student_edited_or_deleted_some(folder: Path,
                                                                                         tmp_path: Path) -> None:
    """As the grader does (it runs the source's test cells): an edited test cell is run as released,
    a deleted one is put back, and the check says so; the student's file is left as it is."""
    student = tmp_path / "student"
    shutil.copytree(folder, student)
    path = student / "01_layers.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    by_id = {cells.grade_id(c): c for c in nb.cells if cells.grade_id(c)}
    assert {"test_linear_forward", "test_linear_dW"} <= set(by_id)
    by_id["test_linear_forward"].source = '"""Linear.forward: shapes and values on a small example."""\npass'
    nb.cells.remove(by_id["test_linear_dW"])
    nbformat.write(nb, str(path))
    released = json.loads((student / RELEASED_TESTS).read_text())["notebooks"]["01_layers.ipynb"]
    assert [t["grade_id"] for t in released] == [cells.grade_id(c) for c in cells.load(folder / path.name).cells
                                                 if is_test(c)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PROFILE_VAR, CHECK_PROFILE)
        (checked,) = check([path], timeout=120).notebooks
    tests = {t.grade_id: t for t in checked.tests}
    assert [t.grade_id for t in checked.tests] == [t["grade_id"] for t in released]  # the deleted one is back
    assert tests["test_linear_forward"].status == "failed" and tests["test_linear_dW"].status == "failed"
    assert checked.earned == 0 and checked.possible == sum(t["points"] for t in released)
    text = notebook_text(checked)
    assert "test cell test_linear_forward (\"" in text and "test cell test_linear_dW (\"" in text and ") was edited" in text and ") was deleted" in text
    assert "test_linear_dW" not in {cells.grade_id(c) for c in cells.load(path).cells}  # the file is untouched


def test_released_checksums_are_nbgrader_s(folder: Path) -> None:
    """The checksum nbgrader wrote into each released test cell is the one the check recomputes."""
    from lablib.grading.released import checksum

    for path in sorted(folder.glob("*.ipynb")):
        tests = [c for c in cells.load(path).cells if is_test(c)]
        assert tests and all(meta(c).get("checksum") == checksum(c) for c in tests), path.name


def test_shipped_lablib_is_the_one_next_to_the_notebooks(folder: Path) -> None:
    """A kernel started in the release folder imports its lablib, which finds data/checksums.json."""
    code = ("import lablib, lablib.data as d; print(lablib.__file__); print(d.CHECKSUMS_FILE); "
            "print(d.CHECKSUMS_FILE.is_file())")
    out = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, check=True)
    module, checksums, exists = out.stdout.split()
    assert Path(module).resolve() == (folder / "lablib" / "__init__.py").resolve()
    assert Path(checksums).resolve() == (folder / "data" / "checksums.json").resolve() and exists == "True"


def test_rerunning_replaces_the_previous_release(build: Path, folder: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A second release into the same build folder leaves nothing of the first one behind.
    (On a copy of the build, with nbgrader replaced by a copy: nbgrader's part is proved above.)"""
    build = shutil.copytree(build, tmp_path / "build")
    folder = build / "release" / paths.ASSIGNMENT_ID
    before = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    (folder / "stale.txt").write_text("from an earlier release")
    (build / "release" / f".{paths.ASSIGNMENT_ID}.leftover").mkdir()
    for step in ("source", "release"):
        (build / "course" / step / paths.ASSIGNMENT_ID / "99_removed.ipynb").write_text("{}")

    def fake_nbgrader(repo: Path, build: Path) -> str:
        out = build / "course" / "release" / paths.ASSIGNMENT_ID
        out.mkdir(parents=True, exist_ok=True)
        for nb in (build / "course" / "source" / paths.ASSIGNMENT_ID).glob("*.ipynb"):
            shutil.copyfile(nb, out / nb.name)
        return ""

    monkeypatch.setattr(release_module, "_run_nbgrader", fake_nbgrader)
    result = release(build)
    assert result.folder == folder and not (folder / "stale.txt").exists()
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == before
    for step in ("source", "release"):
        assert not (build / "course" / step / paths.ASSIGNMENT_ID / "99_removed.ipynb").exists()
    assert sorted(p.name for p in (build / "release").iterdir()) == [paths.ASSIGNMENT_ID, f"{paths.ASSIGNMENT_ID}.zip"]


def test_a_broken_source_notebook_stops_the_release_before_nbgrader(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    (repo / "lablib").mkdir()
    (repo / "nbgrader_config.py").write_text("")
    with pytest.raises(ReleaseError, match="no notebooks"):
        release(tmp_path / "build", repo=repo)
    (repo / "notebooks" / "01_broken.ipynb").write_text('{"cells": [')
    with pytest.raises(ReleaseError, match="01_broken.ipynb is not a valid notebook"):
        release(tmp_path / "build", repo=repo)
    assert not (tmp_path / "build").exists()
    with pytest.raises(ReleaseError, match="not a Backprop Lab checkout"):
        release(tmp_path / "build", repo=tmp_path)


#: lablib modules only the instructor runs (they import nbgrader, nbformat): not the student's concern.
INSTRUCTOR_MODULES = {"release", "collect", "autograde", "grader", "plan", "in_kernel", "gradebook", "export",
                      "feedback", "report", "sandbox", "_sandbox_worker", "wire", "cells"}


def third_party_imports(folder: Path) -> set[str]:
    """Top-level modules imported by the release's notebooks and at module level by the lablib they run
    (an import inside a function is an optional feature, e.g. dask), outside the standard library
    (instructor-only grading modules left out)."""
    import ast
    import json

    statements = []  # every import of a notebook cell; lablib's module-level ones (nested ones are optional)
    for nb in folder.glob("*.ipynb"):
        for c in json.loads(nb.read_text())["cells"]:
            if c["cell_type"] == "code":
                text = "\n".join(line for line in "".join(c["source"]).splitlines()
                                 if not line.lstrip().startswith(("%", "!")))
                statements += list(ast.walk(ast.parse(text)))
    for module in (folder / "lablib").rglob("*.py"):
        if module.stem not in INSTRUCTOR_MODULES:
            statements += ast.parse(module.read_text()).body
    found = set()
    for node in statements:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"lablib", "__future__", "torch"}  # torch: crosscheck only


def test_requirements_cover_everything_the_release_imports(folder: Path) -> None:
    """requirements.txt comes from pyproject.toml's dependencies (one place); every module the release
    imports is installed by one of them or by what they require. ipywidgets is not imported by name:
    tqdm.auto needs it for the progress bar in JupyterLab."""
    import importlib.metadata as md

    wanted = {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower().replace("_", "-")
              for r in (folder / "requirements.txt").read_text().split("\n") if r.strip()}
    assert {"numpy", "matplotlib", "tqdm", "ipywidgets", "jupyterlab"} <= wanted

    def closure(names: set[str]) -> set[str]:
        seen, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            try:
                requires = md.requires(name) or []
            except md.PackageNotFoundError:
                continue
            todo += [re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower().replace("_", "-")
                     for r in requires if "extra ==" not in r]
        return seen

    installed = closure(wanted)
    providers = md.packages_distributions()
    missing = {m: providers.get(m) for m in third_party_imports(folder)
               if not {d.lower().replace("_", "-") for d in providers.get(m, [])} & installed}
    assert not missing, f"imported by the release but not installed by requirements.txt: {missing}"
