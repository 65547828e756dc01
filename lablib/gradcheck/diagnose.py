"""Name the usual mistake behind a wrong gradient, in plain words.

A wrong gradient is compared with simple transformations of the numeric one: a constant multiple
(negated, N times too large or too small, doubled, halved), the transpose, the gradient of another
sample of the batch; failing those, where the wrong entries are (only at the true class, say).
Each diagnosis is a sentence the student reads under the failed check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = ["Context", "diagnose", "describe_scale"]

#: How closely a transformation of the numeric gradient must explain the received one.
EXPLAIN_TOL = 1e-3

Index = tuple[int, ...]


@dataclass(frozen=True)
class Context:
    """What the diagnosis knows about the array being checked.

    kind: "layer", "loss" or "function" (changes the advice about where 1/N belongs).
    batch_size: N, the first dimension of the input, when there is one.
    batch_axis: whether axis 0 of this array runs over the samples of the batch (dx, dscores).
    labels: the integer class labels of a loss, shape (N,).
    """

    kind: str = "layer"
    batch_size: int | None = None
    batch_axis: bool = False
    labels: np.ndarray | None = None


def _explains(received: np.ndarray, candidate: np.ndarray) -> bool:
    scale = max(np.max(np.abs(received)), np.max(np.abs(candidate)), 1e-12)
    return bool(np.max(np.abs(received - candidate)) <= EXPLAIN_TOL * scale)


def describe_scale(name: str, factor: float, ctx: Context) -> str:
    """A sentence for `received ≈ factor × expected`, with the likely cause."""
    n = ctx.batch_size

    def near(value: float) -> bool:
        return abs(factor - value) <= EXPLAIN_TOL * max(1.0, abs(value))

    if near(-1.0):
        return (f"{name} has the wrong sign (received ≈ −expected): check the sign of each term; "
                "a gradient points uphill, and backward passes the upstream gradient on unchanged in sign.")
    if n and n > 1 and near(float(n)):
        if ctx.kind == "loss":
            return (f"{name} is N = {n} times too large (N is the batch size): the loss is the mean over "
                    "the batch, so its gradient carries a factor 1/N.")
        return (f"{name} is N = {n} times too large (N is the batch size): did you multiply by N, "
                "or sum the same term once per sample?")
    if n and n > 1 and near(1.0 / n):
        if ctx.kind == "loss":
            return (f"{name} is N = {n} times too small (N is the batch size): did you average twice "
                    "(divide by N in forward and again in backward)?")
        return (f"{name} is N = {n} times too small (N is the batch size): a layer's backward does not "
                "average over the batch; the 1/N belongs to the loss, and only there.")
    if near(2.0):
        return (f"{name} is twice too large: a term counted twice, or a missing 1/2 "
                "(the Euclidean loss has ½ in front so that its gradient has none).")
    if near(0.5):
        return (f"{name} is half of what it should be: a factor 2 is missing "
                "(the derivative of λ‖W‖² is 2λW; of ½(s−t)² it is (s−t)).")
    return f"{name} is {factor:.4g} times the expected gradient: a constant factor is wrong."


def diagnose(
    name: str,
    received: np.ndarray,
    indices: Sequence[Index],
    expected: np.ndarray,
    oracle: Callable[[Index], Sequence[float]],
    ctx: Context,
) -> list[str]:
    """Sentences explaining why `received` differs from the numeric gradient.

    Inputs:
        received: the student's full array.
        indices: the coordinates where the numeric gradient is known (not at kinks).
        expected: the numeric gradient at those coordinates, shape (len(indices),).
        oracle: the acceptable numeric values at any coordinate: (central,) where the function is
            smooth, (central, forward, backward) at a kink. May cost two forward passes.
    Returns:
        zero or more sentences, most specific first.
    """
    if not indices:
        return []
    got = np.array([received[i] for i in indices], dtype=np.float64)
    want = np.asarray(expected, dtype=np.float64)
    if not np.any(want) and not np.any(got):
        return []
    if not np.any(got):
        return [f"{name} is all zeros where it should not be: was the gradient computed but never "
                "returned or assigned (for a parameter: `self.W.grad = ...`)?"]
    if np.any(want):
        factor = float(np.dot(got, want) / np.dot(want, want))
        if abs(factor - 1.0) > EXPLAIN_TOL and _explains(got, factor * want):
            return [describe_scale(name, factor, ctx)]
    if received.ndim == 2 and received.shape[0] == received.shape[1] and received.shape[0] > 1:
        transposed = np.array([oracle((j, i))[0] for i, j in indices])
        if _explains(got, transposed):
            return [f"{name} is transposed: received[i, j] ≈ expected[j, i]. Square matrices hide this "
                    "from a shape check; with W of shape (in, out), dW = xᵀ @ dout has shape (in, out)."]
    return _wrong_sample(name, received, indices, got, want, oracle, ctx) or _where(
        name, indices, got, want, ctx
    )


def _mismatched(indices: Sequence[Index], got: np.ndarray, want: np.ndarray) -> list[int]:
    scale = max(np.max(np.abs(got)), np.max(np.abs(want)), 1e-12)
    return [k for k in range(len(indices)) if abs(got[k] - want[k]) > EXPLAIN_TOL * scale]


def _wrong_sample(name, received, indices, got, want, oracle, ctx) -> list[str]:
    """Every wrong row i equals, on all its checked entries, the expected row of another sample j."""
    n = received.shape[0] if received.ndim else 0
    if not ctx.batch_axis or n < 2 or n > 64:
        return []
    bad_rows = sorted({indices[k][0] for k in _mismatched(indices, got, want)})
    if not bad_rows:
        return []
    scale = max(np.max(np.abs(got)), np.max(np.abs(want)), 1e-12)
    tol = EXPLAIN_TOL * scale
    sources: dict[int, int] = {}
    for row in bad_rows:
        entries = [k for k in range(len(indices)) if indices[k][0] == row]
        if not any(abs(got[k]) > tol for k in entries):
            return []  # an all-zero row matches any zero row: not evidence of a mix-up
        for j in range(n):
            if j != row and all(min(abs(got[k] - v) for v in oracle((j, *indices[k][1:]))) <= tol
                                for k in entries):
                sources[row] = j
                break
        else:
            return []
    pairs = ", ".join(f"row {row} has sample {src}'s" for row, src in list(sources.items())[:3])
    return [f"{name} mixes up the samples of the batch ({pairs} gradient): each row i must be "
            "computed from sample i only (check the indexing, or a broadcast over the batch axis)."]


def _where(name, indices, got, want, ctx) -> list[str]:
    bad = _mismatched(indices, got, want)
    if not bad:
        return []
    total = len(indices)
    if ctx.labels is not None and all(len(indices[k]) == 2 for k in range(total)):
        at_true = [int(indices[k][1]) == int(ctx.labels[indices[k][0]]) for k in range(total)]
        if all(at_true[k] for k in bad):
            return [f"{name} is wrong only at the true-class entries [i, y[i]] and right elsewhere: "
                    "the term for the correct class is missing or wrong."]
        if not any(at_true[k] for k in bad):
            return [f"{name} is right at the true-class entries [i, y[i]] but wrong at the other classes."]
    if len(bad) < total:
        return [f"{name} is wrong at {len(bad)} of {total} checked entries and right at the others: "
                "a term is missing or wrong only for some entries."]
    return []
