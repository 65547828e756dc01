"""End to end: `lablib collect`, `grade`, `feedback`, `export` on the real notebooks.

One grading run (module fixture) grades a class of generated submissions side by side: the
solutions, the blank release, known mistakes (from answer_variants' tables), tampering
attempts, and bad inputs (an infinite loop, os._exit, a memory hog, a malformed notebook). Each
test then reads that run's results: the solutions keep full marks next to every bad submission,
each mistake costs exactly its cells, no tampering raises a score, each bad input gets its status.
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from answer_variants import LAYER_MISTAKES, LOSS_MISTAKES, TRAINING_MISTAKES, TUNING_MISTAKES, WEIGHTS_MISTAKES
from conftest import NOTEBOOKS, ROOT, load_notebook
from grading_helpers import (Mistake, answers, failing_cells, possible_points, with_prefix, write_notebook,
                             written_ids)
from lablib import cells
from lablib.cli import main
from lablib.grading import paths
from lablib.grading.autograde import GradeRun, grade
from lablib.grading.gradebook import autograded_path, db_url
from lablib.grading.in_kernel import in_kernel_review, run_in_kernel
from lablib.grading.notebook import outline
from lablib.grading.plan import plan_notebook
from lablib.grading.release import release
from lablib.grading.results import NotebookResult, Status, TestResult
from lablib.grading.results import load_results as _load_results
from lablib.grading.collect import collect
from lablib.grading.export import export
from lablib.grading.feedback import feedback
from test_nb03_grading import GRADING_MISTAKES as BACKPROP_MISTAKES

STEMS = ["01_layers", "02_losses", "03_backprop", "04_training", "05_tuning", "06_weights"]
CELL_TIMEOUT = 8.0  # seconds; every test cell takes well under one, even on a loaded machine
POSSIBLE = {stem: possible_points(stem) for stem in STEMS}

MISTAKES = {  # (table, mistake): a few graded parts of every notebook
    "01_layers": [(LAYER_MISTAKES, "linear: averages dW over the batch"),
                  (LAYER_MISTAKES, "relu: forward clips its input in place"),
                  (LAYER_MISTAKES, "sigmoid: derivative missing (1 - s)")],
    "02_losses": [(LOSS_MISTAKES, "hinge: margin hard-coded to 1"),
                  (LOSS_MISTAKES, "cross-entropy: gradient without 1/N")],
    "03_backprop": [(BACKPROP_MISTAKES, name) for name in sorted(BACKPROP_MISTAKES)],
    "04_training": [(TRAINING_MISTAKES, "checkpoint: keeps references, not copies"),
                    (TRAINING_MISTAKES, "sgd: learning rate folded into the velocity"),
                    (TRAINING_MISTAKES, "train_step: two optimizer steps")],
    "05_tuning": [(TUNING_MISTAKES, "exponential: no floor"),
                  (TUNING_MISTAKES, "grid_search: NaN can win (no finiteness check)")],
    "06_weights": [(WEIGHTS_MISTAKES, "normalize: no guard for an all-zero image (0 / 0 = nan)"),
                   (WEIGHTS_MISTAKES, "pca: ratio of the kept components only (they always add up to 1)")],
}


def mistaken(stem: str) -> list[Mistake]:
    """The mistakes the "mistakes" student makes in notebook `stem` (the rows MISTAKES names)."""
    return [table[name] for table, name in MISTAKES[stem]]


def expected_failures(stem: str) -> set[str]:
    return set().union(*(row[3] for row in mistaken(stem)))


PATCHING = '''
import sys, traceback
import numpy as np
import lablib, lablib.gradcheck, lablib.gradcheck.checks as _checks
np.allclose = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
lablib.check_layer = lablib.gradcheck.check_layer = _checks.check_layer = lambda *a, **k: None
lablib.CheckReport.assert_ok = lambda self, *a, **k: self
try:  # an IPython input transformer that blanks every later cell (the tests)
    get_ipython().input_transformers_cleanup.append(lambda lines: [])
except NameError:
    pass
sys.settrace(lambda *a: None)
sys.excepthook = lambda *a: None
traceback.format_exception = lambda *a, **k: []
'''

LYING_ARRAYS = '''
class Liar(np.ndarray):
    """An array that says it equals anything, and whose differences are zero."""
    def __eq__(self, other): return np.ones(np.shape(self), dtype=bool).view(Liar)
    def __sub__(self, other): return np.zeros(np.shape(self)).view(Liar)
    __rsub__ = __sub__
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        return np.zeros(np.shape(inputs[0]))

class Linear(Module):
    def __init__(self, in_features, out_features, rng=None):
        self.W = Parameter(np.zeros((in_features, out_features)))
        self.b = Parameter(np.zeros(out_features))

    def forward(self, x):
        return np.zeros((len(x), self.W.data.shape[1])).view(Liar)

    def backward(self, dout):
        self.W.grad = np.zeros(self.W.data.shape).view(Liar)
        self.b.grad = np.zeros(self.b.data.shape).view(Liar)
        return np.zeros((len(dout), self.W.data.shape[0])).view(Liar)
'''


def reading_source(repo: Path) -> str:
    return f'''
import os
_found = None
for _path in [{str(repo / "notebooks" / "01_layers.ipynb")!r},
              os.path.relpath({str(repo / "notebooks" / "01_layers.ipynb")!r}),
              "../../notebooks/01_layers.ipynb", "../notebooks/01_layers.ipynb", "notebooks/01_layers.ipynb",
              os.path.join(os.environ.get("LABLIB_BUILD", "/nonexistent"), "course/source/backprop-lab/01_layers.ipynb")]:
    try:
        _found = open(_path).read()
        break
    except OSError:
        pass
if _found:  # run the instructor's solutions instead of writing them
    import json
    for _cell in json.loads(_found)["cells"]:
        if _cell["cell_type"] == "code" and _cell["metadata"].get("nbgrader", {{}}).get("solution"):
            exec("".join(_cell["source"]), globals())
'''


def writing_build(build: Path) -> str:
    return f'''
import json, os
_fake = {{"student": "solution", "notebook": "01_layers.ipynb", "status": "graded", "tests": []}}
for _path in [{str(build / "results" / "solution" / "01_layers.json")!r},
              {str(build / "results" / "writer" / "01_layers.json")!r},
              {str(build / "course" / "gradebook.db")!r}, {str(build / "grades.csv")!r}]:
    try:
        os.makedirs(os.path.dirname(_path), exist_ok=True)
        with open(_path, "w") as _fh:
            json.dump(_fake, _fh)
    except OSError:
        pass
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Collect and grade the whole class once; returns (build, results, run, seconds)."""
    base = tmp_path_factory.mktemp("grading")
    build, source = base / "build", base / "submissions"
    release(build)  # the gradebook knows the assignment, as in the instructor's workflow
    released = paths.course_root(build) / "release" / paths.ASSIGNMENT_ID
    for stem in STEMS:
        written = {gid: f"My answer to {gid}." for gid in written_ids(stem)}
        write_notebook(source / "solution", stem, {**answers(stem, "solution"), **written}, released)
        write_notebook(source / "blank", stem, answers(stem, "blank"), released)
        write_notebook(source / "mistakes", stem, answers(stem, mistakes=mistaken(stem)), released)
    mistakes = answers("01_layers", mistakes=mistaken("01_layers"))
    write_notebook(source / "patcher", "01_layers", with_prefix(mistakes, "linear", PATCHING))
    write_notebook(source / "liar", "01_layers", {**mistakes, "linear": LYING_ARRAYS})
    write_notebook(source / "reader", "01_layers", with_prefix(answers("01_layers", "blank"), "linear", reading_source(ROOT)))
    write_notebook(source / "writer", "01_layers", with_prefix(mistakes, "linear", writing_build(build)))
    write_notebook(source / "looper", "02_losses", with_prefix(answers("02_losses", "solution"), "softmax", "while True:\n    pass"))
    crash = answers("02_losses", "solution")
    crash["euclidean"] = crash["euclidean"].replace('"""\n        ### BEGIN SOLUTION\n        target',
                                                    '"""\n        import os; os._exit(1)\n        target', 1)
    assert "os._exit" in crash["euclidean"]
    write_notebook(source / "crasher", "02_losses", crash)
    write_notebook(source / "hog", "02_losses",
                   with_prefix(answers("02_losses", "solution"), "hinge", "hog = np.ones(10 * 1024 ** 3 // 8)"))
    (source / "broken").mkdir()
    (source / "broken" / "01_layers.ipynb").write_text('{"cells": [ {"cell_type": "code", "sour')
    write_notebook(source / "broken", "02_losses", answers("02_losses", "solution"))

    collected = collect(source, build)
    assert not collected.problems
    start = time.monotonic()
    run = grade(build, jobs=2, cell_timeout=CELL_TIMEOUT, notebook_timeout=120, memory_mb=2048, progress=False)
    seconds = time.monotonic() - start
    return build, load_results(build), run, seconds


