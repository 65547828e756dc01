"""Checks that notebook test cells call but students need not read.

A test cell should show what it checks in a few lines; where a check needs scaffolding (calling the
student's layer twice under different settings, catching what it raises), the scaffolding lives
here and returns a `CheckReport`, so that the cell ends with `.assert_ok()` like every other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .gradcheck import CheckReport, check_values

__all__ = ["check_skips_input_grad", "same_values"]


def same_values(received: Any, expected: Any, rtol: float = 1e-9, atol: float = 1e-12) -> bool:
    """Whether `received` has the shape and the values of `expected` (a float64 comparison).

    np.allclose alone broadcasts: it finds a flat output of shape (4,) equal to the expected (1, 4)
    one, compares a (4, 1) with a (1, 4) entry by entry of their (4, 4) broadcast, and raises on a (2,)
    against a (1, 4). A test cell that asks "is the student's forward right?" before choosing how to
    grade backward must say no to all three, without raising.
    """
    got, want = np.asarray(received), np.asarray(expected)
    if got.shape != want.shape or got.dtype.kind not in "fiub":
        return False
    return bool(np.allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol))


def _backward_once(layer: Any, x: np.ndarray, dout: np.ndarray,
                   needs_input_grad: bool) -> tuple[Any, Any, Any, Exception | None]:
    """(dx, W.grad, b.grad, error) after one forward and backward; error: what backward raised."""
    layer.needs_input_grad = needs_input_grad
    # start from zero gradients: whether backward sets (`=`) or accumulates (`+=`) is graded elsewhere
    layer.W.grad, layer.b.grad = np.zeros(layer.W.data.shape), np.zeros(layer.b.data.shape)
    layer(x)
    W = layer.W.data
    if not needs_input_grad:  # W of the transposed shape: computing dx with it fails (dW and db do not need W)
        layer.W.data = np.zeros(W.shape[::-1])
    try:
        return layer.backward(dout), layer.W.grad, layer.b.grad, None
    except Exception as exc:  # noqa: BLE001 - the student's code may raise anything; the report says what
        return None, layer.W.grad, layer.b.grad, exc
    finally:
        layer.W.data = W


def check_skips_input_grad(layer: Any, x: np.ndarray, dout: np.ndarray) -> CheckReport:
    """Does a Linear-like layer (parameters W and b) skip dx when `needs_input_grad` is False?

    Inputs:
        layer: the layer; x (N, in) its input; dout (N, out) the upstream gradient.
    Returns:
        a CheckReport with items "skips dx" (backward returns None and never computes dx: during
        that call W has the transposed shape, so computing dx would raise) and "W.grad", "b.grad"
        (the same as a normal backward sets; when a normal backward raises, which is graded with dx,
        they must at least be set, not left zero).
    """
    report = CheckReport(f"backward with needs_input_grad False, on x of shape {np.shape(x)}")
    _, W_grad, b_grad, error = _backward_once(layer, x, dout, True)
    dx, W_grad_skipping, b_grad_skipping, skip_error = _backward_once(layer, x, dout, False)
    skips = report.item("skips dx")
    if skip_error is not None:
        skips.fail(f"with needs_input_grad False, backward raised {skip_error!r}: it must not compute dx then "
                   "(this check gives W another shape during that call to find out)")
    elif dx is not None:
        skips.fail(f"with needs_input_grad False, backward returned {type(dx).__name__}: "
                   "skip the dx computation and return None")
    else:
        skips.detail = "returned None without computing dx"
    if error is None:  # the gradients a normal backward sets (whether they are right is graded elsewhere)
        for name, got, expected in (("W.grad", W_grad_skipping, W_grad), ("b.grad", b_grad_skipping, b_grad)):
            report.items[name] = check_values(name, got, expected).items[name]
    else:
        for name, got in (("W.grad", W_grad_skipping), ("b.grad", b_grad_skipping)):
            item = report.item(name)
            if not np.any(got):
                item.fail(f"backward must still set {name} when it skips dx")
    return report
