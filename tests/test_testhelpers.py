"""lablib.testhelpers.check_skips_input_grad: each way of getting needs_input_grad wrong fails its item."""

from __future__ import annotations

import numpy as np
import pytest

from lablib import Module, Parameter
from lablib.testhelpers import check_skips_input_grad, same_values


class Skipping(Module):
    """A Linear whose backward honours needs_input_grad; subclasses get it wrong in one way each."""

    def __init__(self, d_in: int = 3, d_out: int = 2):
        rng = np.random.default_rng(0)
        self.W, self.b = Parameter(rng.standard_normal((d_in, d_out))), Parameter(np.zeros(d_out))

    def forward(self, x):
        self.x = x
        return x @ self.W.data + self.b.data

    def grads(self, dout):
        self.W.grad = self.x.T @ dout
        self.b.grad = dout.sum(axis=0)

    def backward(self, dout):
        self.grads(dout)
        return dout @ self.W.data.T if self.needs_input_grad else None


class ComputesThenDiscards(Skipping):
    def backward(self, dout):
        self.grads(dout)
        dx = dout @ self.W.data.T  # computed although nobody needs it: raises with W transposed
        return dx if self.needs_input_grad else None


class AlwaysReturnsDx(Skipping):
    def backward(self, dout):
        self.grads(dout)
        return dout @ np.zeros((dout.shape[1], self.x.shape[1]))  # no W involved: no shape error


class ForgetsGradsWhenSkipping(Skipping):
    def backward(self, dout):
        if not self.needs_input_grad:
            return None
        self.grads(dout)
        return dout @ self.W.data.T


def run(layer):
    rng = np.random.default_rng(1)
    return check_skips_input_grad(layer, rng.standard_normal((4, 3)), rng.standard_normal((4, 2)))


def test_a_layer_that_skips_dx_passes():
    report = run(Skipping())
    report.assert_ok()
    assert list(report.items) == ["skips dx", "W.grad", "b.grad"]


@pytest.mark.parametrize("layer, failed, words", [
    (ComputesThenDiscards(), ["skips dx"], "must not compute dx"),
    (AlwaysReturnsDx(), ["skips dx"], "return None"),
    (ForgetsGradsWhenSkipping(), ["W.grad", "b.grad"], "W.grad"),
], ids=["computes-dx", "returns-dx", "forgets-grads"])
def test_each_mistake_fails_its_own_item(layer, failed, words):
    report = run(layer)
    assert report.failed() == failed
    assert words in " ".join(report.to_text().split())  # the text is wrapped


def test_the_layer_is_left_as_it_was():
    layer = Skipping()
    W = layer.W.data.copy()
    run(layer)
    assert np.array_equal(layer.W.data, W) and layer.W.data.shape == (3, 2)


def test_same_values_wants_the_shape_too_and_never_raises():
    """np.allclose, which the backward cells used to ask "is forward right?", says yes to a flat output and
    raises on one that does not broadcast: a wrong-shape forward then cost the backward cell as well."""
    expected = [[0.0, 0.0, 0.5, 2.0]]
    assert same_values(np.array([[0.0, 0.0, 0.5, 2.0]]), expected)
    assert same_values(np.array([[0.0, 0.0, 0.5, 2.0 + 1e-13]]), expected)
    assert not same_values(np.array([0.0, 0.0, 0.5, 2.0]), expected)  # flat: np.allclose says True
    assert not same_values(np.array([[0.0], [0.0], [0.5], [2.0]]), expected)
    assert not same_values(np.array([0.5, 2.0]), expected)  # np.allclose raises
    assert not same_values(np.array([[0.0, 0.0, 0.5, 2.1]]), expected)
    assert not same_values(None, expected) and not same_values("text", expected)
