"""The graded test cells of notebooks 01-02, run in-process on variants of the answers.

- the solutions pass every graded cell, hidden tests included;
- the blank release (solution regions replaced as nbgrader does) fails every graded cell;
- each plausible wrong implementation fails exactly the cells of what it gets wrong;
- correct implementations in other styles pass every graded cell.

A backward is graded against the numeric gradient of the student's *own* forward, so a wrong
forward usually also fails the backward check that depends on it; the expected sets say so.
"""

from __future__ import annotations

import contextlib
import tempfile

import pytest

from answer_variants import (LAYER_ALTERNATIVES, LAYER_MISTAKES, LOSS_ALTERNATIVES, LOSS_MISTAKES,
                             TRAINING_ALTERNATIVES, TRAINING_MISTAKES)
from conftest import NOTEBOOKS, graded_cell_ids, load_notebook
from grading_helpers import ANSWERS, NEEDED, answer_source, failing_cells, mutate
from lablib import cells

STEMS = ["01_layers", "02_losses", "04_training", "06_weights"]


@pytest.mark.parametrize("stem", STEMS)
def test_solutions_pass_every_graded_cell_and_leave_no_temporary_files(stem, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where tempfile makes its folders
    assert failing_cells(stem) == set()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("stem", STEMS)
def test_blank_release_fails_every_graded_cell(stem):
    nb = load_notebook(stem)
    blank = {cells.grade_id(c): cells.blank_solutions(c.source) for c in nb.cells
             if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source}
    assert blank, "no answer cells found"
    assert failing_cells(stem, blank) == set(graded_cell_ids(stem))


@pytest.mark.parametrize("mistake", sorted(TRAINING_MISTAKES))
def test_training_mistake_loses_exactly_its_points(mistake):
    gid, old, new, expected = TRAINING_MISTAKES[mistake]
    assert failing_cells("04_training", mutate("04_training", gid, old, new)) == expected


@pytest.mark.parametrize("mistake", sorted(LAYER_MISTAKES))
def test_layer_mistake_loses_exactly_its_points(mistake):
    gid, old, new, expected = LAYER_MISTAKES[mistake]
    assert failing_cells("01_layers", mutate("01_layers", gid, old, new)) == expected


@pytest.mark.parametrize("mistake", sorted(LOSS_MISTAKES))
def test_loss_mistake_loses_exactly_its_points(mistake):
    gid, old, new, expected = LOSS_MISTAKES[mistake]
    assert failing_cells("02_losses", mutate("02_losses", gid, old, new)) == expected


def test_every_graded_cell_is_targeted_by_some_mistake():
    mistakes = [*LAYER_MISTAKES.values(), *LOSS_MISTAKES.values(), *TRAINING_MISTAKES.values()]
    targeted = set().union(*(m[3] for m in mistakes))
    assert set().union(*(graded_cell_ids(stem) for stem in ("01_layers", "02_losses", "04_training"))) <= targeted


def test_hidden_tests_catch_what_the_visible_ones_miss():
    replace = mutate("01_layers", *LAYER_MISTAKES["tanh: the exp quotient (only the hidden large-input tests see it)"][:3])
    assert failing_cells("01_layers", replace, hidden=False) == set()
    assert failing_cells("01_layers", replace) == {"test_tanh_forward", "test_tanh_backward"}


@pytest.mark.parametrize("style", sorted(LAYER_ALTERNATIVES))
def test_correct_layers_in_other_styles_get_full_marks(style):
    gid, source = LAYER_ALTERNATIVES[style]
    assert failing_cells("01_layers", {gid: source}) == set()


@pytest.mark.parametrize("style", sorted(LOSS_ALTERNATIVES))
def test_correct_losses_in_other_styles_get_full_marks(style):
    gid, source = LOSS_ALTERNATIVES[style]
    assert failing_cells("02_losses", {gid: source}) == set()


@pytest.mark.parametrize("style", sorted(TRAINING_ALTERNATIVES))
def test_correct_training_code_in_other_styles_gets_full_marks(style):
    gid, source = TRAINING_ALTERNATIVES[style]
    assert failing_cells("04_training", {gid: source}) == set()


def test_a_backward_consistent_with_a_wrong_forward_still_fails_on_known_values():
    """Checking only against the student's own forward would pass a zero forward with a zero backward."""
    nonsense = '''
class Linear(Module):
    def __init__(self, in_features, out_features, rng=None):
        self.W = Parameter(np.zeros((in_features, out_features)))
        self.b = Parameter(np.zeros(out_features))

    def forward(self, x):
        self.x = x
        return np.zeros((len(x), self.b.data.shape[0]))

    def backward(self, dout):
        self.W.grad, self.b.grad = np.zeros_like(self.W.data), np.zeros_like(self.b.data)
        return np.zeros_like(self.x)
'''
    assert failing_cells("01_layers", {"linear": nonsense}) == {
        "test_linear_forward", "test_linear_dx", "test_linear_dW", "test_linear_db", "test_linear_skip_dx"}


def test_an_unwritten_sgd_step_is_not_blamed_on_parameters_without_a_gradient():
    nb = load_notebook("04_training")
    blank_sgd = {"sgd": cells.blank_solutions(answer_source("04_training", "sgd"))}
    run = {gid: "" for gid in (cells.grade_id(c) for c in nb.cells if c.cell_type == "code")
           if gid and gid not in NEEDED and gid not in ANSWERS["04_training"] and gid != "test_sgd_plain"}
    run.update(blank_sgd)
    with contextlib.chdir(NOTEBOOKS):
        result = cells.run_cells(nb, replace=run)["test_sgd_plain"]
    assert not result.passed
    assert "NotImplementedError" in result.error and "skip parameters" not in result.error, result.error


#: A forward that returns wrong values at ordinary inputs while backward is right (its cache is right).
FORWARD_ONLY_MISTAKES = {
    "relu": ("return np.maximum(x, 0)", "return np.maximum(x, 0) * 2"),
    "sigmoid": ("return self.out", "return self.out * 2"),
    "tanh": ("return self.out", "return self.out * 2"),
    "gelu": ("return 0.5 * x * (1.0 + self.tanh_u)", "return x * (1.0 + self.tanh_u)"),
}


@pytest.mark.parametrize("layer", sorted(FORWARD_ONLY_MISTAKES))
def test_a_forward_wrong_at_ordinary_inputs_costs_only_the_forward_cell(layer):
    old, new = FORWARD_ONLY_MISTAKES[layer]
    assert failing_cells("01_layers", mutate("01_layers", layer, old, new)) == {f"test_{layer}_forward"}
