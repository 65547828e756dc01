"""Scalar test functions with a known derivative, which watch how a student's finite differences call them.

Notebook 03 asks the student to write their own central and forward differences. Grading them needs a
function whose derivative is known exactly *and* a witness of how it was called:

- each call may differ from the original point in at most one entry (every entry restored after it
  was perturbed);
- the caller's array is never modified, not even for the duration of a call (the difference must
  perturb a copy);
- no function of lablib stands between the student's method and the function (a submission that
  hands the work to `lablib.numeric_gradient` earns nothing: the point is to write it).

`KnownFunction.differentiate_with(method, x, h)` runs the student's method and records all three;
`problems()` says, in words, what was wrong. It lives in lablib (not in a test cell) so that the
grader can create it inside the sandboxed worker, where the student's method runs, and read back
only plain values.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

import numpy as np

__all__ = ["KnownFunction", "FUNCTIONS"]

#: The elementwise functions available: name -> (g, g'); a KnownFunction is f(x) = Σ w ⊙ g(x).
FUNCTIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "cube": (lambda x: x ** 3, lambda x: 3.0 * x ** 2),
    "exp": (np.exp, np.exp),
    "sin": (np.sin, np.cos),
}

_LABLIB_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HERE = os.path.abspath(__file__)


class KnownFunction:
    """f(x) = Σ weights ⊙ g(x) for an elementwise g ("cube", "exp" or "sin"), evaluated in `dtype`.

    Inputs:
        name: which g (a key of FUNCTIONS).
        weights: a float or an array broadcastable to x's shape (default 1).
        dtype: the precision f computes in: its input is cast to it ("float32" shows round-off).
    Calling it returns a Python float. `gradient(x)` is the exact derivative, in float64.
    """

    def __init__(self, name: str = "cube", weights: Any = 1.0, dtype: Any = "float64"):
        if name not in FUNCTIONS:
            raise ValueError(f"unknown function {name!r}: choose one of {sorted(FUNCTIONS)}")
        self.name = name
        self.weights = np.asarray(weights, dtype=np.float64)
        self.dtype = np.dtype(dtype)
        self.calls = 0
        self._watch: np.ndarray | None = None
        self._original: np.ndarray | None = None
        self._problems: list[str] = []

    def __repr__(self) -> str:
        return f"KnownFunction({self.name!r}, dtype={self.dtype.name})"

    def __call__(self, x: Any) -> float:
        self.calls += 1
        if self._watch is not None:
            self._inspect(x)
        g, _ = FUNCTIONS[self.name]
        values = g(np.asarray(x).astype(self.dtype))
        return float(np.sum(self.weights.astype(self.dtype) * values, dtype=self.dtype))

    def gradient(self, x: Any) -> np.ndarray:
        """The exact gradient at x, float64, x's shape."""
        _, dg = FUNCTIONS[self.name]
        x64 = np.asarray(x, dtype=np.float64)
        return np.broadcast_to(self.weights * dg(x64), x64.shape).copy()

    # ---- watching a student's finite differences
    def differentiate_with(self, method: Callable[..., Any], x: np.ndarray, h: float) -> Any:
        """`method(self, x, h=h)`, watched: see `problems()` afterwards. Returns what method returned."""
        self._watch, self._original, self._problems = x, np.array(x, copy=True), []
        self.calls = 0
        try:
            return method(self, x, h=h)
        finally:
            self._watch = None
            if not np.array_equal(x, self._original):
                self._note("it left the caller's array x changed after it returned: work on a copy "
                           "(x = x.copy()) and put each entry back after perturbing it.")

    def problems(self) -> list[str]:
        """What the last `differentiate_with` did wrong, in words (empty when nothing)."""
        out = list(self._problems)
        if self._original is not None and self.calls == 0:
            out.append("it never called f: a finite difference evaluates the function at perturbed points.")
        return out

    def _note(self, problem: str) -> None:
        if problem not in self._problems:
            self._problems.append(problem)

    def _inspect(self, x: Any) -> None:
        watch, original = self._watch, self._original
        assert watch is not None and original is not None
        if x is watch or not np.array_equal(watch, original):
            self._note("it perturbed the caller's array x itself (f saw x changed in place): perturb a copy, "
                       "so that the caller's x is never modified, not even while f runs.")
        received = np.asarray(x)
        if received.shape != original.shape:
            self._note(f"f received an array of shape {received.shape} instead of x's shape {original.shape}: "
                       "perturb one entry of (a copy of) x and pass the whole array.")
        else:
            if int(np.count_nonzero(received != original)) > 1:
                self._note("f received an array in which more than one entry differed from x: each entry must be "
                           "restored to its original value before the next one is perturbed.")
        via = self._lablib_callers()
        if via:
            self._note(f"it called f through lablib ({', '.join(via)}): write the finite differences yourself; "
                       "calling lablib's numeric gradient earns no points here.")

    def _lablib_callers(self) -> list[str]:
        """lablib functions on the call stack between this call and `differentiate_with`."""
        found = []
        frame = sys._getframe(2)  # 0: _lablib_callers, 1: _inspect, 2: __call__ (this file: skipped)
        while frame is not None:
            filename = os.path.abspath(frame.f_code.co_filename)
            if filename == _HERE and frame.f_code.co_name == "differentiate_with":
                break
            if filename.startswith(_LABLIB_DIR + os.sep) and filename != _HERE:
                found.append(f"{os.path.relpath(filename, os.path.dirname(_LABLIB_DIR))}:{frame.f_code.co_name}")
            frame = frame.f_back
        return found
