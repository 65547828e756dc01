"""check_layer / check_loss / check_gradient / check_values: correct code in any style passes,
and every known mistake fails with a diagnosis that names it."""

import numpy as np
import pytest

from lablib import GRAD_TOL, Module, Parameter, check_gradient, check_layer, check_loss, check_values

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------- correct layers, many styles
class Linear(Module):
    def __init__(self, n_in, n_out, seed=0):
        rng = np.random.default_rng(seed)
        self.W = Parameter(rng.standard_normal((n_in, n_out)) * np.sqrt(2 / n_in))
        self.b = Parameter(rng.standard_normal(n_out))

    def forward(self, x):
        self.x = x
        return x @ self.W.data + self.b.data

    def backward(self, dout):
        self.W.grad = self.x.T @ dout
        self.b.grad = dout.sum(axis=0)
        return dout @ self.W.data.T if self.needs_input_grad else None


class LinearEinsum(Linear):
    def forward(self, x):
        self.x = x
        return np.einsum("nd,dm->nm", x, self.W.data) + self.b.data

    def backward(self, dout):
        self.W.grad = np.einsum("nd,nm->dm", self.x, dout)
        self.b.grad = np.einsum("nm->m", dout)
        return np.einsum("nm,dm->nd", dout, self.W.data)


class LinearRowBias(Linear):
    """A bias stored as a (1, out) row."""

    def __init__(self, n_in, n_out, seed=0):
        super().__init__(n_in, n_out, seed)
        self.b = Parameter(self.b.data[None, :])

    def backward(self, dout):
        self.W.grad = self.x.T @ dout
        self.b.grad = dout.sum(axis=0, keepdims=True)
        return dout @ self.W.data.T


class LinearLoops(Linear):
    def forward(self, x):
        self.x = x
        n, (d, m) = len(x), self.W.data.shape
        out = np.zeros((n, m))
        for i in range(n):
            for j in range(m):
                out[i, j] = self.b.data[j] + sum(x[i, k] * self.W.data[k, j] for k in range(d))
        return out

    def backward(self, dout):
        n, (d, m) = len(self.x), self.W.data.shape
        self.W.grad = np.zeros((d, m))
        self.b.grad = np.zeros(m)
        dx = np.zeros((n, d))
        for i in range(n):
            for j in range(m):
                self.b.grad[j] += dout[i, j]
                for k in range(d):
                    self.W.grad[k, j] += self.x[i, k] * dout[i, j]
                    dx[i, k] += dout[i, j] * self.W.data[k, j]
        return dx


class LinearGradInPlace(Linear):
    """Writes into a gradient buffer with [...] = (sets it, does not accumulate)."""

    def backward(self, dout):
        if self.W.grad is None:
            self.W.grad, self.b.grad = np.empty_like(self.W.data), np.empty_like(self.b.data)
        self.W.grad[...] = self.x.T @ dout
        self.b.grad[...] = dout.sum(axis=0)
        return dout @ self.W.data.T


class ReLU(Module):
    def forward(self, x):
        self.x = x
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * (self.x > 0)


class ReLUWhere(ReLU):
    def forward(self, x):
        self.x = x
        return np.where(x > 0, x, 0.0)

    def backward(self, dout):
        return np.where(self.x > 0, dout, 0.0)


class ReLUAtZeroIsOne(ReLU):
    def backward(self, dout):
        return dout * (self.x >= 0)


class SigmoidViaTanh(Module):
    def forward(self, x):
        self.out = 0.5 * (1 + np.tanh(0.5 * x))
        return self.out

    def backward(self, dout):
        return dout * self.out * (1 - self.out)


class SigmoidBothBranches(SigmoidViaTanh):
    """np.where evaluates both branches, so numpy warns about overflow; the values are still right."""

    def forward(self, x):
        self.out = np.where(x >= 0, 1 / (1 + np.exp(-x)), np.exp(x) / (1 + np.exp(x)))
        return self.out


