"""The graded test cells of notebook 03 (Backprop derivation), run in-process on variants of the answers.

As for notebooks 01, 02 and 04 (test_notebook_grading.py; the runner is grading_helpers'): the solutions pass
every graded cell, the blank release fails every one, each plausible mistake fails exactly the cells of
what it gets wrong, and correct answers in other styles (einsum, loops, one-hot matrices, copies
instead of restoring) keep full marks. Also: a submission that hands its finite differences to
lablib earns none of Part B's points.
"""

from __future__ import annotations

import pytest

from conftest import graded_cell_ids, load_notebook
from lablib import cells
from grading_helpers import answer_source, failing_cells

STEM = "03_backprop"

CENTRAL, FORWARD = "test_central_difference", "test_forward_difference"
LOSS, DW1, DB1, DW2, DB2 = (f"test_two_layer_{p}" for p in ("loss", "dW1", "db1", "dW2", "db2"))
GRADS = {DW1, DB1, DW2, DB2}


def mutate(gid: str, *pairs: tuple[str, str]) -> dict[str, str]:
    """The solution of answer cell `gid` with each (old, new) replacement made (each old occurs once)."""
    source = answer_source(STEM, gid)
    for old, new in pairs:
        assert source.count(old) == 1, f"{old!r} must occur once in answer cell {gid}"
        source = source.replace(old, new)
    return {gid: source}


CENTRAL_BODY = """    x = np.array(x, dtype=np.float64)  # my own copy: the caller's x is never touched
    grad = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        saved = x[idx]
        x[idx] = saved + h
        f_plus = f(x)
        x[idx] = saved - h
        f_minus = f(x)
        x[idx] = saved  # restored before the next entry
        grad[idx] = (f_plus - f_minus) / (2 * h)
    return grad
"""
FORWARD_BODY = """    x = np.array(x, dtype=np.float64)
    f_x = f(x)
    grad = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        saved = x[idx]
        x[idx] = saved + h
        grad[idx] = (f(x) - f_x) / h
        x[idx] = saved
    return grad
"""
CALLS_LABLIB = "    import lablib\n    return lablib.numeric_gradient(f, np.array(x, dtype=np.float64), h)\n"