def load_results(build: Path) -> dict[str, dict[str, NotebookResult]]:
    return _load_results(paths.results_root(build))


def score(results, student: str, stem: str) -> float:
    return results[student][f"{stem}.ipynb"].earned


def failed(results, student: str, stem: str) -> set[str]:
    return {t.grade_id for t in results[student][f"{stem}.ipynb"].tests if t.status != "passed"}


@pytest.mark.parametrize("stem", STEMS)
def test_solutions_get_full_marks(graded, stem):
    _, results, _, _ = graded
    grade_ = results["solution"][f"{stem}.ipynb"]
    assert grade_.status == "graded"
    assert failed(results, "solution", stem) == set(), [t.error for t in grade_.tests if t.error]
    assert grade_.earned == grade_.possible == POSSIBLE[stem]


@pytest.mark.parametrize("stem", STEMS)
def test_blank_release_scores_zero(graded, stem):
    _, results, _, _ = graded
    assert results["blank"][f"{stem}.ipynb"].status == "graded"
    assert score(results, "blank", stem) == 0.0


@pytest.mark.parametrize("stem", STEMS)
def test_each_mistake_loses_exactly_its_cells(graded, stem):
    _, results, _, _ = graded
    assert failed(results, "mistakes", stem) == expected_failures(stem)
    assert score(results, "mistakes", stem) == POSSIBLE[stem] - len(expected_failures(stem))