class Network(Module):
    """Linear-ReLU-Linear, as a student's two-layer network would be."""

    def __init__(self, sizes, seed=0):
        self.layers = [Linear(sizes[0], sizes[1], seed), ReLU(), Linear(sizes[1], sizes[2], seed + 1)]

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


CORRECT_LAYERS = {
    "matmul": lambda: Linear(5, 5),
    "einsum": lambda: LinearEinsum(5, 5),
    "(1, out) bias": lambda: LinearRowBias(5, 5),
    "loops": lambda: LinearLoops(5, 5),
    "grad[...] =": lambda: LinearGradInPlace(5, 5),
    "relu maximum": ReLU,
    "relu where": ReLUWhere,
    "relu x >= 0": ReLUAtZeroIsOne,
    "sigmoid via tanh": SigmoidViaTanh,
    "sigmoid np.where": SigmoidBothBranches,
}


@pytest.mark.parametrize("style", sorted(CORRECT_LAYERS))
@pytest.mark.parametrize("n", [1, 4])
def test_correct_layers_in_any_style_pass(style, n):
    x = np.random.default_rng(n).standard_normal((n, 5))
    report = check_layer(CORRECT_LAYERS[style](), x)
    assert report.passed, report


@pytest.mark.parametrize("layer", [ReLU, ReLUAtZeroIsOne, ReLUWhere])
def test_relu_exactly_at_and_within_h_of_the_kink_passes(layer):
    x = np.array([[0.0, 0.0, 1e-9, -1e-9, 3e-7, -0.5, 0.5]])
    report = check_layer(layer(), x)
    assert report.passed, report
    assert "kink" in report.items["dx"].detail


def test_network_784_256_10_passes_cheaply_through_sampling():
    x = np.random.default_rng(1).standard_normal((16, 784))
    report = check_layer(Network((784, 256, 10)), x)
    assert report.passed, report
    assert "random directions" in report.items["layers[0].W".join(["d", ""])].detail
    # a full numeric gradient would run forward 2 * (16*784 + 784*256 + 256 + 256*10 + 10) ≈ 430,000 times
    assert report.evaluations < 1000


def test_a_first_layer_that_skips_dx_is_still_checked_with_dx():
    net = Network((6, 5, 3))
    net.layers[0].needs_input_grad = False  # as notebook 04 trains it
    report = check_layer(net, np.random.default_rng(3).standard_normal((4, 6)))
    assert report.passed, report
    assert report.items["dx"].passed and "entries" in report.items["dx"].detail
    assert net.layers[0].needs_input_grad is False  # the student's network keeps its setting


def test_large_inputs_stay_finite_in_a_stable_layer():
    assert check_layer(SigmoidViaTanh(), np.array([[-1000.0, -30.0, 0.0, 30.0, 1000.0]])).passed


def test_float32_input_is_checked_in_float64():
    x = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
    assert check_layer(Linear(5, 4), x).passed


def test_the_students_layer_is_not_modified():
    layer = Linear(3, 3)
    before = layer.W.data.copy()
    check_layer(layer, np.ones((2, 3)))
    assert layer.W.grad is None and np.array_equal(layer.W.data, before)


# ----------------------------------------------------------------------------- wrong layers, diagnosed
class TransposedDW(Linear):
    def backward(self, dout):
        dx = super().backward(dout)
        self.W.grad = self.W.grad.T
        return dx


class ScaledDW(Linear):
    factor = "1/N"

    def backward(self, dout):
        dx = super().backward(dout)
        n = len(dout)
        self.W.grad = self.W.grad * {"1/N": 1 / n, "N": n, "3": 3.0}[self.factor]
        return dx


class NegatedDx(Linear):
    def backward(self, dout):
        return -super().backward(dout)


class ForgetsToAssign(Linear):
    def backward(self, dout):
        self.b.grad = dout.sum(axis=0)
        self.x.T @ dout  # computed, never stored
        return dout @ self.W.data.T


