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
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .diagnose import WHAT, Context, Hypothesis, diagnose, explains
from .elementwise import elementwise_hypotheses, is_elementwise
from .numeric import GRAD_TOL, KINK_TOL, SCALE_FLOOR, Probe, sample_indices, scaled_error
from .report import MEASURED, CheckReport, Item
from .values import value_hypotheses

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
            raise _StudentError(f"{what} raised {type(exc).__name__}: {exc}{_hint(exc)}") from None
    found = sorted({f"{what}: numpy warned '{w.message}'" for w in caught
                    if issubclass(w.category, RuntimeWarning)})
    return result, found


#: Words of numpy's shape errors in a matrix product or a broadcast.
_SHAPE_ERROR_WORDS = ("matmul", "not aligned", "could not be broadcast", "operands could not")


def _hint(exc: Exception) -> str:
    """A likely cause for a common error in student code."""
    if isinstance(exc, ValueError) and any(w in str(exc) for w in _SHAPE_ERROR_WORDS):
        return (" (the shapes of a matrix product or a broadcast do not fit: check the orientation of "
                "each matrix, a missing or extra .T, and keepdims)")
    return ""


def _not_finite(what: str, arr: np.ndarray) -> str:
    bad = ~np.isfinite(arr)
    first = tuple(int(i) for i in np.argwhere(bad)[0]) if arr.ndim else ()
    where = f" (first at {list(first)})" if arr.ndim else ""
    causes = []
    if np.any(np.isposinf(arr)) or np.any(np.isneginf(arr)):
        causes.append("inf: an exp of a large number that overflowed, or the log of a probability that "
                      "underflowed to 0 (compute log-probabilities directly, log-softmax = shifted − "
                      "log Σ exp(shifted), instead of the log of a softmax)")
    if np.any(np.isnan(arr)):
        causes.append("NaN: inf/inf, inf − inf or 0/0, usually after an overflow")
    return (f"{what} has {int(bad.sum())} NaN/inf entries{where}: " + "; ".join(causes)
            + ". Use a numerically stable formula.")


def _as_array(
    item: Item,
    what: str,
    value: Any,
    shape: tuple[int, ...] | None,
    upstream: np.ndarray | None = None,
) -> np.ndarray | None:
    """Validate a returned array: not None, numeric, right shape, finite. None if unusable.

    upstream: the upstream gradient backward received, if any (names a dout returned unchanged,
    or summed over the wrong axis)."""
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
        if upstream is not None and arr.shape == upstream.shape and np.array_equal(arr, upstream):
            hint = (" (it is dout unchanged: backward must apply the chain rule, e.g. multiply by the "
                    "local derivative or by a weight matrix)")
        elif len(shape) == 2 and arr.shape == shape[::-1]:
            hint = " (the transpose: did you swap the order of a matrix product?)"
        elif upstream is not None and arr.shape == () and shape != ():
            hint = " (one number: summed over every axis? A parameter's gradient sums over the batch only, axis 0)"
        elif upstream is not None and upstream.ndim >= 2 and arr.shape == upstream.shape[:1] != shape:
            hint = (f" (one entry per sample, N = {upstream.shape[0]}: summed over the wrong axis? A "
                    "parameter's gradient sums over the batch, axis 0)")
        elif shape == () and arr.ndim == 1:
            hint = " (one value per entry: reduce them to one number, such as the mean over the batch)"
        elif arr.size == int(np.prod(shape)) and arr.shape == tuple(d for d in shape if d != 1):
            hint = (" (an axis of length 1 was dropped: by np.squeeze, an index such as [0], or a reduction "
                    "over it such as np.max(a, axis=0)?)")
        elif len(shape) >= 2 and arr.shape == shape[1:]:
            hint = (" (the batch axis 0 is missing: reduced over the samples? np.max and np.sum reduce along "
                    "an axis; np.maximum(a, b) compares elementwise)")
        elif arr.size == int(np.prod(shape)):
            hint = " (right number of entries, wrong shape: a reshape or a missing keepdims?)"
        item.fail(f"{what} has shape {arr.shape}, expected {shape}{hint}.")
        return None
    if not np.all(np.isfinite(arr.astype(np.float64))):
        item.fail(_not_finite(what, arr.astype(np.float64)))
        return None
    return arr.astype(np.float64)


