"""Attacks on grading isolation (issue 13), each reproduced by a hostile submission and graded for real.

Each test failed on the grader before issue 13: a detached process outlived its worker; a submission
killed or wrote into the workers of students graded after it (one uid per grading process); an answer
cell read a second copy of the source notebooks (hidden tests included) elsewhere on disk; a broken
notebook 01 cost points in notebook 04; a Linear keeping its bias as (1, out) lost test_linear_db in
the hidden tests only; a private TMPDIR graded the whole class "kernel died".

Payloads stay bounded: detached processes sleep or loop for at most DETACHED_S seconds and are killed
by the test in any case, no fork bomb, no network, small arrays.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import site
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import NOTEBOOKS, ROOT, notebook_path
from grading_helpers import answers, failing_cells, possible_points, with_prefix, write_notebook
from lablib.grading import paths
from lablib.grading.autograde import grade
from lablib.grading.grader import grade_notebook
from lablib.grading.collect import collect
from lablib.grading.sandbox import SandboxUnavailable
from lablib.grading.sandbox import isolation as iso

#: How long a detached payload runs at most, in seconds.
DETACHED_S = 40
CELL_TIMEOUT = 15.0  # generous: the machine may be loaded, and only the hanging payloads wait for it
LINEAR_TESTS = {"test_linear_forward", "test_linear_dx", "test_linear_dW", "test_linear_db", "test_linear_skip_dx"}

needs_allowlist = pytest.mark.skipif(
    iso.detect().level != iso.BWRAP, reason=f"the filesystem allowlist needs bubblewrap ({iso.detect().reason})")
needs_separation = pytest.mark.skipif(
    iso.detect().level == iso.LIMITS,
    reason="sandboxes are kept apart by bubblewrap's namespaces or, as root, a uid each; neither is available")


def _cmdlines(marker: str) -> list[int]:
    """Pids of the processes whose command line contains `marker`."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    if marker.encode() in fh.read():
                        found.append(int(entry.name))
            except OSError:
                pass
    return [pid for pid in found if pid != os.getpid()]


@pytest.fixture
def marker():
    """A unique word for a test's detached processes; whatever carries it is killed at the end."""
    word = f"lablib-iso-{uuid.uuid4().hex[:12]}"
    yield word
    for pid in _cmdlines(word):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def detached(marker: str, loop: str, before: str = "") -> str:
    """Answer-cell code that starts a detached process (its own session) running `before`, then `loop`
    for at most DETACHED_S seconds; its command line carries `marker`."""
    body = (f"import glob, os, signal, time\n{before}\nend = time.time() + {DETACHED_S}\n"
            f"while time.time() < end:\n" + "".join(f"    {line}\n" for line in loop.splitlines()) +
            "    time.sleep(0.02)\n")
    return f'''
import subprocess as _sp, sys as _sys, time as _time
_child = _sp.Popen([_sys.executable, "-c", {body!r}, {marker!r}], start_new_session=True,
                   stdin=_sp.DEVNULL, stdout=_sp.DEVNULL, stderr=_sp.DEVNULL)
_time.sleep(0.3)
if _child.poll() is not None:  # the attack must really run, or the tests below prove nothing
    raise RuntimeError(f"DETACHED CHILD DIED at once (exit {{_child.returncode}})")
'''


def _class(tmp_path: Path, students: dict[str, dict[str, str]], stem: str = "01_layers") -> Path:
    """Collect one notebook per student (name -> answers) into a build folder; returns the build."""
    source, build = tmp_path / "submissions", tmp_path / "build"
    for name, replace in students.items():
        write_notebook(source / name, stem, replace)
    assert not collect(source, build).problems
    return build


def _grade_in_one_process(build: Path, stem: str = "01_layers") -> dict:
    """Grade the class with one grading process (before issue 13, every sandbox of a grading process
    had the same uid), in name order; returns {student: {notebook: result}}."""
    run = grade(build, jobs=1, cell_timeout=CELL_TIMEOUT, progress=False, in_kernel=False,
                sources=[notebook_path(stem)])
    out: dict = {}
    for result in run.results:
        out.setdefault(result.student, {})[result.notebook] = result
    return out