class SetsNone(Linear):
    def backward(self, dout):
        dx = super().backward(dout)
        self.b.grad = None
        return dx


class Accumulates(Linear):
    def backward(self, dout):
        self.W.grad += self.x.T @ dout
        self.b.grad = dout.sum(axis=0)
        return dout @ self.W.data.T


class WrongSample(ReLU):
    def backward(self, dout):
        return np.roll(dout * (self.x > 0), 1, axis=0)


class MutatesInput(ReLU):
    def forward(self, x):
        self.x = x.copy()
        x[x < 0] = 0
        return x


class MutatesDout(ReLU):
    def backward(self, dout):
        dout[self.x <= 0] = 0
        return dout


class NaiveSigmoid(SigmoidViaTanh):
    def forward(self, x):
        self.out = np.exp(x) / (1 + np.exp(x))
        return self.out


class Float32Forward(ReLU):
    def forward(self, x):
        self.x = x
        return np.maximum(x, 0).astype(np.float32)


class CrashesInBackward(ReLU):
    def backward(self, dout):
        return dout * self.mask  # no such attribute


class NotWritten(Module):
    def forward(self, x):
        raise NotImplementedError()


class StatefulBackward(ReLU):
    calls = 0

    def backward(self, dout):
        self.calls += 1
        return dout * (self.x > 0) * self.calls


class DxTransposedShape(Linear):
    def backward(self, dout):
        return super().backward(dout).T


class OneWrongEntry(Linear):
    def backward(self, dout):
        dx = super().backward(dout)
        self.W.grad[3, 7] += 1.0
        return dx


class PrivateWeightCopy(Linear):
    """Reads a copy of W made at construction, so W.data changes do not reach the output."""

    def __init__(self, n_in, n_out, seed=0):
        super().__init__(n_in, n_out, seed)
        self.weights = self.W.data.copy()

    def forward(self, x):
        self.x = x
        return x @ self.weights + self.b.data


def _x(shape=(4, 5), seed=3):
    return np.random.default_rng(seed).standard_normal(shape)


def failing(report, name):
    item = report.items[name]
    assert not item.passed, report
    return " ".join(item.problems)


def test_transposed_weight_gradient_on_a_square_matrix():
    assert "transposed" in failing(check_layer(TransposedDW(5, 5), _x()), "dW")


@pytest.mark.parametrize("factor, words", [("1/N", "N = 4 times too small"), ("N", "N = 4 times too large"),
                                           ("3", "3 times the expected")])
def test_scaled_gradient_names_the_factor(factor, words):
    layer = ScaledDW(5, 3)
    layer.factor = factor
    report = check_layer(layer, _x())
    assert words in failing(report, "dW")
    assert report.items["dx"].passed and report.items["db"].passed


def test_negated_dx():
    assert "wrong sign" in failing(check_layer(NegatedDx(5, 3), _x()), "dx")


def test_gradient_never_assigned():
    report = check_layer(ForgetsToAssign(5, 3), _x())
    assert "not set" in failing(report, "dW")
    assert report.items["db"].passed


def test_gradient_set_to_none():
    assert "None" in failing(check_layer(SetsNone(5, 3), _x()), "db")


def test_accumulated_instead_of_set():
    report = check_layer(Accumulates(5, 3), _x())
    assert "+=" in failing(report, "dW")
    assert report.items["db"].passed


def test_gradient_from_the_wrong_sample():
    assert "mixes up the samples" in failing(check_layer(WrongSample(), _x()), "dx")


def test_forward_mutating_its_input():
    report = check_layer(MutatesInput(), _x())
    assert "changed its input" in failing(report, "forward")


def test_backward_mutating_dout():
    assert "changed its argument dout" in failing(check_layer(MutatesDout(), _x()), "dx")


def test_overflow_to_nan_in_forward():
    report = check_layer(NaiveSigmoid(), np.array([[-1000.0, 0.0, 1000.0]]))
    assert "NaN" in failing(report, "forward")
    assert not report.items["dx"].passed


