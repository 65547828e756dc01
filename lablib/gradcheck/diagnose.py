"""Name the usual mistake behind a wrong array, in plain words.

A wrong array is first tested against *hypotheses*: named alternatives that the checker built from
what it can observe (the derivative of the student's forward at other points, a forward with a
parameter transposed, one sample's share of a gradient, a test cell's list of likely wrong values).
Failing those, it is compared with simple transformations of the expected array: a constant
multiple (negated, N or C times too large or too small, doubled, halved), the transpose, another
sample's row; failing those, where the wrong entries are (only at the true class, say).

The words depend on what the array is (`Context.what`): a gradient (computed by backward or by a
gradient function), a value (what a forward or a function returns) or an update (how far an
optimizer moved a parameter). Each diagnosis is a sentence the student reads under the failed check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

__all__ = ["Context", "Hypothesis", "diagnose", "describe_scale", "explains", "WHAT"]

#: How closely a transformation of the expected array must explain the received one
#: (relative to the larger of the two arrays).
EXPLAIN_TOL = 1e-3
#: Below this size an array counts as zero when errors are scaled.
ZERO = 1e-12

#: What an array can be; the diagnoses use the word itself as the noun ("the expected update").
WHAT = ("gradient", "value", "update")

Index = tuple[int, ...]


@dataclass(frozen=True)
class Context:
    """What the diagnosis knows about the array being checked.

    kind: "layer", "loss", "function" or "values" (known values, from a test cell): who produced it
        and what it is compared with (changes the advice about where 1/N belongs).
    what: "gradient", "value" or "update": what the array is (changes the words).
    batch_size: N, the first dimension of the input, when there is one.
    batch_axis: whether axis 0 of this array runs over the samples of the batch (dx, dscores).
    labels: the integer class labels of a loss, shape (N,).
    num_classes: C, the number of classes of a loss (names a factor C: averaged over every entry).
    forward_checked: the caller has checked the forward against known values already, so a wrong
        factor in a gradient is the gradient's (not "either the gradient or your forward").
    """

    kind: str = "layer"
    batch_size: int | None = None
    batch_axis: bool = False
    labels: np.ndarray | None = None
    num_classes: int | None = None
    what: str = "gradient"
    forward_checked: bool = False

    @property
    def noun(self) -> str:
        return self.what if self.what in WHAT else "value"


@dataclass(frozen=True)
class Hypothesis:
    """A named alternative: `sentence` is the diagnosis if `holds()` is true (a `holds` that measures
    something may return the sentence itself, quoting what it measured). `holds` may run the
    student's code (a few forward calls); it is called only for a failed check, in order."""

    sentence: str
    holds: Callable[[], bool | str]


def explains(received: np.ndarray, candidate: np.ndarray, tol: float = EXPLAIN_TOL) -> bool:
    """Whether `candidate` equals `received` to `tol` relative to the larger of the two.

    candidate may carry alternatives on a last extra axis (e.g. both one-sided derivatives at a
    kink): an entry then matches if any alternative does. NaN never matches.
    """
    received = np.asarray(received, dtype=np.float64)
    candidate = np.asarray(candidate, dtype=np.float64)
    if candidate.ndim == received.ndim + 1:
        gap = np.min(np.abs(candidate - received[..., None]), axis=-1)
        size = np.max(np.abs(candidate[..., 0])) if candidate.size else 0.0
    else:
        gap = np.abs(received - candidate)
        size = np.max(np.abs(candidate)) if candidate.size else 0.0
    if received.size == 0 or not np.all(np.isfinite(gap)):
        return False
    scale = max(np.max(np.abs(received)), size, ZERO)
    return bool(np.max(gap) <= tol * scale)


def _wrong_sign(name: str, ctx: Context) -> str:
    if ctx.what == "update":
        return (f"{name} moved the wrong way (the update ≈ −expected): a descent step subtracts, "
                "p -= lr · (step direction).")
    if ctx.what == "value":
        return f"{name} has the wrong sign (received ≈ −expected): check the sign of each term."
    return (f"{name} has the wrong sign (received ≈ −expected): check the sign of each term; "
            "a gradient points uphill, and backward passes the upstream gradient on unchanged in sign.")


