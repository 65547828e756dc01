"""Numeric gradients by central differences, and the error measures the checkers use.

Why central differences: `(f(x+h) - f(x-h)) / 2h` has a truncation error of order h², against
order h for the one-sided `(f(x+h) - f(x)) / h`. Why float64: the round-off error of a difference
quotient is about `eps * |f| / h`; with float32 (eps ≈ 1e-7) and h = 1e-6 that is of order 1, so
a numeric gradient in float32 is noise. With float64 (eps ≈ 2e-16) it is about 1e-10.

The checkers never need a full numeric gradient of a large array: they evaluate it at chosen
coordinates and along random directions through a `Probe`, which also notices kinks (points where
the function is not differentiable, such as ReLU at 0) by comparing the two one-sided differences.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

__all__ = [
    "STEP",
    "GRAD_TOL",
    "KINK_TOL",
    "SCALE_FLOOR",
    "numeric_gradient",
    "numeric_gradient_array",
    "rel_error",
    "scaled_error",
    "Probe",
]

#: Step h of the central difference, relative to max(1, |x|) at each coordinate.
STEP = 1e-6
#: The one threshold a gradient is held to: `scaled_error(received, numeric) <= GRAD_TOL`.
#: A correct float64 implementation stays below ~1e-8; every mistake the lab diagnoses is far above.
GRAD_TOL = 1e-6
#: Where the two one-sided differences disagree by more than KINK_TOL (relative to the size of the
#: gradient), the function has a kink there; any of the central, forward or backward differences is
#: then accepted, to KINK_TOL.
KINK_TOL = 1e-4
#: Below this size a gradient counts as zero when errors are scaled.
SCALE_FLOOR = 1e-8


def _step(value: float) -> float:
    return STEP * max(1.0, abs(float(value)))


def numeric_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = STEP) -> np.ndarray:
    """Full central-difference gradient of a scalar function.

    Inputs:
        f: maps an array of x's shape to a float; called 2·x.size times.
        x: float64 array, any shape; perturbed in place and restored.
        h: step (the same for every coordinate).
    Returns:
        grad: array of x's shape, `(f(x + h e_i) - f(x - h e_i)) / 2h` at every coordinate i.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = float(f(x))
        x[i] = old - h
        minus = float(f(x))
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def numeric_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = STEP
) -> np.ndarray:
    """Full central-difference gradient of `sum(f(x) * df)` for an array-valued f.

    Inputs:
        f: maps x to an output array of df's shape.
        x: float64 array, perturbed in place and restored.
        df: upstream gradient, the shape of f(x).
    Returns:
        grad: array of x's shape. The difference `f(x+h) - f(x-h)` is formed before the sum, which
        keeps the round-off proportional to one output, not to the whole sum.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.array(f(x), dtype=np.float64)
        x[i] = old - h
        minus = np.array(f(x), dtype=np.float64)
        x[i] = old
        grad[i] = np.sum((plus - minus) * df) / (2 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray, eps: float = SCALE_FLOOR) -> float:
    """Largest elementwise relative error `|a - b| / max(eps, |a| + |b|)` (0 for empty arrays).

    The epsilon floor keeps two exact zeros from dividing by zero. Note that this measure
    over-reports on tiny entries: a gradient entry of 1e-12 that is off by 1e-16 has a relative
    error of 1e-4. The checkers therefore use `scaled_error`.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(eps, np.abs(a) + np.abs(b))))


def scaled_error(received: np.ndarray, expected: np.ndarray) -> float:
    """`max |received - expected|` divided by the size of the larger of the two arrays.

    Size is the largest absolute entry, floored at SCALE_FLOOR. This is a relative error of the
    array as a whole: it ignores round-off on entries far smaller than the rest, which a purely
    elementwise relative error mistakes for a wrong gradient.
    """
    received = np.asarray(received, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if received.size == 0:
        return 0.0
    scale = max(np.max(np.abs(received)), np.max(np.abs(expected)), SCALE_FLOOR)
    return float(np.max(np.abs(received - expected)) / scale)


class Probe:
    """Directional derivatives of `sum(evaluate() * upstream)` as one array is perturbed in place.

    Inputs:
        evaluate: recomputes the output from the current values of `target` (and whatever else it
            closes over); returns an array of upstream's shape, or a float when upstream is None.
        target: the float64 array being differentiated; perturbed in place and always restored.
        upstream: the upstream gradient (None for a scalar function).
    Each `at` / `along` returns `(central, forward, backward)` differences; `is_kink` says whether
    the one-sided ones disagree.
    """

    def __init__(
        self,
        evaluate: Callable[[], np.ndarray | float],
        target: np.ndarray,
        upstream: np.ndarray | None = None,
    ):
        self.evaluate = evaluate
        self.target = target
        self.upstream = upstream
        self.base = self._output()
        self.evaluations = 1

    def _output(self) -> np.ndarray:
        return np.array(self.evaluate(), dtype=np.float64)

    def _project(self, delta: np.ndarray) -> float:
        if self.upstream is None:
            return float(delta)
        return float(np.sum(delta * self.upstream))

    def _differences(self, set_offset: Callable[[float], None], h: float) -> tuple[float, float, float]:
        """Evaluate at offsets +h and -h (set_offset(0) restores the target exactly)."""
        try:
            set_offset(h)
            plus = self._output()
            set_offset(-h)
            minus = self._output()
        finally:
            set_offset(0.0)
        self.evaluations += 2
        central = self._project(plus - minus) / (2 * h)
        forward = self._project(plus - self.base) / h
        backward = self._project(self.base - minus) / h
        return central, forward, backward

    def at(self, index: tuple[int, ...]) -> tuple[float, float, float]:
        """Differences along one coordinate of target."""
        old = self.target[index]

        def set_offset(offset: float) -> None:
            self.target[index] = old + offset if offset else old

        return self._differences(set_offset, _step(old))

    def along(self, direction: np.ndarray) -> tuple[float, float, float]:
        """Differences along a direction (an array of target's shape, unit length)."""
        old = self.target.copy()

        def set_offset(offset: float) -> None:
            self.target[...] = old + offset * direction if offset else old

        return self._differences(set_offset, _step(np.max(np.abs(old)) if old.size else 0.0))

    @staticmethod
    def is_kink(forward: float, backward: float, scale: float) -> bool:
        return abs(forward - backward) > KINK_TOL * max(scale, SCALE_FLOOR)


def sample_indices(
    shape: Sequence[int], count: int, rng: np.random.Generator
) -> list[tuple[int, ...]]:
    """`count` distinct random coordinates of an array of `shape` (all of them if fewer)."""
    size = int(np.prod(shape))
    flat = rng.choice(size, size=min(count, size), replace=False)
    return [tuple(int(v) for v in np.unravel_index(i, shape)) for i in np.sort(flat)]