def test_forward_returning_float32():
    assert "float32" in failing(check_layer(Float32Forward(), _x()), "forward")


def test_exception_in_backward_is_reported_not_raised():
    report = check_layer(CrashesInBackward(), _x())
    assert report.items["forward"].passed
    assert "AttributeError" in failing(report, "dx")


def test_unwritten_layer():
    report = check_layer(NotWritten(), _x())
    assert "not implemented yet" in failing(report, "forward")


def test_backward_depending_on_earlier_calls():
    assert "earlier call" in failing(check_layer(StatefulBackward(), _x()), "dx")


def test_dx_with_the_transposed_shape():
    assert "transpose" in failing(check_layer(DxTransposedShape(5, 3), _x()), "dx")


class WrongShapeForward(Linear):
    """A right backward behind a forward that returns another shape (`how`)."""

    def __init__(self, n_in, n_out, how):
        super().__init__(n_in, n_out)
        self.how = how

    def forward(self, x):
        y = super().forward(x)
        return {"transposed": y.T, "squeezed": y.squeeze(), "flat": y.ravel(), "summed": y.sum(axis=0)}[self.how]


@pytest.mark.parametrize("how, n, shape, words", [("transposed", 4, (2, 4), "the transpose"), ("squeezed", 1, (2,), "np.squeeze"),
                                                  ("flat", 4, (8,), "right number of entries")])
def test_a_wrong_shape_forward_fails_forward_only_when_the_test_knows_the_shape(how, n, shape, words):
    """Without out_shape, backward received an upstream gradient of the forward's wrong shape and failed
    (or crashed) too; with it, forward fails naming both shapes and backward is held to the numeric
    gradient of the output mapped to the right shape."""
    report = check_layer(WrongShapeForward(3, 2, how), _x((n, 3)), out_shape=(n, 2))
    assert report.failed() == ["forward"], report
    message = failing(report, "forward")
    assert f"has shape {shape}, expected {(n, 2)}" in message and words in message
    assert any("does not fail backward" in note for note in report.notes)


def test_a_forward_whose_output_cannot_be_mapped_leaves_backward_unchecked():
    report = check_layer(WrongShapeForward(3, 2, "summed"), _x((4, 3)), out_shape=(4, 2))
    assert report.failed() == ["forward", "dx", "dW", "db"]
    assert "batch axis 0 is missing" in failing(report, "forward")
    assert "not checked: forward returned shape (2,), expected (4, 2)" in failing(report, "dW")


def test_a_right_forward_passes_with_its_out_shape():
    assert check_layer(Linear(3, 2), _x((4, 3)), out_shape=(4, 2)).passed


def test_one_wrong_entry_in_a_large_gradient_is_caught_by_random_directions():
    report = check_layer(OneWrongEntry(784, 64), _x((8, 784)))
    assert "random direction" in failing(report, "dW") or "worst entry dW[3, 7]" in failing(report, "dW")


def test_parameter_not_read_by_forward():
    assert "does not change" in failing(check_layer(PrivateWeightCopy(4, 3), _x((2, 4))), "dW")


# ----------------------------------------------------------------------------- losses
class CrossEntropy(Module):
    scale = 1.0

    def forward(self, scores, y):
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.p, self.y = np.exp(log_p), y
        return float(-log_p[np.arange(len(y)), y].mean())

    def backward(self):
        d = self.p.copy()
        d[np.arange(len(self.y)), self.y] -= 1
        return d / len(self.y) * self.scale


class Hinge(Module):
    def __init__(self, margin=1.0, true_class_term=True):
        self.margin, self.true_class_term = margin, true_class_term

    def forward(self, scores, y):
        rows = np.arange(len(y))
        m = scores - scores[rows, y][:, None] + self.margin
        m[rows, y] = 0
        self.active, self.y = (m > 0).astype(float), y
        return float(np.maximum(m, 0).sum() / len(y))

    def backward(self):
        d = self.active.copy()
        if self.true_class_term:
            d[np.arange(len(self.y)), self.y] = -d.sum(axis=1)
        return d / len(self.y)


