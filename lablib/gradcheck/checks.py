"""The checkers a notebook calls: `check_layer`, `check_loss`, `check_gradient`, `check_values`.

Each works on the student's own code, in float64, on a copy (the student's objects are never
changed), and returns a `CheckReport` with one item per independent property, so that one test cell
can grade each property on its own:

- layer: "forward", "dx", and "d<name>" for every parameter (`dW`, `db`);
- loss: "forward" and "dscores";
- function: "d<name>" for every input.

A gradient is compared with the numeric gradient of the student's own forward at every entry for
small arrays and, for large ones, at random entries plus along random directions (which see every
entry at once). The upstream gradient is random, so a backward that ignores it cannot pass.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from .diagnose import Context, diagnose
from .numeric import GRAD_TOL, KINK_TOL, SCALE_FLOOR, Probe, sample_indices, scaled_error
from .report import CheckReport, Item

__all__ = [
    "check_layer",
    "check_loss",
    "check_gradient",
    "check_values",
    "VALUE_TOL",
    "FULL_CHECK_MAX",
    "N_COORDS",
    "N_DIRECTIONS",
]

#: Forward values must match known ones to `scaled_error <= VALUE_TOL`.
VALUE_TOL = 1e-6
#: Arrays with at most this many entries are checked at every entry.
FULL_CHECK_MAX = 128
#: Larger arrays: this many random entries ...
N_COORDS = 30
#: ... and this many random directions.
N_DIRECTIONS = 4


class _StudentError(Exception):
    """The student's code raised; the message says where and what."""


