"""Hypotheses about a wrong dx of an elementwise layer (ReLU, Sigmoid, Tanh, GELU, ...).

For an elementwise layer y = f(x), backward must return dx = dout · f′(x) entry by entry. The
checker can observe the student's forward f as a black box, its output y, the upstream gradient dout
and the student's backward. From these it forms the derivatives of the usual wrong formulas without
knowing which activation it is looking at:

- the derivative of the student's own forward evaluated somewhere else: at the output y (a formula
  meant for x applied to y), at dout (a mask taken from dout), or the student's backward formula
  evaluated at y (a formula meant for the output applied to the input);
- the local derivative without dout (chain rule not applied), or dout alone (derivative missing),
  1 − f′ (the mask inverted) or 2 − f′ (a sign flipped inside 1 − g);
- a missing or extra factor from the usual building blocks (y, 1 − y, 1 + y, 1 − y², x), or one
  of them where another belongs;
- the derivative of another common activation, written in terms of y or x;
- one term of the product rule for f(x) = x · g(x) (g = y / x);
- a slope where the forward is flat (or the reverse) on one side of zero: a leaky ReLU;
- right for small |x| and wrong for large |x|: a wrong coefficient of a higher power of x.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .diagnose import Hypothesis, explains
from .numeric import STEP

__all__ = ["is_elementwise", "elementwise_hypotheses", "local_slopes"]

Index = tuple[int, ...]

#: Entries whose upstream gradient is below this fraction of the largest are left out when a
#: per-entry ratio dx / dout is formed (the ratio is noise there).
RATIO_FLOOR = 0.1
#: |x| at most this counts as "small" when a derivative is right near 0 and wrong further out.
SMALL_X = 0.5

#: Factors a derivative formula often misses or has in excess, in terms of the output y and input x.
FACTORS: tuple[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]], ...] = (
    ("(1 − y)", lambda x, y: 1.0 - y),
    ("(1 + y)", lambda x, y: 1.0 + y),
    ("y", lambda x, y: y),
    ("(1 − y²)", lambda x, y: 1.0 - y * y),
    ("x", lambda x, y: x),
)

#: Derivatives of other common activations, as the formulas students write from the output y or input x.
OTHER_DERIVATIVES: tuple[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]], ...] = (
    ("y(1 − y), the sigmoid's derivative written with the output", lambda x, y: y * (1.0 - y)),
    ("1 − y², tanh's derivative written with the output", lambda x, y: 1.0 - y * y),
    ("the step 1[x > 0], ReLU's derivative", lambda x, y: (x > 0).astype(np.float64)),
    ("x(1 − x), the sigmoid's derivative formula applied to the input", lambda x, y: x * (1.0 - x)),
    ("1 − x², tanh's derivative formula applied to the input", lambda x, y: 1.0 - x * x),
)


def _quiet(fn: Callable[[], np.ndarray]) -> np.ndarray | None:
    """Run student code for a hypothesis; None if it raises or returns something unusable."""
    try:
        with np.errstate(all="ignore"):
            value = np.array(fn(), dtype=np.float64)
    except Exception:  # noqa: BLE001 - a hypothesis that cannot be tested does not hold
        return None
    return value


def is_elementwise(forward: Callable[[np.ndarray], np.ndarray], x: np.ndarray, out: np.ndarray) -> bool:
    """Whether output entry i depends on input entry i only: same shapes, and nudging two input
    entries changes the output at those entries and nowhere else (two forward calls)."""
    if out.shape != x.shape or x.size < 2:
        return out.shape == x.shape and x.size == 1
    for flat in (0, x.size // 2):  # two different entries (x.size >= 2)
        index = np.unravel_index(flat, x.shape)
        nudged = x.copy()
        nudged[index] += 0.5 * max(1.0, abs(nudged[index]))
        moved = _quiet(lambda: forward(nudged))
        if moved is None or moved.shape != out.shape:
            return False
        changed = moved != out
        changed[index] = False
        if np.any(changed):
            return False
    return True


def local_slopes(forward: Callable[[np.ndarray], np.ndarray], z: np.ndarray) -> np.ndarray | None:
    """The derivative of an elementwise forward at every entry of z: central, forward and backward
    differences stacked on a last axis (shape z.shape + (3,)), so that at a kink either one-sided
    slope can be accepted. Three forward calls."""
    h = STEP * np.maximum(1.0, np.abs(z))
    base = _quiet(lambda: forward(z.copy()))
    plus = _quiet(lambda: forward(z + h))
    minus = _quiet(lambda: forward(z - h))
    if base is None or plus is None or minus is None or not base.shape == plus.shape == minus.shape == z.shape:
        return None
    return np.stack([(plus - minus) / (2 * h), (plus - base) / h, (base - minus) / h], axis=-1)


def elementwise_hypotheses(
    name: str,
    received: np.ndarray,
    indices: Sequence[Index],
    x: np.ndarray,
    y: np.ndarray,
    dout: np.ndarray,
    forward: Callable[[np.ndarray], np.ndarray],
    backward_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> list[Hypothesis]:
    """Named alternatives for a wrong dx of an elementwise layer, most specific first.

    Inputs:
        received: the student's dx, x's shape. indices: the entries where the numeric gradient is
        known (not at kinks). x, y, dout: input, the student's output, the upstream gradient.
        forward(z): the student's forward on another input (float64, z's shape).
        backward_at(z, g): the student's forward on z, then backward(g).
    """
    if not indices:
        return []
    pick = tuple(np.array(indices).T)
    got, xs, ys, gs = received[pick], x[pick], y[pick], dout[pick]
    cache: dict[str, np.ndarray | None] = {}

    def slopes(key: str, z: np.ndarray) -> np.ndarray | None:
        if key not in cache:
            full = local_slopes(forward, z)
            cache[key] = None if full is None else full[pick]
        return cache[key]

    def fprime() -> np.ndarray:  # the derivative of the student's forward at x (central differences)
        d = slopes("x", x)
        if d is None:
            raise ValueError("forward unusable")
        return d[..., 0]

    def times_dout(d: np.ndarray | None) -> np.ndarray:
        if d is None:
            raise ValueError("not computable")
        return d * (gs[..., None] if d.ndim == gs.ndim + 1 else gs)

    def student_at_output() -> np.ndarray:
        full = _quiet(lambda: backward_at(y.copy(), dout.copy()))
        if full is None or full.shape != x.shape:
            raise ValueError("not computable")
        return full[pick]

    hyps = [
        Hypothesis(f"{name} does not use dout: by the chain rule dx = dout · f′(x), and yours is f′(x) alone "
                   "(multiply by the upstream gradient).",
                   lambda: explains(got, fprime())),
        Hypothesis(f"{name} is dout unchanged: the local derivative f′(x) is missing (dx = dout · f′(x)).",
                   lambda: explains(got, gs)),
        Hypothesis(f"{name} uses 1 − f′(x) instead of f′(x): the mask or the derivative is inverted "
                   "(where f′ should be 1 yours is 0, and the reverse).",
                   lambda: explains(got, times_dout(1.0 - fprime()))),
        Hypothesis(f"{name} uses 1 + g where the derivative is 1 − g (yours is 2 − f′(x)): a sign inside the "
                   "derivative is flipped (e.g. 1 + y² for tanh's 1 − y²).",
                   lambda: explains(got, times_dout(2.0 - fprime()))),
        Hypothesis(f"{name} evaluates the derivative at dout instead of at the input x (e.g. a mask taken "
                   "from dout > 0): f′ must be evaluated where forward was, at x.",
                   lambda: explains(got, times_dout(slopes("dout", dout)))),
        Hypothesis(f"{name} evaluates the derivative at the output y = forward(x) instead of the input x: "
                   "a formula in x (such as f′(x)) needs the input; cache x in forward.",
                   lambda: explains(got, times_dout(slopes("y", y)))),
        Hypothesis(f"{name} applies to the input x a formula meant for the output y (e.g. y(1 − y) or "
                   "1 − y² computed with x): cache the output of forward and use it in backward.",
                   lambda: explains(student_at_output(), times_dout(fprime()))),
    ]
    hyps.append(_one_sided(name, got, xs, gs, fprime))
    for words, derivative in OTHER_DERIVATIVES:
        hyps.append(Hypothesis(
            f"{name} uses {words}, which is not the derivative of your forward (another activation's formula?).",
            lambda d=derivative: explains(got, times_dout(d(xs, ys)))))
    hyps += [
        Hypothesis(f"{name} keeps only the first term of the product rule: for y = x · g(x), "
                   "dy/dx = g(x) + x · g′(x), and yours is g(x) = y / x alone.",
                   lambda: explains(got * xs, times_dout(ys))),
        Hypothesis(f"{name} keeps only the second term of the product rule: for y = x · g(x), "
                   "dy/dx = g(x) + x · g′(x), and yours misses g(x) = y / x.",
                   lambda: explains(got * xs, times_dout(fprime() * xs - ys))),
    ]
    for words, factor in FACTORS:
        hyps.append(Hypothesis(
            f"{name} misses a factor {words} (y is the output of forward, x its input): compare your "
            "derivative with the formula term by term.",
            lambda f=factor: explains(got * f(xs, ys), times_dout(fprime()))))
        hyps.append(Hypothesis(
            f"{name} has an extra factor {words} (y is the output of forward, x its input): compare your "
            "derivative with the formula term by term.",
            lambda f=factor: explains(got, times_dout(fprime() * f(xs, ys)))))
    for missing, f_missing in FACTORS:
        for extra, f_extra in FACTORS:
            if missing != extra:
                hyps.append(Hypothesis(
                    f"{name} has a factor {extra} where {missing} belongs (y is the output of forward, x its "
                    "input): compare your derivative with the formula term by term.",
                    lambda fm=f_missing, fe=f_extra: explains(got * fm(xs, ys), times_dout(fprime() * fe(xs, ys)))))
    hyps.append(Hypothesis(
        f"{name} is right for small |x| and wrong for larger |x|: a term with a higher power of x "
        "(x², x³) has a wrong coefficient (e.g. d/dx x³ = 3x², and the chain rule through the inner function) "
        "— in backward, or in your forward (dx is compared with the numeric gradient of your forward).",
        lambda: _right_only_near_zero(got, xs, times_dout(fprime()))))
    return hyps


def _one_sided(name: str, got, xs, gs, fprime) -> Hypothesis:
    """A constant slope difference confined to x < 0: a leaky slope in backward (or in forward only).
    The sentence quotes the two slopes, so `holds` returns it."""

    def holds() -> str | bool:
        usable = np.abs(gs) > RATIO_FLOOR * np.max(np.abs(gs))
        ratio, d = got[usable] / gs[usable], fprime()[usable]
        neg, pos = xs[usable] < 0, xs[usable] > 0
        if neg.sum() < 2 or pos.sum() < 1 or not explains(ratio[pos], d[pos]):
            return False
        back, fwd = ratio[neg], d[neg]
        if np.ptp(back) > 1e-3 * max(1.0, np.abs(back).max()) or np.ptp(fwd) > 1e-3 * max(1.0, np.abs(fwd).max()):
            return False
        slope_b, slope_f = float(np.mean(back)), float(np.mean(fwd))
        if abs(slope_b - slope_f) <= 1e-3:
            return False
        return (f"{name} has slope {slope_b:.4g} where x < 0, but your forward has slope {slope_f:.4g} there "
                "(and both agree where x > 0): a leaky slope in one of them only. ReLU is flat for x < 0 "
                "(slope 0); a leaky ReLU has the same slope in forward and backward.")

    return Hypothesis("", holds)


def _right_only_near_zero(got: np.ndarray, xs: np.ndarray, want: np.ndarray) -> bool:
    scale = max(np.max(np.abs(got)), np.max(np.abs(want)), 1e-12)
    wrong = np.abs(got - want) > 1e-3 * scale
    small, large = np.abs(xs) <= SMALL_X, np.abs(xs) > 2 * SMALL_X
    return bool(small.sum() >= 1 and large.sum() >= 2 and not wrong[small].any() and wrong[large].mean() >= 0.5)