class PerSampleLoss(CrossEntropy):
    def forward(self, scores, y):
        super().forward(scores, y)
        return -np.log(self.p[np.arange(len(y)), y])


class LogOfSoftmax(CrossEntropy):
    def forward(self, scores, y):
        e = np.exp(scores)
        self.p, self.y = e / e.sum(axis=1, keepdims=True), y
        return float(-np.log(self.p[np.arange(len(y)), y]).mean())


def _scores(n=4, c=3, seed=5):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c)), rng.integers(0, c, n)


def test_correct_losses_pass_including_hinge_exactly_at_its_kink():
    assert check_loss(CrossEntropy(), *_scores()).passed
    assert check_loss(Hinge(5.0), *_scores(6, 4)).passed
    kink = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    report = check_loss(Hinge(), kink, np.array([0, 2]))
    assert report.passed, report
    assert "kink" in report.items["dscores"].detail


@pytest.mark.parametrize("scale, words", [(4.0, "times too large"), (0.25, "average twice")])
def test_loss_gradient_scaled_by_the_batch_size(scale, words):
    loss = CrossEntropy()
    loss.scale = scale
    assert words in failing(check_loss(loss, *_scores(4)), "dscores")


def test_hinge_without_the_true_class_term():
    assert "true-class" in failing(check_loss(Hinge(true_class_term=False), *_scores(5, 4)), "dscores")


def test_loss_returning_per_sample_values():
    """The forward's mistake costs the forward only: a right backward is held to the gradient of the mean
    of the per-sample losses (it used to fail with "not checked: forward did not return a usable float")."""
    report = check_loss(PerSampleLoss(), *_scores())
    assert "batch mean" in failing(report, "forward")
    assert report.failed() == ["forward"], report
    wrong = PerSampleLoss()
    wrong.scale = 4.0  # and a backward that is wrong as well still fails, with its own diagnosis
    assert "times too large" in failing(check_loss(wrong, *_scores()), "dscores")


def test_loss_overflowing_on_large_scores():
    scores = np.array([[1000.0, 0.0, -1000.0]])
    assert "overflow" in failing(check_loss(LogOfSoftmax(), scores, np.array([1])), "forward")


# ----------------------------------------------------------------------------- functions and values
def test_check_gradient_of_a_penalty():
    W, b = _x((3, 2)), _x((2,), 1)

    def penalty(W, b):
        return 0.1 * np.sum(W**2)

    assert check_gradient(penalty, [W, b], [0.2 * W, np.zeros(2)], ["W", "b"]).passed
    report = check_gradient(penalty, [W, b], [0.1 * W, np.zeros(2)], ["W", "b"])
    assert "factor 2 is missing" in failing(report, "dW") and report.items["db"].passed


def test_check_values_diagnoses_transposed_negated_and_permuted_rows():
    expected = _x((3, 3))
    assert check_values("y", expected + 1e-12, expected).passed
    assert "transposed" in failing(check_values("y", expected.T, expected), "y")
    assert "wrong sign" in failing(check_values("y", -expected, expected), "y")
    assert "mixes up the samples" in failing(check_values("y", expected[[1, 2, 0]], expected), "y")
    assert "shape (2, 3), expected (3, 3)" in failing(check_values("y", expected[:2], expected), "y")


# ----------------------------------------------------------------------------- the report itself
def test_report_prints_as_text_and_html_and_asserts_per_item():
    report = check_layer(TransposedDW(4, 4), _x((3, 4)))
    text = str(report)
    assert "dW" in text and "FAILED" in text and f"{GRAD_TOL:g}" in text
    assert "<table>" in report._repr_html_() and "FAILED" in report._repr_html_()
    report.assert_ok("dx", "db")
    with pytest.raises(AssertionError, match="transposed"):
        report.assert_ok("dW")
    with pytest.raises(KeyError, match="no check named"):
        report.assert_ok("dV")
    assert report.failed() == ["dW"] and not report