# name: (answer cell, [(text in the solution, wrong replacement), ...], graded cells that must fail)
MISTAKES = {
    "central: the forward formula": (
        "finite_differences", [("grad[idx] = (f_plus - f_minus) / (2 * h)", "grad[idx] = (f_plus - f(x)) / h")], {CENTRAL}),
    "central: divides by h, not 2h": (
        "finite_differences", [("grad[idx] = (f_plus - f_minus) / (2 * h)", "grad[idx] = (f_plus - f_minus) / h")],
        {CENTRAL}),
    "central: never restores an entry": (
        "finite_differences", [("        x[idx] = saved  # restored before the next entry\n", "")], {CENTRAL}),
    "central: perturbs the caller's array (no copy)": (
        "finite_differences", [("x = np.array(x, dtype=np.float64)  # my own copy", "x = np.asarray(x, dtype=np.float64)  # no copy")],
        {CENTRAL}),
    "central: restores the caller's array only at the end": (
        "finite_differences", [("x = np.array(x, dtype=np.float64)  # my own copy: the caller's x is never touched",
                                "x = np.asarray(x, dtype=np.float64)\n    backup = x.copy()"),
                               ("        x[idx] = saved  # restored before the next entry\n", ""),
                               ("        grad[idx] = (f_plus - f_minus) / (2 * h)\n    return grad",
                                "        grad[idx] = (f_plus - f_minus) / (2 * h)\n        x[...] = backup\n    return grad")],
        {CENTRAL}),
    "central: lablib's numeric gradient": (
        "finite_differences", [(CENTRAL_BODY, CALLS_LABLIB)], {CENTRAL}),
    "central: lablib's numeric gradient behind a lambda": (
        "finite_differences", [(CENTRAL_BODY, CALLS_LABLIB.replace("(f,", "(lambda v: f(v),"))], {CENTRAL}),
    "forward: the central formula": (
        "finite_differences", [("        grad[idx] = (f(x) - f_x) / h\n        x[idx] = saved\n",
                                "        f_plus = f(x)\n        x[idx] = saved - h\n        grad[idx] = (f_plus - f(x)) / (2 * h)\n"
                                "        x[idx] = saved\n")], {FORWARD}),
    "forward: f(x) taken after perturbing": (
        "finite_differences", [("    f_x = f(x)\n", ""), ("        grad[idx] = (f(x) - f_x) / h", "        grad[idx] = (f(x) - f(x)) / h")],
        {FORWARD}),
    "forward: never restores an entry": (
        "finite_differences", [("        grad[idx] = (f(x) - f_x) / h\n        x[idx] = saved\n",
                                "        grad[idx] = (f(x) - f_x) / h\n")], {FORWARD}),
    "forward: perturbs the caller's array (no copy)": (
        "finite_differences", [("    x = np.array(x, dtype=np.float64)\n    f_x = f(x)", "    x = np.asarray(x, dtype=np.float64)\n    f_x = f(x)")],
        {FORWARD}),
    "forward: lablib's numeric gradient": (
        "finite_differences", [(FORWARD_BODY, CALLS_LABLIB)], {FORWARD}),
    "step_errors: the signed error": (
        "step_study", [("np.max(np.abs(difference(f, x, h=h) - exact))", "np.max(difference(f, x, h=h) - exact)")],
        {"test_step_errors"}),
    "step_errors: the mean error": (
        "step_study", [("np.max(np.abs(difference(f, x, h=h) - exact))", "np.mean(np.abs(difference(f, x, h=h) - exact))")],
        {"test_step_errors"}),
    "best_step: the largest error": (
        "step_study", [("k = int(np.argmin(errors))", "k = int(np.argmax(errors))")], {"test_best_step"}),
    "best_step: returns the index": (
        "step_study", [("return float(steps[k]), float(errors[k])", "return k, float(errors[k])")], {"test_best_step"}),
    "network: no 1/N in the scores' gradient": (
        "two_layer", [("    dscores /= n  # (N, C): (P - Y) / N\n", "")], GRADS),
    "network: ReLU mask missing": (
        "two_layer", [("dz = (dscores @ W2.T) * (z > 0)", "dz = dscores @ W2.T")], {DW1, DB1}),
    "network: ReLU mask from the upstream gradient": (
        "two_layer", [("dz = (dscores @ W2.T) * (z > 0)", "dz = (dscores @ W2.T) * (dscores @ W2.T > 0)")], {DW1, DB1}),
    "network: L2 term missing from the gradients": (
        "two_layer", [('"W1": X.T @ dz + 2.0 * reg * W1', '"W1": X.T @ dz'),
                      ('"W2": hidden.T @ dscores + 2.0 * reg * W2', '"W2": hidden.T @ dscores')], {DW1, DW2}),
    "network: L2 gradient reg·W instead of 2·reg·W": (
        "two_layer", [("2.0 * reg * W1", "reg * W1"), ("2.0 * reg * W2", "reg * W2")], {DW1, DW2}),
    "network: L2 gradient on the biases too": (
        "two_layer", [('"b1": np.sum(dz, axis=0)', '"b1": np.sum(dz, axis=0) + 2.0 * reg * b1'),
                      ('"b2": np.sum(dscores, axis=0)', '"b2": np.sum(dscores, axis=0) + 2.0 * reg * b2')], {DB1, DB2}),
    "network: L2 missing from the loss (the gradients then disagree with it)": (
        "two_layer", [(" + reg * (np.sum(W1 * W1) + np.sum(W2 * W2))", "")], {LOSS, DW1, DW2}),
    "network: one loss per sample (the mean left out; the gradients are right)": (
        "two_layer", [("loss = -np.mean(log_probs[rows, y])", "loss = -log_probs[rows, y]"),
                      ("return float(loss), grads", "return loss, grads")], {LOSS}),
    "network: db1 averaged over the batch": (
        "two_layer", [('"b1": np.sum(dz, axis=0)', '"b1": np.mean(dz, axis=0)')], {DB1}),
    "network: db2 summed over the classes": (
        "two_layer", [('"b2": np.sum(dscores, axis=0)', '"b2": np.sum(dscores, axis=1)')], {DB2}),
    "network: dW2 from the pre-activations": (
        "two_layer", [('"W2": hidden.T @ dscores', '"W2": z.T @ dscores')], {DW2}),
    "network: softmax without the max shift (only the hidden large scores see it)": (
        "two_layer", [("centred = scores - np.max(scores, axis=1, keepdims=True)", "centred = scores")],
        {LOSS, DW1, DB1, DW2, DB2}),
}


