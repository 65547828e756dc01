"""Hypotheses about a wrong array compared with known values (`check_values`).

Without the student's code at hand, the checker can still recognise a few shapes of mistake in the
numbers themselves: the test cell's own list of likely wrong values (an update rule without
momentum, a loss that ignores its margin), a normalisation over the wrong axis (rows that should
sum to one, columns that do instead), and the same offset in every row (a term shared by every
sample, such as a bias, missing).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .diagnose import EXPLAIN_TOL, Hypothesis, explains

__all__ = ["value_hypotheses"]


def value_hypotheses(
    name: str, received: np.ndarray, expected: np.ndarray, likely: Mapping[str, Any] | None = None
) -> list[Hypothesis]:
    """Named alternatives for `received` (float64, expected's shape), most specific first.

    likely: {clause: values}: "`name` is what you get when <clause>" if received matches values.
    """
    hyps = []
    for clause, values in (likely or {}).items():
        alternative = np.asarray(values, dtype=np.float64)
        if alternative.shape == received.shape:
            hyps.append(Hypothesis(f"{name} is what you get when {clause}.",
                                   lambda alt=alternative: explains(received, alt)))
    if received.ndim == 2:
        hyps += _normalisation(name, received, expected)
        hyps.append(Hypothesis(
            f"{name} differs from the expected values by the same amounts in every row: a term shared by "
            "every sample (such as the bias b, added to each row) is missing or wrong.",
            lambda: _same_offset_in_every_row(received, expected)))
    return hyps


def _sums_to(values: np.ndarray, target: float) -> bool:
    return bool(np.all(np.abs(values - target) <= EXPLAIN_TOL * max(1.0, abs(target))))


def _normalisation(name: str, received: np.ndarray, expected: np.ndarray) -> list[Hypothesis]:
    """Expected rows (two or more) all sum to one number s (a softmax: s = 1): which sum does received
    normalise?"""
    row_sums = expected.sum(axis=1)
    if expected.shape[0] < 2 or not np.all(np.isfinite(row_sums)) or not np.all(np.isfinite(received)):
        return []
    s = float(row_sums[0])
    if abs(s) < EXPLAIN_TOL or not _sums_to(row_sums, s) or _sums_to(received.sum(axis=1), s):
        return []
    return [
        Hypothesis(f"{name} is normalised over the wrong axis: its columns sum to {s:g} where each row "
                   f"should (normalise along axis=1, the classes, with keepdims=True — not axis=0, the batch).",
                   lambda: received.shape[0] > 1 and _sums_to(received.sum(axis=0), s)),
        Hypothesis(f"{name} is normalised over the whole array (all rows together sum to {s:g}): normalise "
                   "each row on its own (sum along axis=1 with keepdims=True).",
                   lambda: received.shape[0] > 1 and _sums_to(np.array([received.sum()]), s)),
        Hypothesis(f"{name} has each row proportional to the expected one but with the wrong sum: each row "
                   f"must be divided by its own total (sum along axis=1 with keepdims=True), so that it sums to {s:g}.",
                   lambda: _rows_proportional(received, expected)),
        Hypothesis(f"{name} is off by a factor that is a row factor times a column factor: the row totals were "
                   "broadcast along the wrong axis (without keepdims=True, an array of shape (N,) divides the "
                   "columns, not the rows).",
                   lambda: _row_times_column_factor(received, expected)),
    ]


def _rows_proportional(received: np.ndarray, expected: np.ndarray) -> bool:
    factors = []
    for got, want in zip(received, expected):
        if not np.any(want):
            return False
        factors.append(float(np.dot(got, want) / np.dot(want, want)))
    return explains(received, np.array(factors)[:, None] * expected)


def _same_offset_in_every_row(received: np.ndarray, expected: np.ndarray) -> bool:
    if received.shape[0] < 2:
        return False
    offset = received - expected
    scale = max(np.max(np.abs(received)), np.max(np.abs(expected)), 1e-12)
    if np.max(np.abs(offset)) <= EXPLAIN_TOL * scale:
        return False
    return bool(np.max(np.abs(offset - offset[0])) <= EXPLAIN_TOL * scale)


def _row_times_column_factor(received: np.ndarray, expected: np.ndarray) -> bool:
    """received[i, j] = expected[i, j] · a[i] · b[j] with a, b not constant: log ratios are additive."""
    if np.any(received <= 0) or np.any(expected <= 0) or min(received.shape) < 2:
        return False
    log_ratio = np.log(received / expected)
    additive = log_ratio.mean(axis=1, keepdims=True) + log_ratio.mean(axis=0, keepdims=True) - log_ratio.mean()
    return bool(np.max(np.abs(log_ratio - additive)) <= EXPLAIN_TOL and np.ptp(log_ratio) > EXPLAIN_TOL)
