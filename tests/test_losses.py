"""LabelSmoothing equals cross-entropy against smoothed targets, through the student's own loss."""

import numpy as np
import pytest

from lablib import check_loss
from lablib.losses import LabelSmoothing


def test_label_smoothing_matches_soft_target_cross_entropy(losses):
    rng = np.random.default_rng(0)
    scores, y = rng.standard_normal((6, 4)) * 3, rng.integers(0, 4, 6)
    smoothed = LabelSmoothing(losses["SoftmaxCrossEntropy"](), num_classes=4, epsilon=0.2)
    value, dscores = smoothed.forward(scores, y), smoothed.backward()
    target = np.full((6, 4), 0.2 / 4)
    target[np.arange(6), y] += 0.8
    log_p = scores - scores.max(1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(1, keepdims=True))
    assert value == pytest.approx(-np.sum(target * log_p) / 6, rel=1e-12)
    assert np.allclose(dscores, (np.exp(log_p) - target) / 6, rtol=1e-10, atol=1e-14)
    assert check_loss(smoothed, scores, y).passed


def test_epsilon_zero_is_the_plain_loss_and_bad_epsilon_is_refused(losses):
    rng = np.random.default_rng(1)
    scores, y = rng.standard_normal((3, 5)), rng.integers(0, 5, 3)
    plain = losses["SoftmaxCrossEntropy"]()
    assert LabelSmoothing(plain, 5, 0.0).forward(scores, y) == pytest.approx(plain.forward(scores, y))
    with pytest.raises(ValueError, match="epsilon"):
        LabelSmoothing(plain, 5, 1.0)
