"""lablib: the helper package of Backprop Lab.

Infrastructure only: base classes, gradient checkers, data, training loop, plots and grading.
It never contains an implementation that a student is asked to write.
"""

from .gradcheck import (
    GRAD_TOL,
    VALUE_TOL,
    CheckReport,
    KnownFunction,
    check_gradient,
    check_layer,
    check_loss,
    check_two_layer,
    check_values,
    numeric_gradient,
    numeric_gradient_array,
    rel_error,
    scaled_error,
)
from .module import Module, Parameter

__version__ = "0.1.0"


def self_check(notebook=None, **options):  # noqa: ANN001, ANN201 - see lablib.grading.selfcheck.self_check
    """Check this notebook as saved, with its visible tests: a table of parts, points and diagnoses.
    (Imported on first use; see `lablib.grading.selfcheck`.)"""
    from .grading.selfcheck import self_check as run

    return run(notebook, **options)

__all__ = [
    "Module", "Parameter",
    "check_layer", "check_loss", "check_gradient", "check_values", "check_two_layer", "CheckReport",
    "KnownFunction",
    "numeric_gradient", "numeric_gradient_array", "rel_error", "scaled_error",
    "GRAD_TOL", "VALUE_TOL", "self_check",
]