class CrashesAfterSettingGrads(Linear):
    def backward(self, dout):
        self.W.grad = self.x.T @ dout
        self.b.grad = dout.sum(axis=0)
        return dout @ self.W.data  # no transpose: a shape error for a non-square W


def test_a_crash_computing_dx_does_not_cost_the_gradients_already_set():
    report = check_layer(CrashesAfterSettingGrads(5, 3), _x())
    assert "ValueError" in failing(report, "dx")
    assert report.items["dW"].passed and report.items["db"].passed, report


# ----------------------------------------------------------------------------- named hypotheses
def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def elementwise(forward, backward):
    """An elementwise layer from two functions: forward(x) and backward(layer, dout)."""

    class Elementwise(Module):
        def forward(self, x):
            self.x, self.out = x, forward(x)
            return self.out

        def backward(self, dout):
            return backward(self, dout)

    return Elementwise()


RELU = lambda x: np.maximum(x, 0)  # noqa: E731 - a table of one-line layers reads best as lambdas
ELEMENTWISE_MISTAKES = {
    "missing factor (1 - y)": (_sigmoid, lambda s, d: d * s.out, "misses a factor (1 − y)"),
    "missing factor (1 + y)": (np.tanh, lambda s, d: d * (1 - s.out), "misses a factor (1 + y)"),
    "output formula on the input": (np.tanh, lambda s, d: d * (1 - s.x**2), "formula meant for the output"),
    "input formula on the output": (_sigmoid, lambda s, d: d * _sigmoid(s.out) * (1 - _sigmoid(s.out)), "at the output"),
    "another activation's derivative": (np.tanh, lambda s, d: d * s.out * (1 - s.out), "sigmoid's derivative"),
    "dout ignored": (RELU, lambda s, d: (s.x > 0) * 1.0, "does not use dout"),
    "dout passed through": (RELU, lambda s, d: d * (s.out >= 0), "dout unchanged"),
    "mask from dout": (RELU, lambda s, d: d * (d > 0), "at dout"),
    "mask inverted": (RELU, lambda s, d: d * (s.x <= 0), "inverted"),
    "leaky slope in backward only": (RELU, lambda s, d: np.where(s.x > 0, d, 0.1 * d), "slope 0.1 where x < 0"),
    "leaky slope in forward only": (lambda x: np.maximum(x, 0.1 * x), lambda s, d: d * (s.x > 0), "forward has slope 0.1"),
    "product rule, first term only": (_gelu, lambda s, d: d * _gelu(s.x) / s.x, "first term of the product rule"),
}


@pytest.mark.parametrize("mistake", sorted(ELEMENTWISE_MISTAKES))
def test_elementwise_backward_mistakes_are_named_from_the_students_own_forward(mistake):
    forward, backward, words = ELEMENTWISE_MISTAKES[mistake]
    x = np.random.default_rng(7).standard_normal((4, 5)) * 1.5
    assert words in failing(check_layer(elementwise(forward, backward), x), "dx")


def test_a_forward_with_a_transposed_square_weight_is_blamed_not_the_gradients():
    class ForwardUsesWT(Linear):
        def forward(self, x):
            self.x = x
            return x @ self.W.data.T + self.b.data

    for n in (1, 4):
        report = check_layer(ForwardUsesWT(5, 5), _x((n, 5)))
        for name in ("dx", "dW"):
            text = failing(report, name)
            assert "forward seems to use W.T" in text and "dW is transposed" not in text
        assert report.items["db"].passed


def test_dx_without_the_transpose_is_named_where_the_shape_hides_it():
    class DxWithoutTranspose(Linear):
        def backward(self, dout):
            super().backward(dout)
            return dout @ self.W.data

    for n in (1, 6):  # a batch of one, and a square W
        report = check_layer(DxWithoutTranspose(6, 6), _x((n, 6)))
        assert "dx needs Wᵀ where you used W" in failing(report, "dx")
        assert report.items["dW"].passed and report.items["db"].passed
    assert ".T" in failing(check_layer(DxWithoutTranspose(5, 3), _x()), "dx")  # a shape error otherwise