def _run(what: str, fn: Callable[..., Any], *args: Any) -> tuple[Any, list[str]]:
    """Call student code; returns (result, numpy warnings), or raises _StudentError."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="warn"):
        warnings.simplefilter("always")
        try:
            result = fn(*args)
        except NotImplementedError as exc:
            detail = f" ({exc})" if str(exc) else ""
            raise _StudentError(f"{what} is not implemented yet{detail}: replace the "
                                "`raise NotImplementedError()` with your code") from None
        except Exception as exc:  # noqa: BLE001 - any error in student code is reported, not raised
            raise _StudentError(f"{what} raised {type(exc).__name__}: {exc}") from None
    found = sorted({f"{what}: numpy warned '{w.message}'" for w in caught
                    if issubclass(w.category, RuntimeWarning)})
    return result, found


def _as_array(item: Item, what: str, value: Any, shape: tuple[int, ...] | None) -> np.ndarray | None:
    """Validate a returned array: not None, numeric, right shape, finite. None if unusable."""
    if value is None:
        item.fail(f"{what} is None: it must be set (or returned) as an array.")
        return None
    if isinstance(value, tuple):
        item.fail(f"{what} is a tuple of {len(value)} values; return one array.")
        return None
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        item.fail(f"{what} has dtype {arr.dtype}; expected a float array.")
        return None
    if shape is not None and arr.shape != shape:
        hint = ""
        if len(shape) == 2 and arr.shape == shape[::-1]:
            hint = " (the transpose: did you swap the order of a matrix product?)"
        elif arr.size == int(np.prod(shape)):
            hint = " (right number of entries, wrong shape: a reshape or a missing keepdims?)"
        item.fail(f"{what} has shape {arr.shape}, expected {shape}{hint}.")
        return None
    bad = ~np.isfinite(arr.astype(np.float64))
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        item.fail(f"{what} has {int(bad.sum())} NaN/inf entries (first at {list(first)}): an overflow "
                  "(exp of a large number?) or a 0/0. Use a numerically stable formula.")
        return None
    return arr.astype(np.float64)


def _fmt_index(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(map(str, index))}]"


def _compare(
    item: Item,
    received: np.ndarray,
    probe: Probe,
    ctx: Context,
    rng: np.random.Generator,
    full_max: int,
    n_coords: int,
    n_directions: int,
) -> None:
    """Compare `received` with the probe's numeric gradient; record the verdict in `item`."""
    shape = received.shape
    full = received.size <= full_max
    indices = list(np.ndindex(shape)) if full else sample_indices(shape, n_coords, rng)
    diffs = {idx: probe.at(idx) for idx in indices}
    central = np.array([diffs[i][0] for i in indices])
    scale = max(np.max(np.abs(received)) if received.size else 0.0,
                np.max(np.abs(central)) if central.size else 0.0, SCALE_FLOOR)
    smooth, kinks, errors, kink_errors = [], [], [], []
    for idx, (c, f, b) in diffs.items():
        a = received[idx]
        if Probe.is_kink(f, b, scale):
            kinks.append(idx)
            kink_errors.append(min(abs(a - c), abs(a - f), abs(a - b)) / scale)
        else:
            smooth.append(idx)
            errors.append(abs(a - c) / scale)
    dir_errors, dir_kinks = [], 0
    for _ in range(0 if full else n_directions):
        v = rng.standard_normal(shape)
        v /= np.linalg.norm(v)
        c, f, b = probe.along(v)
        if Probe.is_kink(f, b, max(abs(c), np.linalg.norm(received))):
            dir_kinks += 1
            continue
        dir_errors.append(abs(float(np.sum(received * v)) - c)
                          / max(np.linalg.norm(received), abs(c), SCALE_FLOOR))
    error = max(errors + dir_errors + [0.0])
    kink_error = max(kink_errors + [0.0])
    where = (f"all {len(indices)} entries" if full
             else f"{len(indices)} random entries and {len(dir_errors)} random directions")
    item.detail = f"max scaled error {error:.1e} {'<=' if error <= GRAD_TOL else '>'} {GRAD_TOL:g} ({where})"
    if kinks:
        item.detail += f"; {len(kinks)} entries at a kink, where either one-sided derivative is accepted"
    if error <= GRAD_TOL and kink_error <= KINK_TOL:
        return

    known = {idx: (diffs[idx][0],) for idx in smooth}
    known.update({idx: diffs[idx] for idx in kinks})

    def oracle(idx: tuple[int, ...]) -> tuple[float, ...]:
        if idx not in known:
            c, f, b = probe.at(idx)
            known[idx] = (c, f, b) if Probe.is_kink(f, b, scale) else (c,)
        return known[idx]

    if smooth and max(errors) > GRAD_TOL:
        worst = smooth[int(np.argmax(errors))]
    else:
        worst = (kinks[int(np.argmax(kink_errors))] if kink_error > KINK_TOL else None)
    if worst is not None:
        item.fail(f"worst entry {_fmt_index(item.name, worst)}: received {received[worst]:.6g}, "
                  f"expected {diffs[worst][0]:.6g} (numeric gradient of your forward)")
    else:
        item.fail("the gradient disagrees with the numeric one along a random direction, although "
                  "the sampled entries agree: some entries are wrong.")
    want = np.array([diffs[i][0] for i in smooth])
    if smooth and not np.any(np.abs(want) > SCALE_FLOOR) and np.any(received):
        item.problems.insert(0, f"the numeric {item.name} is zero: the output does not change when "
                                "this input changes. Does forward read it (e.g. self.W.data, not a copy)?")
        return
    for sentence in reversed(diagnose(item.name, received, smooth, want, oracle, ctx)):
        item.problems.insert(0, sentence)


def _float64_copy(module: Any) -> Any:
    """A deep copy in float64 that computes every gradient: a layer told to skip dx
    (`needs_input_grad = False`, a network's first layer) is checked with dx all the same."""
    clone = copy.deepcopy(module)
    for p in clone.parameters():
        p.data = np.array(p.data, dtype=np.float64)
    for m in clone.modules() if hasattr(clone, "modules") else [clone]:
        if getattr(m, "needs_input_grad", True) is not True:
            m.needs_input_grad = True
    return clone


