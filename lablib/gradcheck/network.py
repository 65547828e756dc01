"""Check a two-layer network's hand-written loss and gradients, and name the usual mistakes.

Notebook 03 asks for one function, `(W1, b1, W2, b2, X, y, reg) -> (loss, grads)`, for the network

    scores = relu(X W1 + b1) W2 + b2,   loss = mean softmax cross-entropy + reg (‖W1‖² + ‖W2‖²).

`check_two_layer` compares each returned gradient with the numeric gradient of the student's *own*
loss (through `check_gradient`) and, where one is wrong, tests it against the mistakes this
derivation invites, all built from numeric gradients and the inputs, never from a reference
implementation: a factor N (the batch mean), the L2 term missing, halved or put on a bias, a
transposed square matrix, and gradient flowing through hidden units the ReLU switched off (or blocked
in units it kept on). A mistake so named is the failed item's diagnosis, in place of the generic one
that `check_gradient` gives ("wrong at k of n entries"), which would read as a second mistake.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .checks import check_gradient
from .numeric import numeric_gradient
from .report import CheckReport

__all__ = ["check_two_layer", "PARAMETERS", "NAMED_TOL", "UNIT_MARGIN"]

#: The parameters, in the order of the function's arguments, and the keys of its grads dict.
PARAMETERS = ("W1", "b1", "W2", "b2")
#: A candidate mistake explains the received gradient when they agree to this scaled error.
NAMED_TOL = 1e-3
#: A hidden unit counts as off (on) for the whole batch when every pre-activation is below -margin
#: (above +margin): then no finite-difference step crosses the kink.
UNIT_MARGIN = 1e-3


def _scaled(a: np.ndarray, b: np.ndarray) -> float:
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), 1e-12)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def _relu_sentences(name: str, received: np.ndarray, numeric: np.ndarray, X: np.ndarray,
                    W1: np.ndarray, b1: np.ndarray) -> list[str]:
    """Compare the columns of dW1 (or entries of db1) of units off / on for every sample."""
    pre = np.einsum("nd,dk->nk", X, W1) + b1  # the hidden pre-activations z
    off = np.flatnonzero(np.all(pre < -UNIT_MARGIN, axis=0))
    on = np.flatnonzero(np.all(pre > UNIT_MARGIN, axis=0))
    cols = (lambda g, j: g[:, j]) if received.ndim == 2 else (lambda g, j: g[j])
    scale = max(float(np.max(np.abs(received))), float(np.max(np.abs(numeric))), 1e-12)
    # an inactive unit gets no gradient through the network: the numeric one holds only its L2 term
    leaking = [int(j) for j in off if np.max(np.abs(cols(received, j) - cols(numeric, j))) > NAMED_TOL * scale]
    if leaking:
        return [f"{name} is non-zero for hidden unit{'s' if len(leaking) > 1 else ''} {leaking}, which the ReLU "
                "switched off for every sample (z = X W1 + b1 < 0): no gradient may flow through an inactive unit. "
                "The ReLU mask is missing or taken from the wrong array: multiply the gradient reaching the hidden "
                "layer by (z > 0), computed from the pre-activation z (or h > 0)."]
    wrong_on = [int(j) for j in on if _scaled(cols(received, j), cols(numeric, j)) > NAMED_TOL]
    right_off = all(np.max(np.abs(cols(received, j) - cols(numeric, j))) <= NAMED_TOL * scale for j in off)
    if wrong_on and len(off) and right_off:
        return [f"{name} is wrong for hidden unit{'s' if len(wrong_on) > 1 else ''} {wrong_on}, which is on for every "
                "sample, where the ReLU passes the gradient through unchanged: is the mask taken from another array "
                "(the upstream gradient, the scores) instead of z > 0?"]
    return []


def _named(name: str, received: np.ndarray, numeric: np.ndarray, param: np.ndarray, n: int,
           reg: float, relu: Callable[[], list[str]] | None) -> list[str]:
    """Sentences for the mistakes that explain `received`, most specific first."""
    candidates: list[tuple[np.ndarray, str]] = []
    if n > 1:
        penalty = 2 * reg * param if param.ndim == 2 else 0.0  # the L2 part carries no 1/N
        data = numeric - penalty
        candidates += [
            (n * data + penalty, f"{name} is N = {n} times too large (N is the batch size): the loss is the mean over "
                                 "the batch, so the gradient of the scores is (p − y)/N; did you leave out the 1/N?"),
            (data / n + penalty, f"{name} is N = {n} times too small (N is the batch size): the 1/N of the mean "
                                 "belongs in the gradient once; did you divide by N twice?"),
        ]
    if reg and param.ndim == 2:
        candidates += [
            (numeric - 2 * reg * param, f"{name} lacks the L2 term: the penalty reg·‖{name[1:]}‖² adds 2·reg·{name[1:]} "
                                        f"to {name}."),
            (numeric - reg * param, f"{name} has reg·{name[1:]} as its L2 term; the derivative of reg·‖{name[1:]}‖² "
                                    f"is 2·reg·{name[1:]}."),
        ]
    if reg and param.ndim == 1:
        candidates.append((numeric + 2 * reg * param, f"{name} includes an L2 term 2·reg·{name[1:]}: the biases "
                                                      "are not regularized (the penalty is on W1 and W2 only)."))
    if numeric.ndim == 2 and numeric.shape[0] == numeric.shape[1] > 1:
        candidates.append((numeric.T, f"{name} is transposed: received[i, j] ≈ expected[j, i]. A square matrix hides "
                                      f"this from a shape check; {name} must have the shape of {name[1:]}, "
                                      "(inputs, outputs) of its layer."))
    candidates.append((-numeric, f"{name} has the wrong sign: a gradient points uphill; check the sign of p − y."))
    for candidate, sentence in candidates:
        if np.any(candidate) and _scaled(received, candidate) <= NAMED_TOL:
            return [sentence]
    return relu() if relu is not None else []


def check_two_layer(
    loss_fn: Callable[..., Any],
    W1: Any, b1: Any, W2: Any, b2: Any, X: Any, y: Any, reg: float,
    *,
    params: Sequence[str] = PARAMETERS,
    seed: int = 0,
) -> CheckReport:
    """Check `loss_fn(W1, b1, W2, b2, X, y, reg) -> (loss, grads)` on float64 copies of its inputs.

    Inputs:
        W1: (D, H), b1: (H,), W2: (H, C), b2: (C,), X: (N, D), y: integer labels (N,), reg: float.
        params: the gradients to check (default all four; a test cell grading one asks for one, which
            costs a quarter of the evaluations).
    Returns:
        CheckReport with items "loss" (a finite float; the arguments left unchanged) and "d<name>" for
        each name in params (grads["W1"] ... against the numeric gradient of loss_fn's own loss).
    """
    unknown = [name for name in params if name not in PARAMETERS]
    if unknown:
        raise ValueError(f"params {unknown} are not parameters of the network; choose from {list(PARAMETERS)}")
    arrays = [np.array(a, dtype=np.float64) for a in (W1, b1, W2, b2)]
    X64, y_arr = np.array(X, dtype=np.float64), np.array(y)
    report = CheckReport(f"check_two_layer: {getattr(loss_fn, '__name__', 'loss_fn')} with X of shape {X64.shape}, "
                         f"hidden size {arrays[0].shape[-1] if arrays[0].ndim == 2 else '?'}, reg = {reg:g}")
    loss_item = report.item("loss")
    items = {name: report.item("d" + name) for name in PARAMETERS if name in params}
    given = [a.copy() for a in arrays] + [X64.copy(), y_arr.copy()]
    try:
        result = loss_fn(*given, reg)
    except NotImplementedError:
        for item in report.items.values():
            item.fail(f"{getattr(loss_fn, '__name__', 'the function')} is not implemented yet: replace the "
                      "`raise NotImplementedError()` with your code")
        return report
    except Exception as exc:  # noqa: BLE001 - any error in the student's code is reported, not raised
        for item in report.items.values():
            item.fail(f"the function raised {type(exc).__name__}: {exc}")
        return report
    if not all(np.array_equal(a, b) for a, b in zip(given, [*arrays, X64, y_arr])):
        loss_item.fail("the function changed one of its arguments in place: compute new arrays instead.")
    if not isinstance(result, tuple) or len(result) != 2:
        for item in report.items.values():
            item.fail(f"the function returned {type(result).__name__}; it must return a tuple (loss, grads).")
        return report
    loss, grads = result
    if np.ndim(loss) != 0:
        loss_item.fail(f"loss has shape {np.shape(loss)}; it must be one number, the mean over the batch plus the penalty.")
    elif not isinstance(loss, (int, float, np.number)) or isinstance(loss, (bool, np.bool_)):
        loss_item.fail(f"loss is a {type(loss).__name__}; it must be a number (return float(loss)).")
    elif not np.isfinite(float(loss)):
        loss_item.fail(f"loss is {float(loss)}: an overflow (exp of large scores?) or log(0). Subtract each row's "
                       "maximum from the scores and use log-sum-exp.")
    if loss_item.passed:
        loss_item.detail = f"value {float(loss):.6g}, a finite scalar, arguments unchanged"
    if not isinstance(grads, dict) or not set(PARAMETERS) <= set(grads):
        keys = sorted(map(str, grads)) if isinstance(grads, dict) else type(grads).__name__
        for item in items.values():
            item.fail(f"grads must be a dict with keys {list(PARAMETERS)}; received {keys}.")
        return report

    # One loss per sample (the mean left out) fails "loss"; the gradients are then held to the numeric
    # gradient of the mean, so that the loss's mistake does not cost every gradient too.
    per_sample = (np.ndim(loss) == 1 and np.shape(loss)[0] == len(X64) and np.asarray(loss).dtype.kind in "fiu"
                  and bool(np.all(np.isfinite(loss))))
    if per_sample:
        report.notes.append("the gradients are checked against the numeric gradient of the mean of the per-sample "
                            "losses your function returns, so that the missing mean (graded with loss) does not "
                            "fail them too.")

    def f(*values: np.ndarray) -> float:
        value = loss_fn(*values, X64.copy(), y_arr.copy(), reg)[0]
        return float(np.mean(value)) if per_sample else float(value)

    def f_of(index: int) -> Callable[[np.ndarray], float]:
        """The loss as a function of parameter `index` alone (the others fixed)."""
        return lambda p: f(*[p if k == index else a for k, a in enumerate(arrays)])

    n = len(X64)
    for index, name in enumerate(PARAMETERS):
        if name not in items:
            continue
        numeric_report = check_gradient(f_of(index), [arrays[index]], [grads[name]], [name], seed=seed)
        report.evaluations += numeric_report.evaluations
        checked = numeric_report.items["d" + name]
        item = items[name]
        item.detail = checked.detail
        for problem in checked.problems:
            item.fail(problem)
        if checked.passed or not loss_item.passed:
            continue
        received = np.asarray(grads[name], dtype=np.float64)
        if received.shape != arrays[index].shape or not np.all(np.isfinite(received)):
            continue
        with np.errstate(all="ignore"):
            target = arrays[index].copy()
            numeric = numeric_gradient(f_of(index), target)
        relu = None
        if name in ("W1", "b1"):
            def relu(received=received, numeric=numeric, name=name):  # noqa: ANN001 - bound now, run later
                return _relu_sentences("d" + name, received, numeric, X64, arrays[0], arrays[1])
        named = _named("d" + name, received, numeric, arrays[index], n, reg, relu)
        if named:  # the named mistake replaces check_gradient's generic words, which would suggest a second one
            item.explain(*named)
    return report
