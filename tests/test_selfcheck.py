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