def _to_shape(got: tuple[int, ...], want: tuple[int, ...]
              ) -> tuple[Callable[[np.ndarray], np.ndarray], str] | None:
    """How to map an output of shape `got` onto `want`, and the word for it: the transpose of a 2-D
    output in the other orientation, else a reshape of one with as many entries; None if neither."""
    if len(got) == len(want) == 2 and got == want[::-1]:
        return (lambda a: a.T), "transposed"
    if int(np.prod(got)) == int(np.prod(want)):
        return (lambda a: a.reshape(want)), "reshaped"
    return None


def _fmt_index(name: str, index: tuple[int, ...]) -> str:
    return f"{name}[{', '.join(map(str, index))}]" if index else name


def _compare(
    item: Item,
    received: np.ndarray,
    probe: Probe,
    ctx: Context,
    rng: np.random.Generator,
    full_max: int,
    n_coords: int,
    n_directions: int,
    hypotheses: Callable[[list[tuple[int, ...]]], list[Hypothesis]] | None = None,
) -> None:
    """Compare `received` with the probe's numeric gradient; record the verdict in `item`.

    hypotheses: builds named alternatives for a failed comparison from the entries where the
    numeric gradient is known (called only on failure)."""
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
        item.fail(f"{MEASURED} {_fmt_index(item.name, worst)}: received {received[worst]:.6g}, "
                  f"expected {diffs[worst][0]:.6g} (numeric gradient of "
                  f"{'the function' if ctx.kind == 'function' else 'your forward'})")
    else:
        item.fail("the gradient disagrees with the numeric one along a random direction, although "
                  "the sampled entries agree: some entries are wrong.")
    want = np.array([diffs[i][0] for i in smooth])
    if smooth and not np.any(np.abs(want) > SCALE_FLOOR) and np.any(received):
        if ctx.kind == "function":
            item.problems.insert(0, f"the numeric {item.name} is zero: the function does not change when "
                                    f"{item.name[1:]} changes, so its gradient must be all zeros (a penalty "
                                    "that leaves an input out, such as the biases, has zero gradient for it).")
        else:
            item.problems.insert(0, f"the numeric {item.name} is zero: the output does not change when "
                                    "this input changes. Does forward read it (e.g. self.W.data, not a copy)?")
        return
    hyps = hypotheses(smooth) if hypotheses is not None and smooth else []
    for sentence in reversed(diagnose(item.name, received, smooth, want, oracle, ctx, hyps)):
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
    out_shape: tuple[int, ...] | None = None,
    forward_checked: bool = False,
    full_max: int = FULL_CHECK_MAX,
    n_coords: int = N_COORDS,
    n_directions: int = N_DIRECTIONS,
) -> CheckReport:
    """Check a layer's forward and backward against the numeric gradient of its own forward.

    Inputs:
        layer: a Module with `forward(x)` and `backward(dout)`; not modified (a float64 copy is checked).
        x: input array, shape (N, ...); used in float64.
        seed: seeds the random upstream gradient, sampled entries and directions.
        out_shape: the shape forward must return at x, if the test knows it. Another shape fails
            "forward" (saying both shapes); backward still gets an upstream gradient of out_shape
            and is held to the numeric gradient of forward's output mapped to out_shape (transposed
            or reshaped, see `_to_shape`), so that the forward's mistake costs the forward only.
        forward_checked: the test has checked forward against known values first: a wrong factor in
            a gradient is then blamed on backward alone (not "or your forward is off").
    Returns:
        CheckReport with items "forward", "dx" and "d<name>" for each parameter. Also detected:
        a mutated input or upstream gradient, grads accumulated over two backward calls instead of
        set, None / NaN / wrongly shaped results, and exceptions in the student's code.
    A failed comparison is diagnosed with what the checker can observe: for an elementwise layer,
    the derivative of its own forward at other points (see `elementwise`); for a weight, the forward
    with the weight transposed or replaced by its gradient, and one sample's share of its gradient;
    for a network, each child layer checked on the input it receives.
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
    ctx_x = Context("layer", x64.shape[0] if x64.ndim else None, batch_axis=x64.ndim > 1,
                    forward_checked=forward_checked)
    ctx_p = Context("layer", x64.shape[0] if x64.ndim else None, forward_checked=forward_checked)

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
    if out_arr is not None and out_shape is not None and out_arr.shape != tuple(out_shape):
        _as_array(forward, "the output of forward", out, tuple(out_shape))  # fails forward, naming both shapes
        mapping = _to_shape(out_arr.shape, tuple(out_shape))
        if mapping is None:
            for it in backward_items:
                it.fail(f"not checked: forward returned shape {out_arr.shape}, expected {tuple(out_shape)} "
                        "(graded with forward).")
            return report
        to_shape, how = mapping
        clone.forward = lambda z, _forward=clone.forward: to_shape(np.asarray(_forward(z)))
        out_arr = to_shape(out_arr)
        report.notes.append(f"backward is checked against your forward's output {how} to shape {tuple(out_shape)}, "
                            "so that the wrong shape (graded with forward) does not fail backward too.")
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
    dx_arr = (_as_array(dx_item, "dx (the value backward returns)", dx, x64.shape, dout)
              if dx_item.passed else None)
    arrays = {"dx": dx_arr}
    for name, p in params:
        it = grad_items[name]
        if not it.passed:
            arrays["d" + name] = None
            continue
        arrays["d" + name] = _as_array(it, f"{name}.grad", grads[name], p.data.shape, dout)
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
    def forward_on(z: np.ndarray) -> np.ndarray:
        return np.array(clone.forward(z), dtype=np.float64)

    def backward_at(z: np.ndarray, g: np.ndarray) -> np.ndarray:
        clone.forward(z)
        return clone.backward(g)

    def dx_hypotheses(indices: list[tuple[int, ...]]) -> list[Hypothesis]:
        hyps = []
        if dout.shape == x64.shape:
            pick = tuple(np.array(indices).T)
            hyps.append(Hypothesis("dx is dout unchanged: backward must apply the chain rule (multiply by "
                                   "the local derivative, or by a weight matrix).",
                                   lambda: explains(arrays["dx"][pick], dout[pick])))
        if is_elementwise(forward_on, x64.copy(), out_arr):
            hyps += elementwise_hypotheses("dx", arrays["dx"], indices, x64, out_arr, dout, forward_on, backward_at)
        return hyps

    def param_hypotheses(name: str, target: np.ndarray) -> Callable[[list[tuple[int, ...]]], list[Hypothesis]]:
        return lambda indices: _one_sample_hypotheses(
            "d" + name, arrays["d" + name], indices, target, lambda: clone.forward(x64.copy()), dout)

    def compare(name: str, target: np.ndarray, evaluate: Callable[[], np.ndarray], ctx: Context,
                hypotheses: Callable[[list[tuple[int, ...]]], list[Hypothesis]] | None = None) -> None:
        received = arrays[name]
        if received is None:
            return
        with np.errstate(all="ignore"):
            probe = Probe(evaluate, target, dout)
            _compare(report.items[name], received, probe, ctx, rng, full_max, n_coords, n_directions, hypotheses)
        report.evaluations += probe.evaluations

    compare("dx", x64, lambda: clone.forward(x64.copy()), ctx_x, dx_hypotheses)
    for name, p in params:
        compare("d" + name, p.data, lambda: clone.forward(x64.copy()), ctx_p, param_hypotheses(name, p.data))
    if not dx_item.passed and dx_arr is not None:
        with np.errstate(all="ignore"):
            _blame_a_weight(report, clone, params, x64, dx_arr, dout, arrays)
    compared = [report.items[name] for name, arr in arrays.items() if arr is not None]
    if any(not item.passed for item in compared):
        _blame_a_layer_or_the_chaining(report, clone, x64, compared, seed)
    return report


def _inputs_of_children(module: Any, x: np.ndarray) -> dict[str, tuple[Any, np.ndarray]]:
    """{name: (child, the input it received)} for the direct child modules one forward call reaches."""
    children = list(module.named_children()) if hasattr(module, "named_children") else []
    if any("forward" in vars(child) for _, child in children):
        return {}  # a forward set on the instance: leave it alone
    seen: dict[str, tuple[Any, np.ndarray]] = {}
    for name, child in children:
        def recording(*args: Any, _child=child, _name=name, **kwargs: Any) -> Any:
            if args and _name not in seen:
                seen[_name] = (_child, np.array(args[0], dtype=np.float64))
            return type(_child).forward(_child, *args, **kwargs)

        child.forward = recording
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            module.forward(x.copy())
    except Exception:  # noqa: BLE001 - then nothing is learnt about the children
        seen.clear()
    finally:
        for _, child in children:
            child.__dict__.pop("forward", None)
    return seen


def _blame_a_layer_or_the_chaining(
    report: CheckReport, clone: Any, x64: np.ndarray, failed: list[Item], seed: int
) -> None:
    """A container (a network, a Sequential) failed: check each child layer on the input it received.
    A child that fails on its own is the one to fix; if every child passes, the chaining is wrong."""
    children = _inputs_of_children(clone, x64)
    if not children:
        return
    broken = []
    for name, (child, child_x) in children.items():
        sub = check_layer(child, child_x, seed=seed)
        report.evaluations += sub.evaluations
        if not sub.passed:
            broken.append(f"{name} ({', '.join(sub.failed())})")
    if broken:
        sentence = (f"{', '.join(broken[:3])} fails check_layer on its own, on the input it receives here: "
                    "fix that layer first.")
    else:
        sentence = (f"every layer ({', '.join(children)}) passes check_layer on its own, on the input it receives "
                    f"here: the mistake is in how {type(clone).__name__} chains them (forward calls the layers in "
                    "order; backward calls them in reverse order, each on the gradient the next one returned).")
    for item in failed:
        if not item.passed:
            item.problems.insert(0, sentence)


def _one_sample_hypotheses(
    name: str,
    received: np.ndarray,
    indices: list[tuple[int, ...]],
    target: np.ndarray,
    evaluate: Callable[[], np.ndarray],
    dout: np.ndarray,
) -> list[Hypothesis]:
    """A parameter's gradient sums one contribution per sample: is the received one the contribution
    of the first or the last sample alone (an index [0], or a loop that overwrites with `=`)?"""
    n = dout.shape[0] if dout.ndim >= 2 else 0
    if n < 2:
        return []
    got = np.array([received[i] for i in indices])
    shares: dict[int, np.ndarray] = {}

    def share(k: int) -> np.ndarray:
        if k not in shares:
            upstream = np.zeros_like(dout)
            upstream[k] = dout[k]
            probe = Probe(evaluate, target, upstream)
            shares[k] = np.array([probe.at(i)[0] for i in indices])
        return shares[k]

    hyps = []
    for axis in range(1, dout.ndim):
        summed = dout.sum(axis=axis)
        if summed.shape == received.shape:
            hyps.append(Hypothesis(
                f"{name} is dout summed over axis {axis}: a parameter's gradient sums over the batch (axis 0).",
                lambda summed=summed: explains(got, np.array([summed[i] for i in indices]))))
    for k in sorted({0, n - 1}):
        for times, words in ((1, ""), (n, f"N = {n} times ")):
            hyps.append(Hypothesis(
                f"{name} is {words}the gradient of sample {k} alone: a parameter's gradient sums the "
                f"contributions of all N = {n} samples (a loop that overwrites with = instead of adding, "
                "or one row used for the whole batch?).",
                lambda k=k, times=times: explains(got, times * share(k))))
    return hyps


def _dx_with_weight(clone: Any, p: Any, weight: np.ndarray, x64: np.ndarray, dout: np.ndarray,
                    dx: np.ndarray, report: CheckReport) -> bool:
    """Whether dx is the numeric gradient of the forward with p.data replaced by `weight`."""
    data = p.data
    try:
        p.data = np.ascontiguousarray(weight)
        probe = Probe(lambda: clone.forward(x64.copy()), x64, dout)
        indices = list(np.ndindex(x64.shape))[:FULL_CHECK_MAX]
        candidate = np.array([probe.at(i)[0] for i in indices])
    except Exception:  # noqa: BLE001 - the hypothesis cannot be tested
        return False
    finally:
        p.data = data
    report.evaluations += probe.evaluations
    return explains(np.array([dx[i] for i in indices]), candidate)


def _blame_a_weight(
    report: CheckReport,
    clone: Any,
    params: list[tuple[str, Any]],
    x64: np.ndarray,
    dx: np.ndarray,
    dout: np.ndarray,
    arrays: dict[str, np.ndarray | None],
) -> None:
    """dx failed: is it the gradient the forward would have with another weight matrix?

    - with a square weight transposed: if that weight's gradient failed too, one mistake explains
      both, forward uses W.T (and the backward, right for y = x @ W, is blamed for nothing); if it
      passed, dx is the one missing a transpose (a square W or a batch of one hides it from a shape check);
    - with the weight replaced by its gradient: dx used W.grad where W.data belongs.
    """
    dx_item = report.items["dx"]
    for name, p in params:
        data, grad = p.data, arrays.get("d" + name)
        if data.ndim != 2:
            continue
        w_item = report.items["d" + name]
        if data.shape[0] == data.shape[1] > 1 and _dx_with_weight(clone, p, data.T, x64, dout, dx, report):
            if not w_item.passed and grad is not None:
                blame = (f"forward seems to use {name}.T instead of {name}: with {name} transposed, the numeric "
                         f"gradients of your forward match your dx and d{name}. {name} has shape (in, out) and "
                         f"y = x @ {name}; fix forward (your backward is consistent with that).")
                dx_item.explain(blame)
                w_item.explain(blame)
            else:
                dx_item.explain(f"dx is what it would be with {name} transposed: dx needs {name}ᵀ where you used "
                               f"{name} (for y = x @ {name}, ∂L/∂x = dout @ {name}ᵀ; a square {name} or a batch of "
                               "one hides this from a shape check).")
            return
        if grad is not None and grad.shape == data.shape and np.any(grad) \
                and _dx_with_weight(clone, p, grad, x64, dout, dx, report):
            dx_item.explain(f"dx is computed with {name}.grad where the weight itself ({name}.data) belongs.")
            return


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
        CheckReport with items "forward" and "dscores". Forward must be the batch mean: two copies
        of the batch must give the same value (a sum gives twice, and dscores is then not blamed).
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
    # One loss per sample (the mean left out): forward fails, and dscores is held to the gradient of
    # their mean, so that forward's mistake costs forward only.
    per_sample = (np.ndim(value) == 1 and s64.ndim == 2 and np.shape(value)[0] == s64.shape[0]
                  and np.asarray(value).dtype.kind in "fiu" and bool(np.all(np.isfinite(value))))
    if np.ndim(value) != 0:
        forward.fail(f"forward returned an array of shape {np.shape(value)}; it must return the batch "
                     "mean as one float (e.g. `float(np.mean(losses))`).")
    elif not np.isfinite(float(value)):
        forward.fail(f"forward returned {float(value)}: an exp of large scores that overflowed, or the log "
                     "of a probability that underflowed to 0. Subtract the row maximum before exponentiating, "
                     "and compute log-probabilities directly (log-softmax = shifted − log Σ exp(shifted)) "
                     "instead of the log of a softmax.")
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
    to_float: Callable[[Any], float] = float
    if per_sample and len(forward.problems) == 1:
        to_float = lambda v: float(np.mean(v))  # noqa: E731 - the loss forward should have returned
        report.notes.append("dscores is checked against the gradient of the mean of the per-sample losses your "
                            "forward returns, so that the missing mean (graded with forward) does not fail "
                            "backward too.")
    if received is None or not (forward.passed or to_float is not float):
        if forward.passed is False and received is not None:
            dscores_item.fail("not checked: forward did not return a usable float.")
        return report
    if np.shape(dscores2) == received.shape and not np.allclose(dscores2, received, rtol=1e-9, atol=1e-12):
        dscores_item.fail("dscores differs between two identical forward/backward calls: does backward "
                          "depend on state left over from an earlier call?")

    def evaluate() -> float:
        return to_float(clone.forward(s64.copy(), y_arr.copy()))

    n = s64.shape[0] if s64.ndim else None
    sums = _sums_over_the_batch(clone, s64, y_arr, to_float(value))
    if sums:
        forward.fail("forward returns the sum over the batch, not the mean: two copies of the batch give "
                     "twice the loss. Divide by N, the batch size.")

    def hypotheses(indices: list[tuple[int, ...]]) -> list[Hypothesis]:
        if not sums or not n:
            return []
        got = np.array([received[i] for i in indices])
        want = np.array([probe.at(i)[0] for i in indices])
        return [Hypothesis("dscores is the gradient of the batch mean, but your forward returns the sum "
                           "(see forward): fix forward, and backward agrees with it.",
                           lambda: explains(got, want / n))]

    ctx = Context("loss", n, batch_axis=s64.ndim > 1, labels=y_arr if s64.ndim == 2 else None,
                  num_classes=s64.shape[1] if s64.ndim == 2 else None)
    with np.errstate(all="ignore"):
        probe = Probe(evaluate, s64)
        _compare(dscores_item, received, probe, ctx, rng, full_max, n_coords, n_directions, hypotheses)
    report.evaluations += probe.evaluations
    return report


def _sums_over_the_batch(loss: Any, scores: np.ndarray, y: np.ndarray, value: float) -> bool:
    """Whether forward on two copies of the batch returns twice its value (a sum, not a mean)."""
    if scores.ndim < 1 or scores.shape[0] < 1 or abs(value) < SCALE_FLOOR:
        return False
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            doubled = float(loss.forward(np.concatenate([scores, scores]), np.concatenate([y, y])))
    except Exception:  # noqa: BLE001 - the property cannot be tested
        return False
    return bool(abs(doubled - 2 * value) <= VALUE_TOL * abs(value))


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


def check_values(
    name: str,
    received: Any,
    expected: Any,
    *,
    tol: float = VALUE_TOL,
    what: str = "value",
    start: Any = None,
    likely: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    num_classes: int | None = None,
) -> CheckReport:
    """Compare an output with known values: shape, finiteness, then `scaled_error <= tol`.

    Inputs:
        what: "value" (what a forward or function returns), "gradient" or "update" (a parameter
            after an optimizer step): changes the words of the diagnosis.
        start: for an update, the parameter before the step(s); the diagnosis then compares how far
            it moved (the step), not where it ended.
        likely: {clause: values} likely wrong results the test cell knows of; a match is reported
            as "`name` is what you get when <clause>".
        batch_size, num_classes: for a loss value, name a factor N (a sum, not a mean) or C
            (averaged over the classes too).
    On a mismatch the diagnosis also says whether the output is a multiple, the negative, the
    transpose or a row-permutation of the expected values, normalised over the wrong axis, or off
    by the same offset in every row.
    """
    if what not in WHAT:
        raise ValueError(f"check_values(what={what!r}): what must be one of {', '.join(WHAT)}")
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
    item.fail(f"{MEASURED} {_fmt_index(name, worst)}: received {arr[worst]:.6g}, expected {expected[worst]:.6g}")
    hyps = value_hypotheses(name, arr, expected, likely)
    got, want = arr, expected
    if start is not None and what == "update":
        origin = np.asarray(start, dtype=np.float64)
        if origin.shape == arr.shape:
            got, want = arr - origin, expected - origin
    indices = list(np.ndindex(arr.shape))
    loss = batch_size is not None or num_classes is not None
    ctx = Context("loss" if loss else "values",
                  batch_size if loss else (arr.shape[0] if arr.ndim else None),
                  batch_axis=arr.ndim > 1 and not loss and what != "update", num_classes=num_classes, what=what)
    wanted = np.array([want[i] for i in indices])
    sentences = diagnose(name, got, indices, wanted, lambda idx: (float(want[idx]),), ctx, hyps)
    for sentence in reversed(sentences):
        item.problems.insert(0, sentence)
    return report