def test_a_parameter_gradient_from_one_sample_is_named():
    class LastSampleOnly(Linear):
        def backward(self, dout):
            dx = super().backward(dout)
            for i in range(len(dout)):  # overwrites instead of adding
                self.W.grad = np.outer(self.x[i], dout[i])
            self.b.grad = dout[0] * len(dout)
            return dx

    report = check_layer(LastSampleOnly(5, 3), _x())
    assert "gradient of sample 3 alone" in failing(report, "dW")
    assert "N = 4 times the gradient of sample 0" in failing(report, "db")


def test_dout_returned_unchanged_and_a_bias_summed_over_the_wrong_axis_are_named():
    class Lazy(Linear):
        def backward(self, dout):
            super().backward(dout)
            self.b.grad = dout.sum(axis=1)
            return dout

    assert "dout unchanged" in failing(check_layer(Lazy(5, 3), _x()), "dx")  # the shape differs
    report = check_layer(Lazy(5, 5), _x((5, 5)))  # a square batch: dout.sum(axis=1) has db's shape
    assert "dout unchanged" in failing(report, "dx") and "summed over axis 1" in failing(report, "db")
    assert "summed over the wrong axis" in failing(check_layer(Lazy(5, 3), _x()), "db")


def test_a_loss_that_sums_over_the_batch_blames_forward_not_the_right_backward():
    class SumLoss(CrossEntropy):
        def forward(self, scores, y):
            return super().forward(scores, y) * len(y)

    report = check_loss(SumLoss(), *_scores())
    assert "sum over the batch" in failing(report, "forward")
    assert "your forward returns the sum" in failing(report, "dscores")
    assert check_loss(CrossEntropy(), *_scores()).passed  # the batch-mean property holds for a mean


def test_a_loss_averaged_over_every_entry_is_named_with_the_number_of_classes():
    class MeanOverEverything(CrossEntropy):
        def forward(self, scores, y):
            return super().forward(scores, y) / scores.shape[1]

    assert "C = 3 times" in failing(check_loss(MeanOverEverything(), *_scores()), "dscores")


def test_infinite_values_name_the_log_of_an_underflowed_probability():
    assert "log-softmax" in failing(check_values("loss", np.inf, 1000.0), "loss")
    report = check_loss(LogOfSoftmax(), np.array([[1000.0, 0.0, -1000.0]]), np.array([2]))
    assert "log-softmax" in failing(report, "forward")


def test_check_values_words_depend_on_what_the_array_is():
    grad = failing(check_values("g", np.zeros(3), [1.0, 2.0, 3.0], what="gradient"), "g")
    value = failing(check_values("v", np.zeros(3), [1.0, 2.0, 3.0]), "v")
    update = failing(check_values("p", [1.0, 2.0], [0.9, 2.2], what="update", start=[1.0, 2.0]), "p")
    assert "self.W.grad" in grad and "never returned" in value
    assert "written back" in update and "grad" not in update
    assert "gradient" not in failing(check_values("v", [2.0, 4.0], [1.0, 2.0]), "v")
    assert "moved the wrong way" in failing(check_values("p", [1.1, 1.8], [0.9, 2.2], what="update", start=[1.0, 2.0]), "p")


def test_check_values_names_a_likely_result_the_test_cell_knows_of():
    report = check_values("p", [-2.0], [-2.9], what="update", start=[-1.0], likely={"momentum is lost": [-2.0]})
    assert "p is what you get when momentum is lost" in failing(report, "p")


def test_a_scalar_off_by_an_unnamed_factor_gets_no_misleading_factor():
    text = failing(check_values("loss", 17.27, 1000.0), "loss")
    assert "times" not in text and "worst entry" in text
    assert "N = 3 times too large" in failing(check_values("loss", 6.0, 2.0, batch_size=3), "loss")


