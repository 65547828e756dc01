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

__all__ = [
    "Module", "Parameter",
    "check_layer", "check_loss", "check_gradient", "check_values", "check_two_layer", "CheckReport",
    "KnownFunction",
    "numeric_gradient", "numeric_gradient_array", "rel_error", "scaled_error",
    "GRAD_TOL", "VALUE_TOL",
]