def check_layer(
    layer: Any,
    x: Any,
    *,
    seed: int = 0,
    full_max: int = FULL_CHECK_MAX,
    n_coords: int = N_COORDS,
    n_directions: int = N_DIRECTIONS,
) -> CheckReport:
    """Check a layer's forward and backward against the numeric gradient of its own forward.

    Inputs:
        layer: a Module with `forward(x)` and `backward(dout)`; not modified (a float64 copy is checked).
        x: input array, shape (N, ...); used in float64.
        seed: seeds the random upstream gradient, sampled entries and directions.
    Returns:
        CheckReport with items "forward", "dx" and "d<name>" for each parameter. Also detected:
        a mutated input or upstream gradient, grads accumulated over two backward calls instead of
        set, None / NaN / wrongly shaped results, and exceptions in the student's code.
    """
    rng = np.random.default_rng(seed)
    x64 = np.array(x, dtype=np.float64)
    try:
        clone = _float64_copy(layer)
        params = clone.named_parameters()
    except Exception as exc:  # noqa: BLE001
        report = CheckReport(f"check_layer: {type(layer).__name__} could not be copied")
        report.item("forward").fail(f"copying the layer failed with {type(exc).__name__}: {exc}")
        return report
    report = CheckReport(f"check_layer: {type(layer).__name__}({clone.extra_repr()}) "
                         f"on x of shape {x64.shape}, random upstream gradient (seed {seed})")
    forward, dx_item = report.item("forward"), report.item("dx")
    grad_items = {name: report.item("d" + name) for name, _ in params}
    backward_items = [dx_item, *grad_items.values()]
    ctx_x = Context("layer", x64.shape[0] if x64.ndim else None, batch_axis=x64.ndim > 1)
    ctx_p = Context("layer", x64.shape[0] if x64.ndim else None)

    # Forward: runs, returns a finite float64 array, leaves its input alone.
    x_in = x64.copy()
    try:
        out, found = _run("forward", clone.forward, x_in)
    except _StudentError as exc:
        for it in report.items.values():
            it.fail(str(exc))
        return report
    report.notes += found
    out_arr = _as_array(forward, "the output of forward", out, None)
    if not np.array_equal(x_in, x64, equal_nan=True):
        forward.fail("forward changed its input x in place (e.g. `x[x < 0] = 0`): work on a copy "
                     "or use an expression such as np.maximum(x, 0).")
    if out_arr is not None and np.asarray(out).dtype != np.float64:
        forward.fail(f"forward returned {np.asarray(out).dtype} for a float64 input: keep the input's "
                     "dtype (do not hard-code float32); gradient checks need float64.")
    if out_arr is None:
        for it in backward_items:
            it.fail("not checked: forward did not return a usable array.")
        return report
    if forward.passed:
        forward.detail = f"output shape {out_arr.shape}, finite, input unchanged"

    # Backward, twice on the same input: results are set, not accumulated, and the same both times.
    dout = rng.standard_normal(out_arr.shape)
    results = []
    for attempt in range(2):
        if attempt == 0:  # zero buffers let `grad += ...` run, so that accumulation shows
            presets = {name: np.zeros_like(p.data) for name, p in params}
            for name, p in params:
                p.grad = presets[name]
        dout_in = dout.copy()
        try:
            _run("forward", clone.forward, x64.copy())
            dx, found = _run("backward", clone.backward, dout_in)
            report.notes += [n for n in found if n not in report.notes]
        except _StudentError as exc:
            # Grades what backward did set before it raised: a crash computing dx need not cost dW.
            dx_item.fail(str(exc))
            for name, p in params:
                if p.grad is presets[name]:
                    grad_items[name].fail(f"{exc} before setting {name}.grad")
            if attempt == 0 and all(not it.passed for it in backward_items):
                return report
            dx = None
        if attempt == 0 and not np.array_equal(dout_in, dout):
            dx_item.fail("backward changed its argument dout in place: compute a new array instead "
                         "(e.g. `dout * (x > 0)` rather than `dout[x <= 0] = 0`).")
        if attempt == 0:
            for name, p in params:
                if grad_items[name].passed and p.grad is presets[name] and not np.any(p.grad):
                    grad_items[name].fail(f"{name}.grad was not set: backward must assign it "
                                          f"(`self.{name}.grad = ...`).")
        grads = {name: None if p.grad is None else np.array(p.grad, dtype=np.float64) for name, p in params}
        results.append((dx, grads))
    (dx, grads), (dx2, grads2) = results
    dx_arr = _as_array(dx_item, "dx (the value backward returns)", dx, x64.shape) if dx_item.passed else None
    arrays = {"dx": dx_arr}
    for name, p in params:
        it = grad_items[name]
        if not it.passed:
            arrays["d" + name] = None
            continue
        arrays["d" + name] = _as_array(it, f"{name}.grad", grads[name], p.data.shape)
        g1, g2 = arrays["d" + name], grads2[name]
        if g1 is None or g2 is None or g1.shape != np.shape(g2):
            continue
        if np.any(g1) and np.allclose(g2, 2 * g1, rtol=1e-9, atol=0):
            it.fail(f"{name}.grad doubled on the second backward call: backward must set the gradient "
                    f"(`self.{name}.grad = ...`), not add to it (`+=`).")
        elif not np.allclose(g2, g1, rtol=1e-9, atol=1e-12):
            it.fail(f"{name}.grad differs between two identical backward calls: does backward depend "
                    "on state left over from an earlier call?")
    if dx_arr is not None and dx2 is not None and np.shape(dx2) == dx_arr.shape \
            and not np.allclose(np.asarray(dx2, dtype=np.float64), dx_arr, rtol=1e-9, atol=1e-12):
        dx_item.fail("dx differs between two identical forward/backward calls: does backward depend "
                     "on state left over from an earlier call?")

    # Numeric gradients of the student's own forward, with the same upstream gradient.
    def compare(name: str, target: np.ndarray, evaluate: Callable[[], np.ndarray], ctx: Context) -> None:
        received = arrays[name]
        if received is None:
            return
        with np.errstate(all="ignore"):
            probe = Probe(evaluate, target, dout)
            _compare(report.items[name], received, probe, ctx, rng, full_max, n_coords, n_directions)
        report.evaluations += probe.evaluations

    compare("dx", x64, lambda: clone.forward(x64.copy()), ctx_x)
    for name, p in params:
        compare("d" + name, p.data, lambda: clone.forward(x64.copy()), ctx_p)
    return report