def test_failure_messages_are_the_diagnosis(graded):
    _, results, _, _ = graded
    tests = {t.grade_id: t for t in results["mistakes"]["01_layers.ipynb"].tests}
    assert "dW" in tests["test_linear_dW"].error and "Traceback" not in tests["test_linear_dW"].error
    assert "in place" in tests["test_relu_forward"].error  # the input mutation seen across the boundary
    blank = {t.grade_id: t for t in results["blank"]["01_layers.ipynb"].tests}
    assert "NotImplementedError" in blank["test_linear_forward"].error
    assert "not written yet" in blank["test_linear_forward"].error


@pytest.mark.parametrize("student", ["patcher", "writer"])
def test_tampering_gains_nothing_over_the_same_mistakes(graded, student):
    _, results, _, _ = graded
    assert failed(results, student, "01_layers") == expected_failures("01_layers")
    assert score(results, student, "01_layers") == score(results, "mistakes", "01_layers")


def test_lying_array_subclass_gains_nothing(graded):
    _, results, _, _ = graded
    # the same code returning plain arrays, run in-process: what an honest submission of it scores
    honest = {**answers("01_layers", mistakes=mistaken("01_layers")), "linear": LYING_ARRAYS.replace(".view(Liar)", "")}
    assert failed(results, "liar", "01_layers") == failing_cells("01_layers", honest)
    assert "test_linear_forward" in failed(results, "liar", "01_layers")


def test_reading_the_source_notebook_gains_nothing(graded):
    _, results, _, _ = graded
    assert score(results, "reader", "01_layers") == 0.0
    assert "NotImplementedError" in results["reader"]["01_layers.ipynb"].tests[0].error


def test_writing_the_build_folder_changes_no_result(graded):
    build, results, _, _ = graded
    assert score(results, "solution", "01_layers") == POSSIBLE["01_layers"]  # its result file was a target
    for path in (build / "results").glob("*/*.json"):
        data = json.loads(path.read_text())
        assert data.get("tests"), f"{path} was overwritten"


def test_infinite_loop_times_out_and_the_rest_is_graded(graded):
    _, results, _, _ = graded
    g = results["looper"]["02_losses.ipynb"]
    assert g.status == "timed out"
    assert "timed out" in g.cell_errors["softmax"]
    assert failed(results, "looper", "02_losses") == {"test_softmax_values", "test_softmax_stable"}


def test_os_exit_is_kernel_died_and_the_rest_is_graded(graded):
    _, results, _, _ = graded
    g = results["crasher"]["02_losses.ipynb"]
    assert g.status == "kernel died"
    tests = {t.grade_id: t for t in g.tests}
    assert tests["test_euclidean_forward"].status == "kernel died"
    assert failed(results, "crasher", "02_losses") == {"test_euclidean_forward", "test_euclidean_backward"}