def test_solutions_pass_every_graded_cell():
    assert failing_cells(STEM) == set()


def test_blank_release_fails_every_graded_cell():
    blank = {cells.grade_id(c): cells.blank_solutions(c.source) for c in load_notebook(STEM).cells
             if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source}
    assert set(blank) == {"finite_differences", "step_study", "two_layer"}
    assert failing_cells(STEM, blank) == set(graded_cell_ids(STEM))


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_mistake_loses_exactly_its_points(mistake):
    gid, pairs, expected = MISTAKES[mistake]
    assert failing_cells(STEM, mutate(gid, *pairs)) == expected


def test_every_graded_cell_is_targeted_by_some_mistake():
    assert set().union(*(m[2] for m in MISTAKES.values())) == set(graded_cell_ids(STEM))


def test_handing_the_differences_to_lablib_earns_no_point_of_part_b():
    """Both functions delegate to lablib (which computes correct central differences): 0 of 2 points."""
    replace = mutate("finite_differences", (CENTRAL_BODY, CALLS_LABLIB), (FORWARD_BODY, CALLS_LABLIB))
    assert failing_cells(STEM, replace) == failing_cells(STEM, replace, hidden=False) == {CENTRAL, FORWARD}


def test_the_lablib_check_is_what_fails_a_correct_delegation():
    """lablib's numeric gradient on a copy gives the right central values: only the call through lablib fails it."""
    from lablib import KnownFunction, numeric_gradient
    import numpy as np

    x = np.random.default_rng(0).standard_normal((2, 3))
    f = KnownFunction("cube")
    grad = f.differentiate_with(lambda f_, x_, h: numeric_gradient(f_, np.array(x_), h), x, 1e-3)
    assert np.allclose(grad, 3 * x ** 2 + 1e-6, rtol=1e-9)
    (problem,) = f.problems()
    assert "through lablib" in problem and "numeric_gradient" in problem


def test_hidden_tests_catch_what_the_visible_ones_miss():
    replace = mutate("two_layer", *MISTAKES["network: softmax without the max shift (only the hidden large scores see it)"][1])
    assert failing_cells(STEM, replace, hidden=False) == set()