def _either(name: str, factor: float, ctx: Context) -> str:
    """Where a gradient is compared with the numeric gradient of the student's own forward (or
    function), a wrong factor can sit in either: say so rather than blame a gradient that may be right."""
    if ctx.what != "gradient" or not factor or ctx.forward_checked:
        return ""
    source = {"layer": "your forward", "loss": "your forward", "function": "the function"}.get(ctx.kind)
    if source is None:
        return ""
    off = "has the wrong sign" if factor == -1.0 else f"is off by a factor {factor:.4g}"
    return (f" — or {source} {off} ({name} is compared with the numeric gradient of {source}: "
            "if its own check fails too, fix that first)")


#: Where a factor 2 or ½ usually comes from, by (factor, who produced the array, what it is).
_EXAMPLES = {
    (2.0, "loss", "gradient"): " (the Euclidean loss has ½ in front so that its gradient has none)",
    (2.0, "loss", "value"): " (the Euclidean loss has ½ in front)",
    (2.0, "function", "gradient"): " (the derivative of ½x² is x)",
    (0.5, "loss", "gradient"): " (the derivative of ½(s−t)² is (s−t), of (s−t)² it is 2(s−t))",
    (0.5, "function", "gradient"): " (the derivative of λ‖W‖² is 2λW)",
}


def _example(factor: float, ctx: Context) -> str:
    return _EXAMPLES.get((factor, ctx.kind, ctx.what), "")


def describe_scale(name: str, factor: float, ctx: Context) -> str:
    """A sentence for `received ≈ factor × expected`, with the likely cause."""
    n, c, noun = ctx.batch_size, ctx.num_classes, ctx.noun
    # Where the checker compares with the numeric gradient of the student's own forward, a factor
    # can sit in either: say so rather than blame a backward that may be right.
    either = _either(name, 1 / factor if factor else 0.0, ctx)

    def near(value: float) -> bool:
        return abs(factor - value) <= EXPLAIN_TOL * max(1.0, abs(value))

    if near(-1.0):
        sentence, either = _wrong_sign(name, ctx), _either(name, -1.0, ctx)
        return sentence[:-1] + either + "." if either else sentence
    if n and n > 1 and near(float(n)):
        if ctx.kind == "loss" and ctx.what == "value":
            return (f"{name} is N = {n} times too large (N is the batch size): the loss is the mean over "
                    "the batch, not the sum: divide by N.")
        if ctx.kind == "loss":
            return (f"{name} is N = {n} times too large (N is the batch size): the loss is the mean over "
                    "the batch, so its gradient carries a factor 1/N.")
        if ctx.what == "update":
            return f"{name} moved N = {n} times too far (N is the batch size)."
        return (f"{name} is N = {n} times too large (N is the batch size): did you multiply by N, "
                "or sum the same term once per sample?")
    if n and n > 1 and near(1.0 / n):
        if ctx.kind == "loss" and ctx.what == "value":
            return (f"{name} is N = {n} times too small (N is the batch size): did you divide by N twice, "
                    "or average over the wrong axis?")
        if ctx.kind == "loss":
            return (f"{name} is N = {n} times too small (N is the batch size): did you average twice "
                    "(divide by N in forward and again in backward)?")
        if ctx.kind == "layer":
            return (f"{name} is N = {n} times too small (N is the batch size): a layer's backward does not "
                    "average over the batch; the 1/N belongs to the loss, and only there.")
        return f"{name} is N = {n} times too small (N is the batch size): a mean where a sum belongs?"
    if c and c > 1 and c != n and near(1.0 / c) and ctx.kind == "loss":
        if ctx.what == "value":
            return (f"{name} is C = {c} times too small (C is the number of classes): the loss is averaged "
                    "over every entry (N·C, classes too) instead of over the batch (N): sum over the classes, "
                    "average over the samples.")
        return (f"{name} is C = {c} times too small (C is the number of classes): divided by N·C (every "
                "entry) instead of N (the batch).")
    if c and c > 1 and c != n and near(float(c)) and ctx.kind == "loss":
        return (f"{name} is C = {c} times the numeric gradient of your forward (C is the number of classes): "
                "does forward average over every entry (N·C, classes too) instead of over the batch (N)? "
                "The loss sums over the classes and averages over the samples.")
    if near(2.0):
        return f"{name} is twice too large: a term counted twice, or a missing 1/2{_example(2.0, ctx)}{either}."
    if near(0.5):
        return f"{name} is half of what it should be: a factor 2 is missing{_example(0.5, ctx)}{either}."
    if ctx.what == "update":
        return (f"{name} moved {factor:.4g} times as far as expected: a factor of the step is wrong "
                "(the learning rate applied twice or not at all?).")
    return f"{name} is {factor:.4g} times the expected {noun}: a constant factor is wrong{either}."