def check_loss(
    loss: Any,
    scores: Any,
    y: Any,
    *,
    seed: int = 0,
    full_max: int = FULL_CHECK_MAX,
    n_coords: int = N_COORDS,
    n_directions: int = N_DIRECTIONS,
) -> CheckReport:
    """Check a loss: forward returns the batch mean as a float; backward matches the numeric gradient.

    Inputs:
        loss: object with `forward(scores, y) -> float` and `backward() -> dscores`.
        scores: class scores, shape (N, C); used in float64.
        y: integer labels, shape (N,), values in [0, C).
    Returns:
        CheckReport with items "forward" and "dscores".
    """
    rng = np.random.default_rng(seed)
    s64 = np.array(scores, dtype=np.float64)
    y_arr = np.array(y)
    clone = copy.deepcopy(loss)
    report = CheckReport(f"check_loss: {type(loss).__name__} on scores of shape {s64.shape} (seed {seed})")
    forward, dscores_item = report.item("forward"), report.item("dscores")
    s_in, y_in = s64.copy(), y_arr.copy()
    try:
        value, found = _run("forward", clone.forward, s_in, y_in)
    except _StudentError as exc:
        forward.fail(str(exc))
        dscores_item.fail(str(exc))
        return report
    report.notes += found
    if not np.array_equal(s_in, s64, equal_nan=True) or not np.array_equal(y_in, y_arr):
        forward.fail("forward changed its arguments (scores or y) in place: work on a copy.")
    if np.ndim(value) != 0:
        forward.fail(f"forward returned an array of shape {np.shape(value)}; it must return the batch "
                     "mean as one float (e.g. `float(np.mean(losses))`).")
    elif not np.isfinite(float(value)):
        forward.fail(f"forward returned {float(value)}: an overflow (exp of large scores?) or log(0). "
                     "Subtract the row maximum before exponentiating.")
    if forward.passed:
        forward.detail = f"value {float(value):.6g}, a finite scalar, arguments unchanged"
    try:
        dscores, found = _run("backward", clone.backward)
        _run("forward", clone.forward, s64.copy(), y_arr.copy())
        dscores2, _ = _run("backward", clone.backward)
    except _StudentError as exc:
        dscores_item.fail(str(exc))
        return report
    report.notes += [n for n in found if n not in report.notes]
    received = _as_array(dscores_item, "dscores (the value backward returns)", dscores, s64.shape)
    if received is None or not forward.passed:
        if forward.passed is False and received is not None:
            dscores_item.fail("not checked: forward did not return a usable float.")
        return report
    if np.shape(dscores2) == received.shape and not np.allclose(dscores2, received, rtol=1e-9, atol=1e-12):
        dscores_item.fail("dscores differs between two identical forward/backward calls: does backward "
                          "depend on state left over from an earlier call?")

    def evaluate() -> float:
        return float(clone.forward(s64.copy(), y_arr.copy()))

    ctx = Context("loss", s64.shape[0] if s64.ndim else None, batch_axis=s64.ndim > 1,
                  labels=y_arr if s64.ndim == 2 else None)
    with np.errstate(all="ignore"):
        probe = Probe(evaluate, s64)
        _compare(dscores_item, received, probe, ctx, rng, full_max, n_coords, n_directions)
    report.evaluations += probe.evaluations
    return report


