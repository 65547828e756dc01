"""lablib.KnownFunction and lablib.check_two_layer: the checkers behind notebook 03.

The two-layer network used here is written in this test (never in lablib), in the einsum style
of the notebook's hidden tests; wrong variants of it must get the words that name their mistake.
"""

from __future__ import annotations

import numpy as np
import pytest

from lablib import KnownFunction, check_two_layer, numeric_gradient


def network(seed, n=4, d=3, hidden=5, classes=3):
    rng = np.random.default_rng(seed)
    W1, b1 = rng.standard_normal((d, hidden)) * 0.5, rng.standard_normal(hidden) * 0.1
    b1[:2] = [-5.0, 5.0]  # unit 0 off, unit 1 on, for every sample
    W2, b2 = rng.standard_normal((hidden, classes)) * 0.5, rng.standard_normal(classes) * 0.1
    return W1, b1, W2, b2, rng.standard_normal((n, d)), rng.integers(0, classes, n)


def make_loss(*, scale_n=False, mask="z", l2=2.0, l2_bias=False, transpose_w1=False, loss_l2=True, per_sample=False):
    """A two-layer loss function, right by default, with one mistake switched on by each option."""

    def loss_fn(W1, b1, W2, b2, X, y, reg):
        n, c = X.shape[0], W2.shape[1]
        z = np.einsum("nd,dk->nk", X, W1) + b1
        h = np.where(z > 0, z, 0.0)
        s = np.einsum("nk,kc->nc", h, W2) + b2
        s = s - s.max(axis=1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        losses = -logp[np.arange(n), y] + (reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2)) if loss_l2 else 0.0)
        g = (np.exp(logp) - np.eye(c)[y]) / (1 if scale_n else n)
        dh = np.einsum("nc,kc->nk", g, W2)
        dz = {"z": dh * (z > 0), "none": dh, "upstream": dh * (dh > 0)}[mask]
        dW1 = np.einsum("nd,nk->dk", X, dz)
        grads = {"W1": (dW1.T if transpose_w1 else dW1) + l2 * reg * W1, "b1": dz.sum(axis=0),
                 "W2": np.einsum("nk,nc->kc", h, g) + l2 * reg * W2, "b2": g.sum(axis=0)}
        if l2_bias:
            grads["b1"] = grads["b1"] + 2 * reg * b1
            grads["b2"] = grads["b2"] + 2 * reg * b2
        return (losses if per_sample else float(losses.mean())), grads

    return loss_fn


def problems(report, item):
    return " ".join(report.items[item].problems)


def test_a_correct_network_passes_every_item():
    report = check_two_layer(make_loss(), *network(0), reg=0.05)
    assert report.passed, report.to_text()
    assert list(report.items) == ["loss", "dW1", "db1", "dW2", "db2"]


def test_factor_n_is_named_even_with_the_l2_term():
    report = check_two_layer(make_loss(scale_n=True), *network(0), reg=0.05)
    assert report.failed() == ["dW1", "db1", "dW2", "db2"]
    for item in report.failed():
        assert "N = 4 times too large" in report.items[item].problems[0], problems(report, item)


@pytest.mark.parametrize("mask", ["none", "upstream"])
def test_gradient_through_a_switched_off_unit_names_the_relu_mask(mask):
    report = check_two_layer(make_loss(mask=mask), *network(0), reg=0.05)
    assert report.failed() == ["dW1", "db1"]
    for item in ("dW1", "db1"):
        assert "switched off for every sample" in report.items[item].problems[0]
        assert "ReLU mask" in report.items[item].problems[0]


def test_the_l2_mistakes_are_named():
    missing = check_two_layer(make_loss(l2=0.0), *network(1), reg=0.1)
    assert missing.failed() == ["dW1", "dW2"] and "lacks the L2 term" in problems(missing, "dW1")
    halved = check_two_layer(make_loss(l2=1.0), *network(1), reg=0.1)
    assert halved.failed() == ["dW1", "dW2"] and "2·reg·W2" in halved.items["dW2"].problems[0]
    biases = check_two_layer(make_loss(l2_bias=True), *network(1), reg=0.1)
    assert biases.failed() == ["db1", "db2"] and "biases are not regularized" in problems(biases, "db2")


def test_a_transposed_square_dw1_is_named():
    report = check_two_layer(make_loss(transpose_w1=True), *network(2, d=5, hidden=5), reg=0.0)
    assert report.failed() == ["dW1"]
    assert "transposed" in report.items["dW1"].problems[0]


NAMED = {  # make_loss options, network arguments, reg: each is one mistake that check_two_layer names
    "no 1/N": ({"scale_n": True}, {}, 0.05),
    "no ReLU mask": ({"mask": "none"}, {}, 0.05),
    "mask from the upstream gradient": ({"mask": "upstream"}, {}, 0.05),
    "L2 missing": ({"l2": 0.0}, {}, 0.1),
    "L2 as reg W": ({"l2": 1.0}, {}, 0.1),
    "L2 on the biases": ({"l2_bias": True}, {}, 0.1),
    "dW1 transposed": ({"transpose_w1": True}, {"d": 5, "hidden": 5}, 0.0),
}