def test_check_values_names_normalisation_axis_broadcast_and_row_offsets():
    e = np.exp(_x((4, 3)))
    softmax = e / e.sum(axis=1, keepdims=True)
    assert "wrong axis" in failing(check_values("p", e / e.sum(axis=0, keepdims=True), softmax), "p")
    assert "whole array" in failing(check_values("p", e / e.sum(), softmax), "p")
    square = np.exp(_x((3, 3)))
    expected = square / square.sum(axis=1, keepdims=True)
    assert "keepdims" in failing(check_values("p", square / square.sum(axis=1), expected), "p")
    y = _x((3, 2))
    assert "bias" in failing(check_values("y", y - [0.5, -0.5], y), "y")


def test_a_function_whose_gradient_is_zero_gets_function_words():
    W, b = _x((3, 2)), _x((2,), 1)
    penalty = lambda W, b: 0.1 * np.sum(W**2)  # noqa: E731
    text = failing(check_gradient(penalty, [W, b], [0.2 * W, 0.2 * b], ["W", "b"]), "db")
    assert "must be all zeros" in text and "forward" not in text
    with_bias = lambda W, b: 0.1 * (np.sum(W**2) + np.sum(b**2))  # noqa: E731
    text = failing(check_gradient(with_bias, [W, b], [0.2 * W, np.zeros(2)], ["W", "b"]), "db")
    assert "should not depend on it" in text


def test_a_network_blames_its_wrong_layer_or_else_the_chaining():
    class BadChild(Network):
        def __init__(self, sizes, seed=0):
            super().__init__(sizes, seed)
            self.layers[2] = TransposedDW(sizes[1], sizes[2], seed + 1)

    x = np.random.default_rng(3).standard_normal((4, 5))
    report = check_layer(BadChild((5, 5, 5)), x)
    assert "layers[2] (dW) fails check_layer on its own" in failing(report, "dlayers[2].W")

    class ForwardOrderBackward(Network):
        def backward(self, dout):
            for layer in self.layers:
                dout = layer.backward(dout)
            return dout

    report = check_layer(ForwardOrderBackward((5, 5, 5)), x)
    assert "the mistake is in how ForwardOrderBackward chains them" in failing(report, "dlayers[0].W")
    assert check_layer(Network((5, 5, 5)), x).passed


def test_check_values_rejects_an_unknown_kind_of_array():
    with pytest.raises(ValueError, match="gradient, value, update"):
        check_values("p", [1.0], [1.0], what="parameter")


def test_dx_computed_with_the_weight_gradient_is_named():
    class DxWithGrad(Linear):
        def backward(self, dout):
            super().backward(dout)
            return dout @ self.W.grad.T

    report = check_layer(DxWithGrad(5, 3), _x())
    assert "dx is computed with W.grad where the weight itself (W.data) belongs" in failing(report, "dx")
    assert report.items["dW"].passed


def test_a_test_that_checked_forward_first_blames_a_wrong_factor_on_backward_alone():
    """Notebook 01's backward cells check forward on known values first; the diagnosis then said 'dx is
    half of what it should be ... — or your forward is off by a factor 2', a bug that was not there
    (student review)."""
    from lablib import Module

    class HalfReLU(Module):
        def forward(self, x):
            self.x = x
            return np.maximum(x, 0)

        def backward(self, dout):
            return 0.5 * dout * (self.x > 0)

    x = np.random.default_rng(9).standard_normal((4, 5))
    either = " ".join(check_layer(HalfReLU(), x).to_text().split())  # the report wraps its lines
    assert "dx is half of what it should be" in either and "or your forward is off by a factor 2" in either
    alone = " ".join(check_layer(HalfReLU(), x, forward_checked=True).to_text().split())
    assert "dx is half of what it should be" in alone and "your forward is off" not in alone
