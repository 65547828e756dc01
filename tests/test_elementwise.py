"""The building blocks of the elementwise and known-value diagnoses, tested on their own."""

import numpy as np
import pytest

from lablib.gradcheck.diagnose import Context, Hypothesis, diagnose, explains
from lablib.gradcheck.elementwise import elementwise_hypotheses, is_elementwise, local_slopes
from lablib.gradcheck.values import value_hypotheses


def test_elementwise_layers_are_told_apart_from_layers_that_mix_entries():
    x = np.random.default_rng(0).standard_normal((3, 4))
    assert is_elementwise(np.tanh, x, np.tanh(x))
    assert is_elementwise(lambda z: np.maximum(z, 0), x, np.maximum(x, 0))
    mix = lambda z: z @ np.ones((4, 4))  # noqa: E731 - every output reads every input of its row
    assert not is_elementwise(mix, x, mix(x))
    assert not is_elementwise(lambda z: z.sum(axis=1), x, x.sum(axis=1))


def test_local_slopes_give_both_one_sided_slopes_at_a_kink():
    z = np.array([0.0, 2.0, -1.0])
    slopes = local_slopes(lambda v: np.maximum(v, 0), z)
    assert slopes.shape == (3, 3)
    assert slopes[0] == pytest.approx([0.5, 1.0, 0.0])
    assert slopes[1] == pytest.approx([1.0, 1.0, 1.0]) and slopes[2] == pytest.approx([0.0, 0.0, 0.0])
    assert local_slopes(lambda v: 1 / 0, z) is None  # a forward that raises: no slopes, no crash


def test_explains_accepts_any_alternative_on_a_last_axis_and_never_nan():
    assert explains(np.array([1.0, 0.0]), np.array([[0.5, 1.0], [0.5, 0.0]]))
    assert not explains(np.array([1.0, 0.2]), np.array([[0.5, 1.0], [0.5, 0.0]]))
    assert not explains(np.array([1.0]), np.array([np.nan]))


def test_the_first_hypothesis_that_holds_names_the_mistake_and_a_failing_one_is_skipped():
    got, want = np.array([1.0, 2.0]), np.array([3.0, -1.0])

    def broken():
        raise RuntimeError("cannot test")

    hyps = [Hypothesis("first", broken), Hypothesis("second", lambda: False),
            Hypothesis("", lambda: "measured: third"), Hypothesis("fourth", lambda: True)]
    sentences = diagnose("g", got, [(0,), (1,)], want, lambda i: (want[i[0]],), Context(), hyps)
    assert sentences == ["measured: third"]


def test_elementwise_hypotheses_name_a_missing_factor_without_knowing_the_activation():
    rng = np.random.default_rng(1)
    x, dout = rng.standard_normal((2, 5)), rng.standard_normal((2, 5))
    y = np.tanh(x)
    received = dout * (1 - y)  # 1 − y instead of 1 − y²
    indices = list(np.ndindex(x.shape))
    hyps = elementwise_hypotheses("dx", received, indices, x, y, dout, np.tanh, lambda z, g: g * (1 - np.tanh(z)))
    holding = [h.sentence for h in hyps if h.holds() is True]
    assert holding and "misses a factor (1 + y)" in holding[0]


def test_value_hypotheses_name_a_likely_result_and_a_wrong_normalisation():
    e = np.exp(np.random.default_rng(2).standard_normal((3, 4)))
    softmax = e / e.sum(axis=1, keepdims=True)
    hyps = value_hypotheses("p", e / e.sum(axis=0, keepdims=True), softmax, {"the batch is normalised": softmax * 2})
    assert [h.sentence for h in hyps if h.holds()][0].startswith("p is normalised over the wrong axis")
    hyps = value_hypotheses("p", softmax * 2, softmax, {"the batch is normalised": softmax * 2})
    assert hyps[0].holds() and hyps[0].sentence == "p is what you get when the batch is normalised."