# Correct answers written differently from the reference: each must pass every graded cell.
ALTERNATIVES = {
    "differences with a fresh copy per evaluation and np.nditer": ("finite_differences", '''
def central_difference(f, x, h=1e-5):
    x = np.asarray(x, dtype=float)
    grad = np.empty_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (f(up) - f(down)) / (2.0 * h)
    return grad


def forward_difference(f, x, h=1e-5):
    base = x.astype(float)
    f0 = f(base.copy())
    grad = np.zeros_like(base)
    for i in range(base.size):
        moved = base.copy().reshape(-1)
        moved[i] = moved[i] + h
        grad.reshape(-1)[i] = (f(moved.reshape(base.shape)) - f0) / h
    return grad
'''),
    "differences through a flat view of one copy": ("finite_differences", '''
def central_difference(f, x, h=1e-5):
    work = x.copy().astype(np.float64)
    flat = work.reshape(-1)
    out = []
    for i in range(flat.size):
        keep = flat[i]
        flat[i] = keep + h
        a = f(work)
        flat[i] = keep - h
        b = f(work)
        flat[i] = keep
        out.append((a - b) / (2 * h))
    return np.array(out).reshape(x.shape)


def forward_difference(f, x, h=1e-5):
    work = x.copy().astype(np.float64)
    flat = work.reshape(-1)
    f0 = f(work)
    out = np.zeros(flat.size)
    for i in range(flat.size):
        keep = flat[i]
        flat[i] += h
        out[i] = (f(work) - f0) / h
        flat[i] = keep
    return out.reshape(x.shape)
'''),
    "step study with lists and min over pairs": ("step_study", '''
def step_errors(difference, f, x, exact, steps):
    errors = []
    for h in steps:
        estimate = difference(f, x, h)
        errors.append(float(abs(np.asarray(estimate) - exact).max()))
    return np.asarray(errors)


def best_step(steps, errors):
    error, h = min(zip(errors, steps))
    return h, error
'''),
    "network with einsum, a one-hot matrix and the mask from h": ("two_layer", '''
def two_layer_loss(W1, b1, W2, b2, X, y, reg):
    N, C = X.shape[0], W2.shape[1]
    onehot = np.eye(C)[y]
    h = np.maximum(0, np.einsum("nd,dk->nk", X, W1) + b1)
    s = np.einsum("nk,kc->nc", h, W2) + b2
    s = s - s.max(axis=1, keepdims=True)
    logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
    data_loss = -np.einsum("nc,nc->", onehot, logp) / N
    loss = data_loss + reg * (np.einsum("dk,dk->", W1, W1) + np.einsum("kc,kc->", W2, W2))
    ds = (np.exp(logp) - onehot) / N
    dh = np.einsum("nc,kc->nk", ds, W2)
    dh[h <= 0] = 0
    return loss, {"W2": np.einsum("nk,nc->kc", h, ds) + 2 * reg * W2, "b2": np.einsum("nc->c", ds),
                  "W1": np.einsum("nd,nk->dk", X, dh) + 2 * reg * W1, "b1": np.einsum("nk->k", dh)}
'''),
    "network with loops over the samples and the z >= 0 convention": ("two_layer", '''
def two_layer_loss(W1, b1, W2, b2, X, y, reg):
    n = len(X)
    grads = {"W1": 2 * reg * W1, "b1": np.zeros_like(b1), "W2": 2 * reg * W2, "b2": np.zeros_like(b2)}
    loss = reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    for i in range(n):
        z = X[i] @ W1 + b1
        a = np.where(z >= 0, z, 0.0)
        s = a @ W2 + b2
        m = np.max(s)
        lse = m + np.log(np.sum(np.exp(s - m)))
        loss += (lse - s[y[i]]) / n
        g = np.exp(s - lse)
        g[y[i]] -= 1
        g /= n
        grads["W2"] += np.outer(a, g)
        grads["b2"] += g
        gz = (W2 @ g) * (z >= 0)
        grads["W1"] += np.outer(X[i], gz)
        grads["b1"] += gz
    return float(loss), grads
'''),
}


@pytest.mark.parametrize("style", sorted(ALTERNATIVES))
def test_correct_answers_in_other_styles_get_full_marks(style):
    gid, source = ALTERNATIVES[style]
    assert failing_cells(STEM, {gid: source}) == set()


#: A few of the mistakes above in the one-replacement form the end-to-end grading test uses
#: (tests/test_grading.py): graded through the sandbox, they must cost exactly the same cells.
GRADING_MISTAKES = {
    name: (MISTAKES[name][0], *MISTAKES[name][1][0], MISTAKES[name][2])
    for name in ["central: lablib's numeric gradient", "forward: perturbs the caller's array (no copy)",
                 "best_step: the largest error", "network: ReLU mask missing"]
}