def _result_files(build: Path) -> list[Path]:
    return sorted(paths.results_root(build).glob("*/*.json"))


@needs_separation
def test_a_detached_process_does_not_outlive_its_worker(tmp_path, marker):
    folder = tmp_path / "student"
    write_notebook(folder, "01_layers", with_prefix(answers("01_layers", "solution"), "linear", detached(marker, "pass")))
    result = grade_notebook(notebook_path("01_layers"), folder, "s", cell_timeout=CELL_TIMEOUT, in_kernel=False)
    assert result.earned == possible_points("01_layers")
    time.sleep(0.2)
    assert _cmdlines(marker) == [], "a process the submission started still runs after its grading"


@needs_separation
def test_a_submission_cannot_kill_the_workers_of_students_graded_after_it(tmp_path, marker):
    killer = detached(marker, "try:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass")
    build = _class(tmp_path, {"aaa_killer": with_prefix(answers("01_layers", "blank"), "linear", killer),
                              "zzz_honest": answers("01_layers", "solution")})
    results = _grade_in_one_process(build)
    assert "DETACHED CHILD DIED" not in str(results["aaa_killer"]["01_layers.ipynb"].cell_errors)
    honest = results["zzz_honest"]["01_layers.ipynb"]
    assert honest.status == "graded", honest.message
    assert honest.earned == possible_points("01_layers")


@needs_separation
def test_a_submission_cannot_find_or_write_the_sandboxes_of_others(tmp_path, marker):
    roots = sorted({tempfile.gettempdir(), "/tmp", "/var/tmp"})
    planter = detached(marker, f'''for root in {roots!r} + [here]:
    for work in glob.glob(os.path.join(root, "lablib-grade-*", "work")):
        try:
            open(os.path.join(work, "PLANTED"), "w").close()
        except OSError:
            pass''', before="here = os.path.dirname(os.path.dirname(os.getcwd()))")
    reporter = 'raise RuntimeError("my folder holds " + repr(sorted(__import__("os").listdir("."))))\n'
    build = _class(tmp_path, {"aaa_planter": with_prefix(answers("01_layers", "blank"), "linear", planter),
                              "zzz_reporter": with_prefix(answers("01_layers", "blank"), "linear", reporter)})
    results = _grade_in_one_process(build)
    assert "DETACHED CHILD DIED" not in str(results["aaa_planter"]["01_layers.ipynb"].cell_errors)
    seen = results["zzz_reporter"]["01_layers.ipynb"].cell_errors["linear"]
    assert "my folder holds" in seen and "01_layers.ipynb" in seen
    assert "PLANTED" not in seen, "another submission wrote into this sandbox"


@needs_allowlist
def test_an_answer_cell_cannot_read_a_second_copy_of_the_source_notebooks(tmp_path):
    copies = [tmp_path / "course-copy"]
    if os.geteuid() == 0:
        copies.append(Path("/opt") / f"lablib-iso-{uuid.uuid4().hex[:12]}")
    try:
        for copy in copies:
            shutil.copytree(NOTEBOOKS, copy)
        targets = [str(copy / "01_layers.ipynb") for copy in copies]
        probe = f'''
_read = []
for _path in {targets!r}:
    try:
        _read.append(("HIDDEN TESTS" in open(_path).read(), _path))
    except OSError as _err:
        pass
raise RuntimeError("read " + repr(_read))
'''
        folder = tmp_path / "student"
        write_notebook(folder, "01_layers", with_prefix(answers("01_layers", "blank"), "linear", probe))
        result = grade_notebook(notebook_path("01_layers"), folder, "s", cell_timeout=CELL_TIMEOUT, in_kernel=False)
        assert "read []" in result.cell_errors["linear"], result.cell_errors["linear"]
    finally:
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)


