"""lablib.testhelpers.check_skips_input_grad: each way of getting needs_input_grad wrong fails its item."""

from __future__ import annotations

import numpy as np
import pytest

from lablib import Module, Parameter
from lablib.testhelpers import check_skips_input_grad


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