#: Factors that have a name of their own; any other ratio of two single numbers says nothing.
def _named_factor(factor: float, ctx: Context) -> bool:
    named = [-1.0, 2.0, 0.5] + [float(v) for v in (ctx.batch_size, ctx.num_classes) if v and v > 1]
    named += [1.0 / v for v in named if v not in (-1.0,)]
    return any(abs(factor - v) <= EXPLAIN_TOL * max(1.0, abs(v)) for v in named)


def _all_zeros(name: str, ctx: Context) -> str:
    if ctx.what == "update":
        return (f"{name} did not change: was the update computed but never written back "
                "(p.data -= ..., or p.data = the new array)?")
    if ctx.what == "value":
        return f"{name} is all zeros where it should not be: was the result computed but never returned?"
    if ctx.kind == "function":
        return (f"{name} is all zeros, but the function changes with this input: either its gradient is "
                "missing, or the function should not depend on it at all.")
    return (f"{name} is all zeros where it should not be: was the gradient computed but never "
            "returned or assigned (for a parameter: `self.W.grad = ...`)?")


def diagnose(
    name: str,
    received: np.ndarray,
    indices: Sequence[Index],
    expected: np.ndarray,
    oracle: Callable[[Index], Sequence[float]],
    ctx: Context,
    hypotheses: Sequence[Hypothesis] = (),
) -> list[str]:
    """Sentences explaining why `received` differs from the expected array.

    Inputs:
        received: the student's full array.
        indices: the coordinates where the expected value is known (not at kinks).
        expected: the expected values at those coordinates, shape (len(indices),).
        oracle: the acceptable expected values at any coordinate: (central,) where the function is
            smooth, (central, forward, backward) at a kink. May cost two forward passes.
        hypotheses: named alternatives, tried first and in order.
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
        return [_all_zeros(name, ctx)]
    if np.any(want) and explains(got, -want):  # a sign says more than any hypothesis
        return [describe_scale(name, -1.0, ctx)]
    for hypothesis in hypotheses:
        try:
            holds = hypothesis.holds()
        except Exception:  # noqa: BLE001 - a hypothesis that cannot be tested does not hold
            holds = False
        if holds:
            return [holds if isinstance(holds, str) else hypothesis.sentence]
    if not np.any(want):
        return [f"{name} should be all zeros but is not."]
    factor = float(np.dot(got, want) / np.dot(want, want))
    if abs(factor - 1.0) > EXPLAIN_TOL and explains(got, factor * want):
        # One number is always a multiple of another: a ratio means something only if it has a name.
        if got.size > 1 or _named_factor(factor, ctx):
            return [describe_scale(name, factor, ctx)]
        return []
    if received.ndim == 2 and received.shape[0] == received.shape[1] and received.shape[0] > 1:
        transposed = np.array([oracle((j, i))[0] for i, j in indices])
        if explains(got, transposed):
            return [f"{name} is transposed: received[i, j] ≈ expected[j, i]. Square matrices hide this "
                    "from a shape check; with W of shape (in, out), dW = xᵀ @ dout has shape (in, out)."
                    if ctx.what == "gradient" else
                    f"{name} is transposed: received[i, j] ≈ expected[j, i] (square arrays hide this from "
                    "a shape check)."]
    return _wrong_sample(name, received, indices, got, want, oracle, ctx) or _where(
        name, indices, got, want, ctx
    )


def _mismatched(indices: Sequence[Index], got: np.ndarray, want: np.ndarray) -> list[int]:
    scale = max(np.max(np.abs(got)), np.max(np.abs(want)), ZERO)
    return [k for k in range(len(indices)) if abs(got[k] - want[k]) > EXPLAIN_TOL * scale]


def _wrong_sample(name, received, indices, got, want, oracle, ctx) -> list[str]:
    """Every wrong row i equals, on all its checked entries, the expected row of another sample j."""
    n = received.shape[0] if received.ndim else 0
    if not ctx.batch_axis or n < 2 or n > 64:
        return []
    bad_rows = sorted({indices[k][0] for k in _mismatched(indices, got, want)})
    if not bad_rows:
        return []
    scale = max(np.max(np.abs(got)), np.max(np.abs(want)), ZERO)
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
    return [f"{name} mixes up the samples of the batch ({pairs} {ctx.noun}): each row i must be "
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
