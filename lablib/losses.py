"""Loss wrappers built on the student's own losses.

`LabelSmoothing` trains towards softened targets, (1 - ε) for the true class and ε / C for every
class, which keeps a network from becoming over-confident and usually generalises better. For a
loss that is linear in its target, such as cross-entropy, −Σ_c t_c log p_c, the smoothed loss is
exactly a mixture of the student's loss at different labels:

    L_smooth(s, y) = (1 − ε) · L(s, y) + (ε / C) · Σ_c L(s, c)

so it needs nothing but the student's `forward(scores, y)` and `backward()`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

__all__ = ["LabelSmoothing"]


class LabelSmoothing:
    """Wrap a loss (an object with `forward(scores, y) -> float` and `backward() -> dscores`).

    Inputs:
        loss: the student's loss, e.g. SoftmaxCrossEntropy(); copied, never modified.
        num_classes: C.
        epsilon: ε in [0, 1), the mass spread evenly over all classes.
    """

    def __init__(self, loss: Any, num_classes: int, epsilon: float = 0.1):
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
        self.epsilon, self.num_classes = epsilon, num_classes
        self.true = copy.deepcopy(loss)
        self.each = [copy.deepcopy(loss) for _ in range(num_classes)]

    def __repr__(self) -> str:
        return f"LabelSmoothing({type(self.true).__name__}(), num_classes={self.num_classes}, epsilon={self.epsilon})"

    def forward(self, scores: np.ndarray, y: np.ndarray) -> float:
        """scores (N, C), y (N,) -> the smoothed batch mean, a float."""
        spread = sum(loss.forward(scores, np.full_like(y, c)) for c, loss in enumerate(self.each))
        return float((1.0 - self.epsilon) * self.true.forward(scores, y) + self.epsilon / self.num_classes * spread)

    def backward(self) -> np.ndarray:
        """-> dscores (N, C), the same mixture of the wrapped losses' gradients."""
        spread = sum(loss.backward() for loss in self.each)
        return (1.0 - self.epsilon) * self.true.backward() + (self.epsilon / self.num_classes) * spread
