"""The graded test cells of notebook 05 (Tuning), run in-process on variants of the answers.

As for notebooks 01-04 (tests/test_notebook_grading.py): the solutions pass every graded cell, the
blank release fails every one, each plausible mistake fails exactly the cells of what it gets
wrong, and correct answers in other styles get full marks.
"""

from __future__ import annotations

import pytest

from conftest import graded_cell_ids, load_notebook
from lablib import cells
from test_notebook_grading import ANSWERS, answer_source, failing_cells, mutate

STEM = "05_tuning"
# failing_cells skips the answer cells it knows of; register this notebook's (its STEMS list is 01-04)
ANSWERS.setdefault(STEM, {cells.grade_id(c) for c in load_notebook(STEM).cells
                          if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")})


def test_solutions_pass_every_graded_cell():
    assert failing_cells(STEM) == set()


def test_blank_release_fails_every_graded_cell():
    blank = {cells.grade_id(c): cells.blank_solutions(c.source) for c in load_notebook(STEM).cells
             if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source}
    assert set(blank) == {"schedules", "grid_search"}
    assert failing_cells(STEM, blank) == set(graded_cell_ids(STEM))


# (answer cell, text in the solution, wrong replacement, graded cells that must fail)
TUNING_MISTAKES = {
    "step decay: a smooth exponent (epoch / step_size)": (
        "schedules", "float(lr0 * gamma ** (epoch // step_size))", "float(lr0 * gamma ** (epoch / step_size))", {"test_step_decay"}),
    "step decay: decays one epoch early": (
        "schedules", "float(lr0 * gamma ** (epoch // step_size))", "float(lr0 * gamma ** ((epoch + 1) // step_size))", {"test_step_decay"}),
    "exponential: no floor": (
        "schedules", "max(lr0 * gamma ** epoch, floor)", "lr0 * gamma ** epoch", {"test_exponential_floor"}),
    "exponential: floor added instead of a lower bound (shifts every value)": (
        "schedules", "max(lr0 * gamma ** epoch, floor)", "lr0 * gamma ** epoch + floor",
        {"test_exponential_decay", "test_exponential_floor"}),
    "exponential: min instead of max (always the floor)": (
        "schedules", "max(lr0 * gamma ** epoch, floor)", "min(lr0 * gamma ** epoch, floor)",
        {"test_exponential_decay", "test_exponential_floor"}),
    "cosine: without the 1/2": (
        "schedules", "lr_min + 0.5 * (lr0 - lr_min)", "lr_min + (lr0 - lr_min)", {"test_cosine_annealing"}),
    "cosine: lr_min ignored (only the hidden tests set it)": (
        "schedules", "lr_min + 0.5 * (lr0 - lr_min)", "0.5 * lr0", {"test_cosine_annealing"}),
    "cosine: warm-up starts at 0 (epoch / w)": (
        "schedules", "lr0 * (epoch + 1) / warmup_epochs", "lr0 * epoch / warmup_epochs", {"test_cosine_warmup"}),
    "cosine: the cosine is not shifted by the warm-up": (
        "schedules", "(epoch - warmup_epochs) / (total_epochs - warmup_epochs)", "epoch / total_epochs",
        {"test_cosine_warmup"}),
    "grid_search: chooses the lowest validation accuracy": (
        "grid_search", "val_acc > runs[best][0]", "val_acc < runs[best][0]", {"test_grid_search_selection"}),
    "grid_search: a tie keeps the later run": (
        "grid_search", "val_acc > runs[best][0]", "val_acc >= runs[best][0]", {"test_grid_search_selection"}),
    "grid_search: NaN can win (no finiteness check)": (
        "grid_search", "if math.isfinite(val_acc) and (best is None or val_acc > runs[best][0]):",
        "if best is None or val_acc > runs[best][0]:", {"test_grid_search_nan_runs"}),
    "grid_search: returns the validation accuracy as the test accuracy": (
        "grid_search", "return configs[best], val_acc, test_acc", "return configs[best], val_acc, val_acc",
        {"test_grid_search_tests_once"}),
    "grid_search: tests every model, then chooses on validation": (
        "grid_search", "runs = train(configs)\n",
        "runs = train(configs)\n    peeked = [test_set.evaluate(evaluate, m, l) for _, m, l in runs if m is not None]\n",
        {"test_grid_search_selection", "test_grid_search_tests_once", "test_grid_search_nan_runs"}),
    "grid_search: looks at the test set before training": (
        "grid_search", "runs = train(configs)\n",
        "first = test_set.evaluate(evaluate, FakeModel('a', 0.0), None)\n    runs = train(configs)\n",
        {"test_grid_search_selection", "test_grid_search_tests_once", "test_grid_search_nan_runs"}),
    "grid_search: no error when every run failed": (
        "grid_search", '        raise ValueError(f"all {len(runs)} runs failed or diverged: there is nothing to choose")\n',
        "        pass\n", {"test_grid_search_nan_runs"}),
}


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