@pytest.mark.parametrize("mistake", sorted(NAMED))
def test_a_named_mistake_is_told_once_without_a_generic_line_beside_it(mistake):
    """A ×N gradient used to read "N = 4 times too large" and then "wrong at 9 of 15 checked entries ... a
    term is missing", which suggests a second bug: the named sentence is the diagnosis, the worst entry follows."""
    options, shape, reg = NAMED[mistake]
    report = check_two_layer(make_loss(**options), *network(2, **shape), reg=reg)
    assert report.failed()
    for item in report.failed():
        named, *measured = report.items[item].problems
        assert measured and all(line.startswith("worst entry") for line in measured), report.to_text()
        for generic in ("checked entries", "constant factor", "times the expected"):
            assert generic not in named, report.to_text()


def test_a_loss_without_its_penalty_fails_the_weights_against_its_own_numeric_gradient():
    report = check_two_layer(make_loss(loss_l2=False), *network(3), reg=0.1)
    assert report.failed() == ["dW1", "dW2"]  # the loss itself is graded against known values, in the notebook


def test_a_loss_returned_per_sample_costs_the_loss_only():
    """The mean left out: "loss" fails, and the (right) gradients are held to the numeric gradient of the mean
    of the returned losses; they used to fail with "f raised TypeError", one cell each."""
    report = check_two_layer(make_loss(per_sample=True), *network(0), reg=0.05)
    assert report.failed() == ["loss"], report.to_text()
    assert "loss has shape (4,)" in problems(report, "loss")
    wrong = check_two_layer(make_loss(per_sample=True, scale_n=True), *network(0), reg=0.05)
    assert wrong.failed() == ["loss", "dW1", "db1", "dW2", "db2"]  # a wrong gradient still fails on its own


def test_only_the_gradients_asked_for_are_checked():
    full = check_two_layer(make_loss(), *network(0), reg=0.05)
    one = check_two_layer(make_loss(mask="none"), *network(0), reg=0.05, params=["b1"])
    assert list(one.items) == ["loss", "db1"] and one.failed() == ["db1"]
    assert one.evaluations < full.evaluations / 4
    assert list(check_two_layer(make_loss(), *network(0), reg=0.05, params=[]).items) == ["loss"]
    with pytest.raises(ValueError, match=r"params \['W3'\] are not parameters"):
        check_two_layer(make_loss(), *network(0), reg=0.05, params=["W3"])


def test_crashes_wrong_returns_and_mutations_are_reported():
    def raises(*args):
        raise NotImplementedError()

    report = check_two_layer(raises, *network(0), reg=0.0)
    assert report.failed() == ["loss", "dW1", "db1", "dW2", "db2"] and "not implemented yet" in problems(report, "dW2")
    report = check_two_layer(lambda *a: make_loss()(*a)[1], *network(0), reg=0.0)
    assert "tuple (loss, grads)" in problems(report, "loss")
    report = check_two_layer(lambda *a: (1.0, list(make_loss()(*a)[1].values())), *network(0), reg=0.0)
    assert report.failed() == ["dW1", "db1", "dW2", "db2"] and "dict with keys" in problems(report, "db1")

    report = check_two_layer(lambda *a: ("2.0", make_loss()(*a)[1]), *network(0), reg=0.0)
    assert "loss" in report.failed() and "must be a number" in problems(report, "loss")

    def mutating(W1, b1, W2, b2, X, y, reg):
        X -= 1.0
        return make_loss()(W1, b1, W2, b2, X, y, reg)

    assert "changed one of its arguments" in problems(check_two_layer(mutating, *network(0), reg=0.0), "loss")


def test_known_function_values_gradients_and_precision():
    x = np.array([[0.5, -1.0], [2.0, 0.0]])
    w = np.array([[1.0, 2.0], [-1.0, 0.5]])
    f = KnownFunction("cube", weights=w)
    assert f(x) == pytest.approx(np.sum(w * x ** 3)) and isinstance(f(x), float)
    assert np.allclose(f.gradient(x), 3 * w * x ** 2)
    assert np.allclose(numeric_gradient(KnownFunction("sin"), x.copy()), np.cos(x), atol=1e-8)
    f32 = KnownFunction("exp", dtype="float32")
    assert f32(np.array([1.0])) == float(np.exp(np.float32(1.0)))
    assert f32(np.array([1.0 + 1e-9])) == f32(np.array([1.0]))  # float32 cannot see the step
    with pytest.raises(ValueError, match="unknown function 'tan'"):
        KnownFunction("tan")


def test_known_function_watches_how_it_is_called():
    x = np.arange(6.0).reshape(2, 3)

    def honest(f, x, h):
        own = x.copy()
        own[0, 0] += h
        return f(own)

    def in_place(f, x, h):
        x[0, 0] += h
        value = f(x)
        x[0, 0] -= h
        return value

    def unrestored(f, x, h):
        own = x.copy()
        own[0, 0] += h
        own[1, 1] += h
        return f(own)

    f = KnownFunction("cube")
    f.differentiate_with(honest, x, 1e-3)
    assert f.problems() == [] and f.calls == 1
    f.differentiate_with(in_place, x, 1e-3)
    assert "perturbed the caller's array" in " ".join(f.problems())
    f.differentiate_with(unrestored, x, 1e-3)
    assert "more than one entry differed" in " ".join(f.problems())
    f.differentiate_with(lambda f, x, h: np.zeros_like(x), x, 1e-3)
    assert "never called f" in " ".join(f.problems())
    assert np.array_equal(x, np.arange(6.0).reshape(2, 3))
