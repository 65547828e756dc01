"""Notebook 06 looks at the model notebook 04 saved, through the student's own load_model; without
one (or with one load_model cannot read) it says so in one line and trains a stand-in, never a traceback.

The notebook's first cells run in-process, in the `grade` profile, with the build folder (where
checkpoints live) moved to a temporary one; the pictures are left to nbval.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from conftest import NOTEBOOKS, load_notebook, notebook_path, runnable_here
from lablib import cells
from lablib.checkpoints import checkpoint_path
from lablib.grading.paths import BUILD_ENV
from lablib.training import PROFILE_VAR

pytestmark = pytest.mark.skipif(not runnable_here([notebook_path("06_weights")]),
                                reason="Fashion-MNIST is not available here")

#: The cells up to the model and its test accuracy; every later cell is left out.
UP_TO_THE_MODEL = ("setup", "reuse", "data", "load", "fallback")


def run_up_to_the_model(build, monkeypatch, before_load=None) -> tuple[dict, dict]:
    monkeypatch.setenv(BUILD_ENV, str(build))
    monkeypatch.setenv(PROFILE_VAR, "grade")
    nb = load_notebook("06_weights")
    later = {cells.grade_id(c): "" for c in nb.cells if c.cell_type == "code" and cells.grade_id(c) not in UP_TO_THE_MODEL}
    namespace: dict = {}
    with contextlib.chdir(NOTEBOOKS):
        if before_load is None:
            results = cells.run_cells(nb, replace=later, namespace=namespace)
        else:  # run the cells before "load", prepare the checkpoint, then the rest
            first = {gid: "" for gid in ("load", "fallback")}
            cells.run_cells(nb, replace={**later, **first}, namespace=namespace)
            before_load(namespace)
            rest = {gid: "" for gid in ("setup", "reuse", "data")}
            results = cells.run_cells(nb, replace={**later, **rest}, namespace=namespace)
    failed = {gid: r.error for gid, r in results.items() if gid in UP_TO_THE_MODEL and not r.passed}
    assert not failed
    return results, namespace


def test_without_a_checkpoint_it_says_so_in_one_line_and_trains_a_stand_in(tmp_path, monkeypatch):
    results, ns = run_up_to_the_model(tmp_path, monkeypatch)
    said = results["load"].output.strip()
    assert said.startswith("No model from notebook 04 yet") and "\n" not in said and "Traceback" not in said
    assert ns["origin"].startswith("a stand-in trained here")
    assert "test accuracy" in results["fallback"].output


def test_a_checkpoint_load_model_cannot_read_is_named_and_replaced(tmp_path, monkeypatch):
    def corrupt(ns):
        checkpoint_path("mlp_fashion").write_bytes(b"not a zip file")

    results, ns = run_up_to_the_model(tmp_path, monkeypatch, corrupt)
    said = results["load"].output.strip()
    assert said.startswith("Your load_model could not read") and "\n" not in said
    assert ns["origin"].startswith("a stand-in trained here")


def test_the_model_notebook_04_saved_is_the_one_it_looks_at(tmp_path, monkeypatch):
    def save_like_notebook_04(ns):
        training, rng = ns["training"], np.random.default_rng(4)
        model = training.Sequential(training.layers.Linear(784, 7, rng=rng), training.layers.ReLU(),
                                    training.layers.Linear(7, 10, rng=rng))
        training.save_model(model, str(checkpoint_path("mlp_fashion")))
        ns["saved_weights"] = model.layers[0].W.data.copy()

    results, ns = run_up_to_the_model(tmp_path, monkeypatch, save_like_notebook_04)
    assert results["load"].output == ""
    assert ns["origin"] == "your model from notebook 04"
    np.testing.assert_array_equal(ns["model"].layers[0].W.data, ns["saved_weights"])
    assert (tmp_path / "checkpoints" / "grade" / "mlp_fashion.npz").is_file()
