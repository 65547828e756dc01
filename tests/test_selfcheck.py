"""`lablib.self_check()`: the self-check from inside a notebook, as an HTML table in JupyterLab."""

from __future__ import annotations

import json
import shutil

import pytest

import lablib
from lablib.grading.check import CHILD_VAR, CheckError
from lablib.grading.selfcheck import SelfCheckSkipped

TINY = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
    {"cell_type": "markdown", "id": "h", "metadata": {}, "source": "## Part A (3 points)"},
    {"cell_type": "code", "id": "a", "metadata": {"nbgrader": {"grade_id": "x", "solution": True}},
     "source": "x = 2", "outputs": [], "execution_count": None},
    {"cell_type": "code", "id": "b", "metadata": {"nbgrader": {"grade_id": "test_x", "grade": True, "solution": False,
                                                                 "points": 2}},
     "source": '"""x is even"""\nassert x % 2 == 0', "outputs": [], "execution_count": None},
    {"cell_type": "code", "id": "c", "metadata": {"nbgrader": {"grade_id": "test_y", "grade": True, "solution": False,
                                                                 "points": 1}},
     "source": '"""x is one"""\nassert x == 1, "x should be 1 <here>"', "outputs": [], "execution_count": None},
    {"cell_type": "code", "id": "d", "metadata": {}, "source": "import lablib\nlablib.self_check()",
     "outputs": [], "execution_count": None},
]}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    path = tmp_path / "01_tiny.ipynb"
    path.write_text(json.dumps(TINY))
    shutil.copytree(lablib.__path__[0], tmp_path / "lablib")  # as in the release: lablib beside the notebook
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CHILD_VAR, raising=False)
    return path


def test_self_check_of_the_running_notebook_shows_a_table(tiny, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", str(tiny))  # what jupyter_server tells the kernel
    result = lablib.self_check()
    (nb,) = result.notebooks
    assert (nb.earned, nb.possible) == (2, 3) and not nb.cell_errors  # the self_check cell itself did nothing
    page = result._repr_html_()
    assert "<table" in page and "Part A (3 points)" in page and "x is even" in page
    assert "x should be 1 &lt;here&gt;" in page and "2 / 3" in page
    assert "01_tiny.ipynb: 2/3 points" in repr(result)


def test_self_check_by_name_and_its_errors(tiny, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert lablib.self_check("01_tiny.ipynb").earned == 2
    with pytest.raises(CheckError, match="which notebook"):
        lablib.self_check()
    monkeypatch.setenv(CHILD_VAR, "1")
    assert isinstance(lablib.self_check("01_tiny.ipynb"), SelfCheckSkipped)


# --------------------------------------------------------------------------------------------------
# a test cell the student edited or deleted: the grader runs the original, and so does the check


def released_beside(path) -> None:
    """What `lablib release` writes beside the released notebooks."""
    from lablib.grading import released

    released.write(path.parent, [path])


def edit(path, gid: str, source: str | None) -> None:
    """Replace test cell `gid`'s source in the saved notebook (None: delete the cell)."""
    nb = json.loads(path.read_text())
    cell = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == gid)
    if source is None:
        nb["cells"].remove(cell)
    else:
        cell["source"] = source
    path.write_text(json.dumps(nb))


def test_an_edited_test_cell_runs_as_released_and_the_check_says_so(tiny):
    released_beside(tiny)
    edit(tiny, "test_y", '"""x is one"""\nassert True  # made to pass')
    result = lablib.self_check("01_tiny.ipynb")
    (nb,) = result.notebooks
    assert (nb.earned, nb.possible) == (2, 3)  # what the grader gives: test_y fails as released
    failed = next(t for t in nb.tests if t.grade_id == "test_y")
    assert failed.status == "failed" and "x should be 1" in failed.error
    assert 'test cell test_y ("x is one") was edited in your notebook: the grader runs the original, and so did this check' \
        in repr(result)
    assert "test_y (&quot;x is one&quot;) was edited" in result._repr_html_()  # named as JupyterLab shows it
    assert json.loads(tiny.read_text())["cells"][3]["source"].endswith("# made to pass")  # the file is left alone


def test_a_deleted_test_cell_is_put_back_in_its_place(tiny):
    released_beside(tiny)
    edit(tiny, "test_y", None)
    (nb,) = lablib.self_check("01_tiny.ipynb").notebooks
    assert [t.grade_id for t in nb.tests] == ["test_x", "test_y"] and (nb.earned, nb.possible) == (2, 3)
    assert nb.notes == [n for n in nb.notes if 'test cell test_y ("x is one") was deleted in your notebook' in n] != []


def test_an_unchanged_notebook_gets_no_note(tiny):
    released_beside(tiny)
    (nb,) = lablib.self_check("01_tiny.ipynb").notebooks
    assert nb.notes == [] and (nb.earned, nb.possible) == (2, 3)


def test_an_edit_without_the_released_copy_is_noticed_by_checksum_and_counts_as_failed(tiny):
    from lablib.grading import notebook, released

    nb = json.loads(tiny.read_text())
    for cell in nb["cells"]:  # what nbgrader's generate_assignment writes into each graded cell
        if cell["metadata"].get("nbgrader", {}).get("grade"):
            cell["metadata"]["nbgrader"]["checksum"] = released.checksum(notebook.Node(cell))
    tiny.write_text(json.dumps(nb))
    edit(tiny, "test_x", '"""x is even"""\nassert x % 2 == 0  # unchanged logic, edited text')
    result = lablib.self_check("01_tiny.ipynb")
    (checked,) = result.notebooks
    tests = {t.grade_id: t for t in checked.tests}
    assert tests["test_x"].status == "failed" and "restore the original cell" in tests["test_x"].error
    assert checked.earned == 0 and not result.passed
    assert "nbgrader's checksum no longer matches" in repr(result) and "could not find" in repr(result)


def test_a_copied_test_cell_counts_once_as_at_grading(tiny):
    released_beside(tiny)
    nb = json.loads(tiny.read_text())
    nb["cells"].insert(3, {**nb["cells"][2], "id": "b2"})  # test_x pasted a second time
    tiny.write_text(json.dumps(nb))
    (checked,) = lablib.self_check("01_tiny.ipynb").notebooks
    assert [t.grade_id for t in checked.tests] == ["test_x", "test_y"] and (checked.earned, checked.possible) == (2, 3)
    assert any('test cell test_x ("x is even") appears more than once' in note for note in checked.notes)


def test_the_check_says_which_save_it_checked(tiny, monkeypatch):
    """The check reads the saved file: a student with unsaved edits was told '13 / 13, all pass' about code
    they had since broken, with no hint (student review)."""
    import os
    import time

    monkeypatch.setenv("JPY_SESSION_NAME", str(tiny))
    saved = time.time() - 300
    os.utime(tiny, (saved, saved))
    result = lablib.self_check()
    stamp = time.strftime("%H:%M:%S", time.localtime(saved))
    sentence = f"Checked 01_tiny.ipynb as saved at {stamp} (5 min ago): edits you have not saved are not checked."
    assert sentence in repr(result) and sentence in result._repr_html_()


def test_the_table_is_readable(tiny):
    from lablib.grading.selfcheck import _inline_code

    page = lablib.self_check("01_tiny.ipynb")._repr_html_()
    assert "word-break:normal" in page and "min-width" in page  # diagnoses wrap between words, with room
    assert _inline_code("Part A — `Linear` <3>") == "Part A — <code>Linear</code> &lt;3&gt;"
    assert _inline_code("a ` b") == "a ` b"
