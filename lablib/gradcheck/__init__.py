"""Gradient checking: numeric gradients, error measures, checkers and their reports."""

from .checks import FULL_CHECK_MAX, N_COORDS, N_DIRECTIONS, VALUE_TOL, check_gradient, check_layer, check_loss, check_values
from .numeric import GRAD_TOL, KINK_TOL, STEP, numeric_gradient, numeric_gradient_array, rel_error, scaled_error
from .known import KnownFunction
from .network import check_two_layer
from .report import CheckReport, Item

__all__ = [
    "check_layer", "check_loss", "check_gradient", "check_values",
    "numeric_gradient", "numeric_gradient_array", "rel_error", "scaled_error",
    "CheckReport", "Item", "KnownFunction", "check_two_layer",
    "GRAD_TOL", "KINK_TOL", "STEP", "VALUE_TOL", "FULL_CHECK_MAX", "N_COORDS", "N_DIRECTIONS",
]