def check_gradient(
    f: Callable[..., float],
    inputs: Sequence[Any],
    grads: Sequence[Any],
    names: Sequence[str] | None = None,
    *,
    seed: int = 0,
    full_max: int = FULL_CHECK_MAX,
    n_coords: int = N_COORDS,
    n_directions: int = N_DIRECTIONS,
) -> CheckReport:
    """Check gradients of a scalar function of several arrays, e.g. a penalty `f(W1, W2) -> float`.

    Inputs:
        f: called as f(*arrays) with float64 copies of `inputs`; returns a float.
        inputs: the arrays f depends on.
        grads: the claimed gradient of f with respect to each input, same shapes.
        names: one per input (default "x0", "x1", ...); items are "d" + name.
    """
    rng = np.random.default_rng(seed)
    names = list(names or [f"x{i}" for i in range(len(inputs))])
    arrays = [np.array(a, dtype=np.float64) for a in inputs]
    report = CheckReport(f"check_gradient: {getattr(f, '__name__', 'f')} of "
                         + ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays)))
    ctx = Context("function")
    for name, target, grad in zip(names, arrays, grads):
        item = report.item("d" + name)
        received = _as_array(item, f"the gradient for {name}", grad, target.shape)
        if received is None:
            continue
        try:
            _run("f", f, *[a.copy() for a in arrays])
        except _StudentError as exc:
            item.fail(str(exc))
            continue
        with np.errstate(all="ignore"):
            probe = Probe(lambda: float(f(*[a.copy() for a in arrays])), target)
            _compare(item, received, probe, ctx, rng, full_max, n_coords, n_directions)
        report.evaluations += probe.evaluations
    return report


def check_values(name: str, received: Any, expected: Any, *, tol: float = VALUE_TOL) -> CheckReport:
    """Compare an output with known values: shape, finiteness, then `scaled_error <= tol`.

    On a mismatch the diagnosis says whether the output is a multiple, the negative, the transpose
    or a row-permutation of the expected values.
    """
    expected = np.asarray(expected, dtype=np.float64)
    report = CheckReport(f"check_values: {name}")
    item = report.item(name)
    arr = _as_array(item, name, received, expected.shape)
    if arr is None:
        return report
    error = scaled_error(arr, expected)
    item.detail = f"max scaled error {error:.1e} {'<=' if error <= tol else '>'} {tol:g}"
    if error <= tol:
        return report
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(arr - expected)), arr.shape))
    item.fail(f"worst entry {_fmt_index(name, worst)}: received {arr[worst]:.6g}, expected {expected[worst]:.6g}")
    indices = list(np.ndindex(arr.shape))
    ctx = Context("function", arr.shape[0] if arr.ndim else None, batch_axis=arr.ndim > 1)
    want = np.array([expected[i] for i in indices])
    sentences = diagnose(name, arr, indices, want, lambda idx: (float(expected[idx]),), ctx)
    for sentence in reversed(sentences):
        item.problems.insert(0, sentence)
    return report