@needs_allowlist
def test_the_worker_sees_no_home_course_host_tmp_or_other_sandbox(tmp_path):
    from lablib.grading.sandbox import Sandbox

    with Sandbox({}, memory_mb=1024) as other, Sandbox({"mine.txt": b"x"}, memory_mb=1024) as sb:
        sb.start()
        sb.deadline = time.monotonic() + 30
        probe = f'''
import json, os
seen = {{}}
for path in ["/root", "/home", "/work", {str(ROOT)!r}, {str(NOTEBOOKS)!r}, {str(tmp_path)!r}, {str(other.work)!r},
             {str(other.root)!r}, "/etc", "/var", "/opt", "/srv"]:
    try:
        seen[path] = sorted(os.listdir(path))
    except OSError as err:
        seen[path] = type(err).__name__
raise RuntimeError("PROBE" + json.dumps([sorted(os.listdir(".")), seen]) + "PROBE")
'''
        error = sb.exec_cell(probe, "probe")
    mine, listing = json.loads(error.split("PROBE")[1])
    assert "mine.txt" in mine
    for path, seen in listing.items():
        if path == "/root":
            assert seen in ("FileNotFoundError", [".pyenv"]), (path, seen)  # only the runtime, if it lives there
        elif path == "/etc":
            assert seen in ("FileNotFoundError", ["ld.so.cache"]), (path, seen)
        elif path in ("/work", str(ROOT)):  # only the folders that lead to the runtime (a venv in the checkout)
            assert seen == "FileNotFoundError" or set(seen) <= on_the_way_to_the_runtime(path), (path, seen)
        else:
            assert seen in ("FileNotFoundError", "PermissionError", []), (path, seen)


def on_the_way_to_the_runtime(folder: str) -> set[str]:
    """Entries of `folder` on the path to Python's prefixes or site-packages, which the worker must see
    (e.g. `.venv` when the virtual environment lives inside the checkout, as scripts/test.sh makes it)."""
    runtime = {sys.prefix, sys.base_prefix, *site.getsitepackages()}
    runtime |= {os.path.realpath(p) for p in runtime}
    entries = set()
    for place in runtime:
        rel = os.path.relpath(place, folder)
        if rel != "." and not rel.startswith(".."):
            entries.add(rel.split(os.sep)[0])
    return entries


def test_a_broken_notebook_01_costs_no_points_in_notebook_04(tmp_path):
    hanging = with_prefix(answers("01_layers", "solution"), "relu", "import time\ntime.sleep(60)")
    crashing = with_prefix(answers("01_layers", "solution"), "relu", "import os\nos._exit(3)")
    for name, replace in [("hanging", hanging), ("crashing", crashing)]:
        write_notebook(tmp_path / name, "01_layers", replace)
    (tmp_path / "malformed").mkdir()
    (tmp_path / "malformed" / "01_layers.ipynb").write_text('{"cells": [')
    (tmp_path / "missing").mkdir()
    for name in ("hanging", "crashing", "malformed", "missing"):
        write_notebook(tmp_path / name, "04_training", answers("04_training", "solution"))
        result = grade_notebook(notebook_path("04_training"), tmp_path / name, name, cell_timeout=CELL_TIMEOUT,
                                in_kernel=False)
        lost = {t.grade_id: t.error for t in result.tests if t.status != "passed"}
        assert lost == {}, f"01 {name}: {lost}"


R4_LINEAR = {  # reference report R4 kept the bias as (1, out) throughout
    "self.b = Parameter(np.zeros(out_features))": "self.b = Parameter(np.zeros((1, out_features)))",
    "self.b.grad = dout.sum(axis=0)": "self.b.grad = dout.sum(axis=0, keepdims=True)",
}


def _linear(replacements: dict[str, str]) -> dict[str, str]:
    source = answers("01_layers", "solution")["linear"]
    for old, new in replacements.items():
        assert source.count(old) == 1
        source = source.replace(old, new)
    return {"linear": source}


def test_a_bias_kept_as_1_by_out_passes_visible_and_hidden_tests():
    assert failing_cells("01_layers", _linear(R4_LINEAR), hidden=False) & LINEAR_TESTS == set()
    assert failing_cells("01_layers", _linear(R4_LINEAR), hidden=True) & LINEAR_TESTS == set()


