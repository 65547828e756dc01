"""The graded test cells of notebook 05 (Tuning), run in-process on variants of the answers.

As for notebooks 01-04 (tests/test_notebook_grading.py): the solutions pass every graded cell, the
blank release fails every one, each plausible mistake (TUNING_MISTAKES, in tests/answer_variants.py)
fails exactly the cells of what it gets wrong, and correct answers in other styles get full marks.
"""

from __future__ import annotations

import pytest

from answer_variants import TUNING_MISTAKES
from conftest import graded_cell_ids, load_notebook
from grading_helpers import ANSWERS, answer_source, failing_cells, mutate
from lablib import cells

STEM = "05_tuning"


def test_solutions_pass_every_graded_cell():
    assert failing_cells(STEM) == set()


def test_blank_release_fails_every_graded_cell():
    blank = {cells.grade_id(c): cells.blank_solutions(c.source) for c in load_notebook(STEM).cells
             if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source}
    assert set(blank) == {"schedules", "grid_search"}
    assert failing_cells(STEM, blank) == set(graded_cell_ids(STEM))


@pytest.mark.parametrize("mistake", sorted(TUNING_MISTAKES))
def test_tuning_mistake_loses_exactly_its_points(mistake):
    gid, old, new, expected = TUNING_MISTAKES[mistake]
    assert failing_cells(STEM, mutate(STEM, gid, old, new)) == expected


def test_every_graded_cell_is_targeted_by_some_mistake():
    assert set(graded_cell_ids(STEM)) <= set().union(*(m[3] for m in TUNING_MISTAKES.values()))


def test_hidden_tests_catch_what_the_visible_ones_miss():
    replace = mutate(STEM, *TUNING_MISTAKES["cosine: lr_min ignored (only the hidden tests set it)"][:3])
    assert failing_cells(STEM, replace, hidden=False) == set()
    replace = mutate(STEM, *TUNING_MISTAKES["grid_search: a tie keeps the later run"][:3])
    assert failing_cells(STEM, replace, hidden=False) == set()


# Correct answers written differently from the reference: each must pass every graded cell.
ALTERNATIVES = {
    "schedules in NumPy, cosine via np.cos, the floor via np.maximum": ("schedules", '''
def step_decay(epoch, lr0, step_size, gamma):
    return float(lr0 * np.power(gamma, np.floor(epoch / step_size)))


def exponential_decay(epoch, lr0, gamma=0.99, floor=1e-4):
    return float(np.maximum(lr0 * np.power(gamma, epoch), floor))


def cosine_annealing(epoch, lr0, total_epochs, lr_min=0.0, warmup_epochs=0):
    if warmup_epochs and epoch < warmup_epochs:
        return (epoch + 1) * lr0 / warmup_epochs
    t, span = epoch - warmup_epochs, total_epochs - warmup_epochs
    return float(lr_min + (lr0 - lr_min) * (np.cos(np.pi * t / span) + 1) / 2)
'''),
    "grid_search with np.nanargmax (its all-NaN ValueError is the error asked for)": ("grid_search", '''
def grid_search(configs, train, evaluate, test_set):
    results = train(configs)
    val = np.array([r[0] for r in results], dtype=float)
    best = int(np.nanargmax(val))
    _, model, loss_fn = results[best]
    test_loss, test_acc = test_set.evaluate(evaluate, model, loss_fn)
    return configs[best], float(val[best]), test_acc
'''),
    "grid_search with max() over finite runs": ("grid_search", '''
def grid_search(configs, train, evaluate, test_set):
    runs = list(zip(configs, train(configs)))
    finite = [(i, run) for i, run in enumerate(runs) if not math.isnan(run[1][0])]
    if not finite:
        raise ValueError("no run finished")
    i, (config, (val_acc, model, loss_fn)) = max(finite, key=lambda item: (item[1][1][0], -item[0]))
    return config, val_acc, test_set.evaluate(evaluate, model, loss_fn)[1]
'''),
}


@pytest.mark.parametrize("name", sorted(ALTERNATIVES))
def test_correct_answers_in_other_styles_pass(name):
    gid, source = ALTERNATIVES[name]
    assert gid in ANSWERS[STEM] and answer_source(STEM, gid)
    assert failing_cells(STEM, {gid: source}) == set()


def _study_function(fake_run_grid):
    """Notebook 05's `study`, from its recipe cell, with run_grid replaced (the cell's other names are stubs)."""
    import types

    import numpy as np

    (recipe,) = [c for c in load_notebook(STEM).cells if cells.grade_id(c) == "recipe"]
    scope = {"np": np, "EPOCHS": 1, "layers": types.SimpleNamespace(ReLU=None, Sigmoid=None, GELU=None),
             "run_grid": fake_run_grid, "grid_data": None}
    exec(compile(recipe.source, "<recipe>", "exec"), scope)  # noqa: S102 - the notebook's own cell
    return scope["study"]


def test_a_study_table_says_why_a_run_failed():
    """A student whose notebook 04 is unfinished saw rows of 'NaN failed' and no reason (student review)."""
    from lablib.tuning import FAILED, OK, GridResults, RunResult

    def fake_run_grid(train, configs, data, desc):
        return GridResults([RunResult(configs[0], OK, 0.8),
                            RunResult(configs[1], FAILED, error="NotImplementedError: write train_val_split")])

    _, table = _study_function(fake_run_grid)([{"lr": 0.1}, {"lr": 1.0}], "learning rate")
    assert list(table["error"]) == ["", "NotImplementedError: write train_val_split"]

    def all_ok(train, configs, data, desc):
        return GridResults([RunResult(c, OK, 0.8) for c in configs])

    _, table = _study_function(all_ok)([{"lr": 0.1}], "learning rate")
    assert "error" not in table.columns  # no empty column when nothing went wrong