def test_memory_hog_is_killed_for_memory(graded):
    _, results, _, _ = graded
    g = results["hog"]["02_losses.ipynb"]
    assert g.status == "killed for memory"
    assert "MemoryError" in g.cell_errors["hinge"]
    assert failed(results, "hog", "02_losses") == {"test_hinge_forward", "test_hinge_backward"}


def test_malformed_notebook_is_named_and_the_other_is_graded(graded):
    _, results, _, _ = graded
    assert results["broken"]["01_layers.ipynb"].status == "malformed notebook"
    assert results["broken"]["02_losses.ipynb"].status == "graded"
    assert score(results, "broken", "02_losses") == POSSIBLE["02_losses"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the worker is isolated (own uid, hidden course) only when grading as root")
def test_worker_was_isolated(graded):
    _, results, _, _ = graded
    isolation = results["solution"]["01_layers.ipynb"].isolation
    assert "uid" in isolation and "hidden" in isolation and "NOT ISOLATED" not in isolation


def test_export_names_every_status(graded):
    build, _, _, _ = graded
    main(["export", "--build", str(build)])
    rows = {r["student"]: r for r in csv.DictReader(paths.grades_csv(build).open())}
    assert rows["solution"]["total"] == f"{sum(POSSIBLE.values()):g}" and rows["solution"]["review"] == ""
    assert rows["blank"]["total"] == "0" and rows["blank"]["01_layers status"] == "graded"
    assert rows["looper"]["02_losses status"] == "timed out"
    assert rows["crasher"]["02_losses status"] == "kernel died"
    assert rows["hog"]["02_losses status"] == "killed for memory"
    assert rows["broken"]["01_layers status"] == "malformed notebook"
    assert rows["broken"]["04_training status"] == "missing"
    assert rows["looper"]["review"] and rows["broken"]["review"]


def test_feedback_has_diagnoses_but_no_hidden_tests(graded):
    build, _, _, _ = graded
    pages = feedback(build)
    assert len(pages) == len(load_results(build))
    hidden_lines = set()
    for stem in STEMS:
        for cell in load_notebook(stem).cells:
            if cell.cell_type == "code" and cells.HIDDEN_BEGIN in cell.source:
                block = cell.source.split(cells.HIDDEN_BEGIN, 1)[1].split(cells.HIDDEN_END, 1)[0]
                hidden_lines |= {line.strip() for line in block.splitlines() if len(line.strip()) > 25}
    for page in pages:
        text = page.read_text()
        assert "Traceback" not in text and cells.HIDDEN_BEGIN not in text
        leaked = [line for line in hidden_lines if line in text]
        assert not leaked, f"{page.name} shows hidden-test source: {leaked[:3]}"
    mistakes = (paths.feedback_root(build) / "mistakes.html").read_text()
    assert "dW" in mistakes and "failed" in mistakes


def test_rerun_skips_finished_results(graded):
    build, results, _, _ = graded
    regraded = []
    run = grade(build, jobs=2, cell_timeout=CELL_TIMEOUT, progress=False, on_result=regraded.append)
    before = {(g.student, g.notebook): (g.status, g.message) for r in results.values() for g in r.values()}
    assert [(g.student, g.notebook, before.get((g.student, g.notebook))) for g in regraded] == []
    assert run.graded == 0 and run.skipped == sum(len(r) for r in results.values())


def test_collect_accepts_folders_and_lms_zips(tmp_path):
    import zipfile

    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(NOTEBOOKS / "01_layers.ipynb", "submissions/alice_12_34_01_layers.ipynb")
        zf.write(NOTEBOOKS / "02_losses.ipynb", "submissions/alice_12_34_02_losses-1.ipynb")
        zf.write(NOTEBOOKS / "01_layers.ipynb", "submissions/bob_01_layers.ipynb")
        zf.writestr("submissions/bob_notes.ipynb", "{}")
        zf.writestr("submissions/bad id_01_layers.ipynb", "{}")
        zf.writestr("../escape_01_layers.ipynb", "{}")
    result = collect(archive, tmp_path / "build")
    assert result.students == {"alice": ["01_layers.ipynb", "02_losses.ipynb"], "bob": ["01_layers.ipynb"]}
    assert len(result.problems) == 3
    folder = tmp_path / "folder"
    for student in ("carol", "dan"):
        (folder / student / "backprop-lab").mkdir(parents=True)
        (folder / student / "backprop-lab" / "04_training.ipynb").write_text("{}")
    assert collect(folder, tmp_path / "build").students == {"carol": ["04_training.ipynb"],
                                                            "dan": ["04_training.ipynb"]}
    submitted = paths.submitted_root(tmp_path / "build")
    assert sorted(p.parent.parent.name for p in submitted.glob("*/backprop-lab/*.ipynb")) == \
        ["alice", "alice", "bob", "carol", "dan"]
    # Moodle's "download all submissions": a folder per student, named with spaces (TA review: skipped)
    moodle = tmp_path / "moodle.zip"
    with zipfile.ZipFile(moodle, "w") as zf:
        zf.write(NOTEBOOKS / "01_layers.ipynb", "Jane Doe_98765_assignsubmission_file_/01_layers.ipynb")
        zf.write(NOTEBOOKS / "02_losses.ipynb", "Émile Zola_4_assignsubmission_file_/02_losses.ipynb")
    result = collect(moodle, tmp_path / "build")
    assert result.students == {"Jane-Doe_98765": ["01_layers.ipynb"], "Emile-Zola_4": ["02_losses.ipynb"]}
    assert not result.problems


@pytest.fixture
def umask_022():
    """The test runs under umask 022 (a TA's usual); the process's own umask is restored after."""
    import os

    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_resubmission_replaces_the_earlier_one_and_keeps_it(tmp_path, umask_022):
    """A TA collected one resubmitted notebook; the student's five others vanished without a word, and the
    student was graded 'missing' on them (TA review). Now the earlier files are kept and the report says so."""
    import os
    import stat

    first, second = tmp_path / "first", tmp_path / "second"
    (first / "carol").mkdir(parents=True)
    for stem in ("01_layers", "02_losses"):
        (first / "carol" / f"{stem}.ipynb").write_text(stem)
    second.mkdir()
    (second / "carol_1234_01_layers (1).ipynb").write_text("new 01")  # a browser's name for a second download
    (second / "dave_01_layers-Copy1.ipynb").write_text("dave's 01")   # JupyterLab's "Duplicate"
    build = tmp_path / "build"
    assert not collect(first, build).replaced
    result = collect(second, build)
    assert result.students == {"carol": ["01_layers.ipynb"], "dave": ["01_layers.ipynb"]} and not result.problems
    (note,) = result.replaced
    assert note.startswith("carol: replaces the submission collected at ") and "lacks 02_losses.ipynb" in note
    assert "carol" in result.to_text() and "lacks 02_losses.ipynb" in result.to_text()
    submitted = paths.submitted_root(build) / "carol" / paths.ASSIGNMENT_ID
    assert (submitted / "01_layers.ipynb").read_text() == "new 01" and not (submitted / "02_losses.ipynb").exists()
    (kept,) = (paths.course_root(build) / "replaced" / "carol").iterdir()
    assert (kept / "02_losses.ipynb").read_text() == "02_losses" and str(kept) in note
    # a second TA account can read what was collected (mkdtemp's 0700 hid it)
    assert stat.S_IMODE(submitted.stat().st_mode) == 0o755


def test_written_files_follow_the_umask_not_mkstemp(tmp_path, umask_022):
    import os
    import stat

    from lablib.grading.results import umask, write_atomic

    os.umask(0o027)
    assert umask() == 0o027
    write_atomic(tmp_path / "grades.csv", "student,total\n")
    assert stat.S_IMODE((tmp_path / "grades.csv").stat().st_mode) == 0o640
    os.umask(0o022)
    write_atomic(tmp_path / "grades.csv", "student,total\n")
    assert stat.S_IMODE((tmp_path / "grades.csv").stat().st_mode) == 0o644


# --------------------------------------------------------------------------------------------------
# the in-kernel comparison (issue 3, item 2): flagged for review where it disagrees, never scored


def export_rows(build: Path) -> dict[str, dict[str, str]]:
    export(build)
    return {r["student"]: r for r in csv.DictReader(paths.grades_csv(build).open())}


@pytest.mark.parametrize("student", ["solution", "blank", "mistakes"])
def test_honest_submissions_agree_in_kernel(graded, student):
    build, results, _, _ = graded
    for stem in STEMS:
        g = results[student][f"{stem}.ipynb"]
        assert g.in_kernel_status == "complete", g.in_kernel_message
        assert g.in_kernel_score == g.earned and g.disagreements == []
        assert {gid for gid, s in g.in_kernel_tests.items() if s != "passed"} == failed(results, student, stem)
    row = export_rows(build)[student]
    assert row["in_kernel"] == row["auto"] and row["review"] == ""


def test_tampering_scores_higher_in_kernel_and_is_flagged(graded):
    build, results, _, _ = graded
    g = results["patcher"]["01_layers.ipynb"]
    assert g.earned == score(results, "mistakes", "01_layers")  # the authoritative score is unchanged
    assert g.in_kernel_score > g.earned
    assert g.disagreements and set(g.disagreements) <= expected_failures("01_layers")
    assert g.in_kernel_higher == g.disagreements
    row = export_rows(build)["patcher"]
    assert row["auto"] == f"{g.earned:g}" and row["in_kernel"] == f"{g.in_kernel_score:g}"
    assert (f"in-kernel {g.in_kernel_score:g}/{g.possible:g} vs authoritative {g.earned:g}/{g.possible:g} "
            "in 01_layers: tampering suspected, cells ") in row["review"]
    assert all(cell in row["review"] for cell in g.disagreements)
    summary = GradeRun(list(itertools.chain.from_iterable(r.values() for r in results.values())), 0, 0, 1.0, 1)
    assert "patcher/01_layers.ipynb: in-kernel" in summary.summary()


def test_feedback_does_not_show_in_kernel_results(graded):
    build, _, _, _ = graded
    (page,) = feedback(build, students=["patcher"])
    text = page.read_text()
    assert "in-kernel" not in text.lower() and "tampering" not in text and "13 / 13" not in text


def test_in_kernel_timeout_or_death_is_recorded_and_changes_nothing(graded):
    build, results, _, _ = graded
    looper, crasher = results["looper"]["02_losses.ipynb"], results["crasher"]["02_losses.ipynb"]
    assert looper.in_kernel_status == "timed out" and "softmax" in looper.in_kernel_message
    assert crasher.in_kernel_status == "kernel died"
    assert crasher.in_kernel_tests["test_euclidean_forward"] == "kernel died"
    for g in (looper, crasher):  # the cells it could compare agree; the authoritative grade is as tested above
        assert g.disagreements == [] and g.in_kernel_score <= g.earned
    rows = export_rows(build)
    assert "in-kernel" not in rows["looper"]["review"]  # its status already asks for review
    missing = results["broken"]["01_layers.ipynb"]
    assert missing.in_kernel_score is None and rows["broken"]["in_kernel"] == rows["broken"]["auto"]


def test_in_kernel_review_text():
    tests = [TestResult(f"t{i}", "part", "", 1.0, status)
             for i, status in enumerate([Status.PASSED, Status.FAILED, Status.PASSED])]
    g = NotebookResult("01_layers.ipynb", Status.GRADED, student="s", tests=tests, in_kernel_score=2.0,
                       in_kernel_status=Status.COMPLETE, disagreements=["t1", "t2"],
                       in_kernel_tests={"t0": Status.PASSED, "t1": Status.PASSED, "t2": Status.FAILED})
    assert in_kernel_review(g) == ("in-kernel 2/3 vs authoritative 2/3 in 01_layers: tampering suspected, cells t1; "
                                   "and failed in-kernel but passed authoritatively, cells t2")
    g.disagreements, g.in_kernel_tests["t1"] = ["t2"], Status.FAILED
    assert "tampering" not in in_kernel_review(g) and "cells t2" in in_kernel_review(g)
    g.disagreements, g.in_kernel_status, g.in_kernel_message = [], Status.DIED, "stopped at cell t1: gone"
    assert in_kernel_review(g) == ("01_layers in-kernel run kernel died (the cells after it not compared): "
                                   "stopped at cell t1: gone")
    g.status = Status.DIED
    assert in_kernel_review(g) == ""
    g.in_kernel_score, g.in_kernel_status = None, None
    assert in_kernel_review(g) == ""


def test_in_kernel_run_that_cannot_start_leaves_the_grade_alone():
    plan = plan_notebook(load_notebook("01_layers"))
    result = NotebookResult("01_layers.ipynb", Status.GRADED, student="s", tests=plan.fresh_results())
    for t in result.tests:
        t.status = Status.PASSED
    before = copy.deepcopy(result.tests)

    def broken_sandbox():
        raise OSError("no room")

    run_in_kernel(plan, {}, broken_sandbox, result, 1.0, 1.0)
    assert result.tests == before and result.status == "graded"
    assert result.in_kernel_status == "failed" and "no room" in result.in_kernel_message
    assert result.in_kernel_score == 0 and result.disagreements == []
    assert "in-kernel run failed" in in_kernel_review(result)


# --------------------------------------------------------------------------------------------------
# nbgrader's gradebook: formgrader's view of the results, manual grades, exports (issue 11)


def submission_notebook(gb, student: str, stem: str):
    return gb.find_submission_notebook(stem, paths.ASSIGNMENT_ID, student)


def test_gradebook_holds_the_authoritative_auto_scores(graded):
    from nbgrader.api import Gradebook
    from nbgrader.utils import determine_grade, is_grade

    build, results, run, _ = graded
    assert run.gradebook.startswith("Recorded"), run.gradebook
    with Gradebook(db_url(build)) as gb:
        for student, notebooks in results.items():
            for name, result in notebooks.items():
                auto = {g.name: g.auto_score for g in submission_notebook(gb, student, Path(name).stem).grades}
                assert {t.grade_id: auto[t.grade_id] for t in result.tests} == \
                    {t.grade_id: t.earned for t in result.tests}, (student, name)
                # nbgrader's own reading of the autograded notebook gives the same scores
                nb = nbformat.read(str(autograded_path(build, student, name)), as_version=4)
                ours = {t.grade_id: t.earned for t in result.tests}
                for cell in nb.cells:
                    gid = cells.grade_id(cell)
                    if is_grade(cell) and gid in ours:
                        assert determine_grade(cell)[0] == ours[gid], (student, name, gid)
        written = written_ids("01_layers")
        assert written, "notebook 01 has no written answers: this check would check nothing"
        solution = {g.name: g for g in submission_notebook(gb, "solution", "01_layers").grades}
        blank = {g.name: g for g in submission_notebook(gb, "blank", "01_layers").grades}
        for gid in written:  # an answer waits for the TA; an untouched "YOUR ANSWER HERE" is no response
            assert solution[gid].auto_score is None and solution[gid].needs_manual_grade
            assert blank[gid].auto_score == 0 and not blank[gid].needs_manual_grade


def test_autograded_notebooks_show_the_diagnosis_and_the_students_answers(graded):
    build, results, _, _ = graded
    nb = nbformat.read(str(autograded_path(build, "mistakes", "01_layers.ipynb")), as_version=4)
    by_id = {cells.grade_id(c): c for c in nb.cells if cells.grade_id(c)}
    (error,) = by_id["test_linear_dW"].outputs
    assert error.output_type == "error" and "dW" in error.evalue
    assert by_id["test_linear_forward"].outputs[0].text.startswith("passed")
    assert cells.HIDDEN_BEGIN in by_id["test_linear_dW"].source  # what ran, for the TA
    solution = nbformat.read(str(autograded_path(build, "solution", "01_layers.ipynb")), as_version=4)
    gid = written_ids("01_layers")[0]
    assert [c.source for c in solution.cells if cells.grade_id(c) == gid] == [f"My answer to {gid}."]


def nbgrader_cli(build: Path, *args: str) -> None:
    env = {**os.environ, paths.BUILD_ENV: str(build),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def answer_block(page: str, gid: str, stem: str) -> str:
    """The panel of written answer `gid` of notebook `stem` on a feedback page (ids repeat across notebooks)."""
    section = page.split(f"<h2>{stem}.ipynb", 1)[1].split("<h2>", 1)[0]
    assert f'<div class="answer" id="{stem}-{gid}">' in section, f"no panel for {gid} in {stem}"
    return section.split(f'<div class="answer" id="{stem}-{gid}">', 1)[1].split('<div class="answer" ', 1)[0]


def test_manual_grades_flow_into_the_export_and_survive_a_regrade(graded, tmp_path):
    """release → collect → grade (the fixture) → a TA grades the written answers through nbgrader's
    Gradebook API, as formgrader does → both exports count them → a forced regrade keeps them."""
    from nbgrader.api import Gradebook

    build, results, _, _ = graded
    given = {}
    with Gradebook(db_url(build)) as gb:
        for stem in STEMS:
            for gid in written_ids(stem):
                grade_ = gb.find_grade(gid, stem, paths.ASSIGNMENT_ID, "solution")
                grade_.manual_score = given[stem, gid] = grade_.max_score - (1 if stem == "02_losses" else 0)
                gb.find_comment(gid, stem, paths.ASSIGNMENT_ID, "solution").manual_comment = f"Clear. <{gid}> & right"
        gb.find_comment("linear", "01_layers", paths.ASSIGNMENT_ID, "solution").manual_comment = "Neat <vectorized> code."
        gb.db.commit()
    rows = export_rows(build)
    row = rows["solution"]
    for stem in STEMS:
        written = sum(v for (s, _), v in given.items() if s == stem)
        auto = results["solution"][f"{stem}.ipynb"].earned
        assert (float(row[f"{stem} auto"]), float(row[f"{stem} written"]), float(row[stem])) == \
            (auto, written, auto + written)
    assert float(row["total"]) == float(row["auto"]) + float(row["written"]) == \
        sum(POSSIBLE.values()) + sum(given.values())
    assert row["written_open"] == "0" and int(rows["mistakes"]["written_open"]) == 0  # untouched: no response
    assert rows["blank"]["written"] == "" and rows["blank"]["total"] == "0"
    assert f"{STEMS[0]}: Clear." in row["comments"] and rows["blank"]["comments"] == ""  # the TA's comments too

    # the student's feedback page shows, as nbgrader's feedback does, each written answer with its score and
    # the TA's comment (escaped), a comment on a code answer, and the autograded parts as before
    (page,) = feedback(build, students=["solution"])
    text = page.read_text()
    for (stem, gid), score_ in given.items():
        block = answer_block(text, gid, stem)
        assert f"My answer to {gid}." in block and f"Score: {score_:g} / " in block, (stem, gid)
        assert f"<b>Comments:</b> <span class=\"typed\">Clear. &lt;{gid}&gt; &amp; right</span>" in block, (stem, gid)
    assert "Neat &lt;vectorized&gt; code." in text and "Comments on your code" in text
    assert "not graded yet" not in text and "passed" in text
    written_possible = sum(outline(load_notebook(stem)).manual_points for stem in STEMS)
    assert f"Written answers, graded by hand: <b>{sum(given.values()):g} / {written_possible:g}</b>." in text
    (blank,) = feedback(build, students=["blank"])  # untouched answers: nbgrader's "No response.", 0 points
    block = answer_block(blank.read_text(), written_ids("01_layers")[0], "01_layers")
    assert "Score: 0 / " in block and "No response." in block and "Clear." not in blank.read_text()

    # nbgrader's own CSV export agrees on every total; its plug-in point writes our CSV
    nbgrader_cli(build, "export", "--to", str(tmp_path / "nbgrader.csv"))
    theirs = {r["student_id"]: float(r["score"]) for r in csv.DictReader((tmp_path / "nbgrader.csv").open())}
    assert theirs == {s: float(r["total"]) for s, r in rows.items() if s in theirs} and "solution" in theirs
    nbgrader_cli(build, "export", "--exporter=lablib.grading.export.GradesCsv", "--to", str(tmp_path / "plugin.csv"))
    assert (tmp_path / "plugin.csv").read_text() == paths.grades_csv(build).read_text()

    run = grade(build, students=["solution"], force=True, jobs=2, cell_timeout=CELL_TIMEOUT, progress=False,
                in_kernel=False)
    assert run.graded == len(STEMS) and run.gradebook.startswith("Recorded")
    assert export_rows(build)["solution"]["total"] == row["total"]
    with Gradebook(db_url(build)) as gb:
        for (stem, gid), score_ in given.items():
            assert gb.find_grade(gid, stem, paths.ASSIGNMENT_ID, "solution").manual_score == score_


def test_an_answer_cell_that_lost_its_metadata_is_still_graded_and_flagged(tmp_path):
    """A student who deletes and retypes an answer cell (or clears its metadata) keeps the points that
    their code earns, as in nbgrader and in the self-check; the message says which cell was recovered."""
    from lablib.grading.grader import grade_notebook

    write_notebook(tmp_path / "ada", "01_layers", answers("01_layers", "solution"))
    path = tmp_path / "ada" / "01_layers.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    retyped = next(c for c in nb.cells if cells.grade_id(c) == "sigmoid")
    retyped.metadata = {}
    nbformat.write(nb, str(path))
    result = grade_notebook(NOTEBOOKS / "01_layers.ipynb", tmp_path / "ada", "ada", cell_timeout=CELL_TIMEOUT,
                            in_kernel=False)
    assert result.status is Status.GRADED
    assert result.earned == result.possible, [(t.grade_id, t.error) for t in result.tests if not t.passed]
    assert "sigmoid" in result.message and "metadata" in result.message