def test_a_db_whose_shape_differs_from_b_still_fails():
    flat_db = {**R4_LINEAR, "self.b.grad = dout.sum(axis=0)": "self.b.grad = dout.sum(axis=0)"}
    assert "test_linear_db" in failing_cells("01_layers", _linear(flat_db), hidden=True)
    row_db = {"self.b.grad = dout.sum(axis=0)": "self.b.grad = dout.sum(axis=0, keepdims=True)"}
    assert "test_linear_db" in failing_cells("01_layers", _linear(row_db), hidden=True)


@pytest.fixture
def private_tmpdir(tmp_path, monkeypatch):
    """TMPDIR in a 0700 folder of root's (as pam_tmpdir sets up): the sandbox's user cannot enter it."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", None)  # tempfile reads TMPDIR again
    return private


@pytest.mark.skipif(os.geteuid() != 0, reason="a 0700 folder shuts out the sandbox's user only when grading as root")
def test_a_private_tmpdir_stops_grading_before_the_first_submission(tmp_path, private_tmpdir, monkeypatch):
    build = _class(tmp_path, {"honest": answers("01_layers", "solution")})
    monkeypatch.setenv(iso.MODE_VAR, "limits")  # no bubblewrap: the worker must enter TMPDIR itself
    iso.detect.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable) as err:
            grade(build, jobs=1, cell_timeout=CELL_TIMEOUT, progress=False, in_kernel=False,
                  sources=[notebook_path("01_layers")])
    finally:
        monkeypatch.delenv(iso.MODE_VAR)
        iso.detect.cache_clear()
    assert str(private_tmpdir) in str(err.value) and "TMPDIR" in str(err.value)
    assert _result_files(build) == [], "no submission may be graded when no sandbox can start"


@needs_allowlist
@pytest.mark.skipif(os.geteuid() != 0, reason="a 0700 folder shuts out the sandbox's user only when grading as root")
def test_a_private_tmpdir_is_no_problem_under_bubblewrap(tmp_path, private_tmpdir):
    build = _class(tmp_path, {"honest": answers("01_layers", "solution")})
    results = _grade_in_one_process(build)
    honest = results["honest"]["01_layers.ipynb"]
    assert honest.status == "graded" and honest.earned == possible_points("01_layers"), honest.message


def test_grades_csv_names_the_isolation_of_each_submission(tmp_path):
    from lablib.grading.export import export

    build = _class(tmp_path, {"honest": answers("01_layers", "solution")})
    _grade_in_one_process(build)
    rows = list(csv.DictReader(export(build).open()))
    assert rows[0]["isolation"] == iso.detect().level
    assert ("graded without isolation" in rows[0]["review"]) == (iso.detect().level != iso.BWRAP)


def test_grading_stops_with_the_reason_when_bubblewrap_is_required_but_missing(tmp_path, monkeypatch):
    build = _class(tmp_path, {"honest": answers("01_layers", "solution")})
    monkeypatch.setenv(iso.MODE_VAR, "bwrap")
    monkeypatch.setattr(iso, "bwrap_path", lambda: None)
    iso.detect.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="bubblewrap"):
            grade(build, jobs=1, progress=False, in_kernel=False, sources=[notebook_path("01_layers")])
    finally:
        iso.detect.cache_clear()
    assert _result_files(build) == []


def test_lablib_grade_says_why_no_sandbox_can_start_and_exits_non_zero(tmp_path, monkeypatch, capsys):
    from lablib.cli import main

    build = _class(tmp_path, {"honest": answers("01_layers", "solution")})
    monkeypatch.setenv(iso.MODE_VAR, "bwrap")
    monkeypatch.setattr(iso, "bwrap_path", lambda: None)
    iso.detect.cache_clear()
    try:
        assert main(["grade", "--build", str(build), "--quiet"]) == 1
    finally:
        iso.detect.cache_clear()
    err = capsys.readouterr().err
    assert "lablib grade: error: no grading sandbox can start" in err and "apt-get install bubblewrap" in err
    assert _result_files(build) == []
