"""Numeric gradients and error measures."""

import numpy as np
import pytest

from lablib.gradcheck.numeric import (
    GRAD_TOL,
    Probe,
    numeric_gradient,
    numeric_gradient_array,
    rel_error,
    sample_indices,
    scaled_error,
)


def test_numeric_gradient_of_a_smooth_function_is_accurate_in_float64():
    x = np.random.default_rng(0).standard_normal((3, 4))
    grad = numeric_gradient(lambda v: np.sum(np.sin(v) * v), x.copy())
    assert rel_error(grad, np.sin(x) + x * np.cos(x)) < 1e-8


def test_numeric_gradient_restores_its_input():
    x = np.random.default_rng(1).standard_normal(6)
    before = x.copy()
    numeric_gradient(lambda v: np.sum(v**3), x)
    assert np.array_equal(x, before)


def test_numeric_gradient_array_uses_the_upstream_gradient():
    rng = np.random.default_rng(2)
    x, df = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    grad = numeric_gradient_array(np.tanh, x.copy(), df)
    assert rel_error(grad, df * (1 - np.tanh(x) ** 2)) < 1e-8


def test_float32_numeric_gradient_is_noise():
    """The lesson of notebook 01, part 0: round-off of order eps/h swamps float32."""
    x = np.random.default_rng(3).standard_normal(5)
    grad = numeric_gradient(lambda v: np.sum(np.sin(v.astype(np.float32)) * v.astype(np.float32)), x.copy())
    assert rel_error(grad, np.sin(x) + x * np.cos(x)) > 1e-3


def test_rel_error_has_an_epsilon_floor():
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(np.array([]), np.array([])) == 0.0
    assert np.isfinite(rel_error(np.array([0.0, 1e-30]), np.array([0.0, 0.0])))


def test_scaled_error_ignores_round_off_on_tiny_entries_where_rel_error_over_reports():
    expected = np.array([1.0, 2.0, 1e-7])
    received = expected + np.array([0.0, 0.0, 1e-11])  # round-off on the tiny entry
    assert rel_error(received, expected) > 1e-5
    assert scaled_error(received, expected) < GRAD_TOL


def test_probe_detects_a_kink_and_restores_the_target():
    x = np.array([0.0, 1.0])
    probe = Probe(lambda: np.maximum(x, 0).sum(), x)
    central, forward, backward = probe.at((0,))
    assert (central, forward, backward) == pytest.approx((0.5, 1.0, 0.0))
    assert Probe.is_kink(forward, backward, scale=1.0)
    central, forward, backward = probe.at((1,))
    assert not Probe.is_kink(forward, backward, scale=1.0)
    assert np.array_equal(x, [0.0, 1.0])


def test_probe_directional_derivative():
    rng = np.random.default_rng(4)
    x, v = rng.standard_normal(5), rng.standard_normal(5)
    v /= np.linalg.norm(v)
    before = x.copy()
    central, _, _ = Probe(lambda: np.sum(x**2), x).along(v)
    assert central == pytest.approx(np.dot(2 * before, v), rel=1e-7)
    assert np.array_equal(x, before)


def test_sample_indices_are_distinct_and_in_range():
    idx = sample_indices((7, 9), 20, np.random.default_rng(5))
    assert len(set(idx)) == 20 and all(0 <= i < 7 and 0 <= j < 9 for i, j in idx)
    assert len(sample_indices((2, 2), 20, np.random.default_rng(5))) == 4
