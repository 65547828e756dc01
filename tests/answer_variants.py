"""Variants of the solutions that several test modules grade: known mistakes, each with the graded
cells it must fail (test_notebook_grading, test_nb05_grading and test_nb06_grading prove each row;
test_grading and test_formgrader_browser grade some of them end to end), and correct answers
written in other styles, which must keep full marks.

A mistake is a row (answer cell, text in the solution, wrong replacement, graded cells that must
fail); `grading_helpers.mutate` and `grading_helpers.answers` make it. A helper module, not a test
module: tests import it by name, as they import conftest.
"""

from __future__ import annotations

# Notebook 01 (Layers)
LAYER_MISTAKES = {
    "linear: averages dW over the batch": (
        "linear", "self.W.grad = self.x.T @ dout", "self.W.grad = self.x.T @ dout / len(dout)", {"test_linear_dW"}),
    "linear: accumulates dW": (
        "linear", "self.W.grad = self.x.T @ dout", "self.W.grad += self.x.T @ dout", {"test_linear_dW"}),
    "linear: db is a mean": (
        "linear", "self.b.grad = dout.sum(axis=0)", "self.b.grad = dout.mean(axis=0)", {"test_linear_db"}),
    "linear: db summed over the wrong axis": (
        "linear", "self.b.grad = dout.sum(axis=0)", "self.b.grad = dout.sum(axis=1)", {"test_linear_db"}),
    "linear: dx negated": (
        "linear", "return dout @ self.W.data.T", "return -(dout @ self.W.data.T)", {"test_linear_dx"}),
    "linear: dx without the transpose": (
        "linear", "return dout @ self.W.data.T", "return dout @ self.W.data", {"test_linear_dx"}),
    "linear: forward without the bias (db then disagrees with it)": (
        "linear", "return x @ self.W.data + self.b.data", "return x @ self.W.data",
        {"test_linear_forward", "test_linear_db"}),
    "linear: ignores needs_input_grad (always computes dx)": (
        "linear", "        if not self.needs_input_grad:\n            return None\n", "", {"test_linear_skip_dx"}),
    "linear: skips dx but then sets no gradients either": (
        "linear", "        self.W.grad = self.x.T @ dout\n        self.b.grad = dout.sum(axis=0)\n"
        "        if not self.needs_input_grad:\n            return None\n",
        "        if not self.needs_input_grad:\n            return None\n"
        "        self.W.grad = self.x.T @ dout\n        self.b.grad = dout.sum(axis=0)\n", {"test_linear_skip_dx"}),
    "linear: computes dx, then returns None": (
        "linear", "        if not self.needs_input_grad:\n            return None\n        return dout @ self.W.data.T\n",
        "        dx = dout @ self.W.data.T\n        return dx if self.needs_input_grad else None\n",
        {"test_linear_skip_dx"}),
    "linear: dx first and without the transpose (the skip itself is right)": (
        "linear", "        self.W.grad = self.x.T @ dout\n        self.b.grad = dout.sum(axis=0)\n"
        "        if not self.needs_input_grad:\n            return None\n        return dout @ self.W.data.T\n",
        "        dx = dout @ self.W.data if self.needs_input_grad else None\n"
        "        self.W.grad = self.x.T @ dout\n        self.b.grad = dout.sum(axis=0)\n        return dx\n",
        {"test_linear_dx", "test_linear_dW", "test_linear_db"}),
    "relu: forward clips its input in place": (
        "relu", "return np.maximum(x, 0)", "x[x < 0] = 0\n        return x", {"test_relu_forward"}),
    "relu: backward ignores dout": (
        "relu", "return dout * self.positive", "return self.positive * 1.0", {"test_relu_backward"}),
    "relu: backward changes dout in place": (
        "relu", "return dout * self.positive", "dout[~self.positive] = 0\n        return dout", {"test_relu_backward"}),
    "sigmoid: unstable exp(x) / (1 + exp(x))": (
        "sigmoid", "z = np.exp(-np.abs(x))  # at most 1: never overflows\n"
        "        self.out = np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))",
        "self.out = np.exp(x) / (1.0 + np.exp(x))", {"test_sigmoid_forward", "test_sigmoid_backward"}),
    "sigmoid: derivative missing (1 - s)": (
        "sigmoid", "return dout * self.out * (1.0 - self.out)", "return dout * self.out", {"test_sigmoid_backward"}),
    "tanh: the exp quotient (only the hidden large-input tests see it)": (
        "tanh", "self.out = np.tanh(x)", "self.out = (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))",
        {"test_tanh_forward", "test_tanh_backward"}),
    "tanh: derivative 1 - tanh instead of 1 - tanh^2": (
        "tanh", "return dout * (1.0 - self.out ** 2)", "return dout * (1.0 - self.out)", {"test_tanh_backward"}),
    "gelu: backward without the product-rule term": (
        "gelu", "return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t ** 2) * du_dx)",
        "return dout * (0.5 * (1.0 + t))", {"test_gelu_backward"}),
    "gelu: du/dx without the factor 3": (
        "gelu", "du_dx = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x ** 2)",
        "du_dx = SQRT_2_OVER_PI * (1.0 + GELU_CUBIC * x ** 2)", {"test_gelu_backward"}),
    "gelu: forward without the 1/2 (a forward-only mistake: backward is held to known derivatives)": (
        "gelu", "return 0.5 * x * (1.0 + self.tanh_u)", "return x * (1.0 + self.tanh_u)",
        {"test_gelu_forward"}),
}


# Notebook 02 (Losses)
LOSS_MISTAKES = {
    "softmax: no max subtraction": (
        "softmax", "shifted = scores - scores.max(axis=1, keepdims=True)", "shifted = scores",
        {"test_softmax_stable"}),
    "softmax: normalised over the whole batch": (
        "softmax", "return exp / exp.sum(axis=1, keepdims=True)", "return exp / exp.sum()",
        {"test_softmax_values", "test_softmax_stable"}),
    "cross-entropy: log of softmax underflows (only hidden tests see it)": (
        "cross_entropy", "log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))",
        "log_probs = np.log(np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True))",
        {"test_cross_entropy_forward"}),
    "cross-entropy: gradient without 1/N": (
        "cross_entropy", "return dscores / n", "return dscores", {"test_cross_entropy_backward"}),
    "cross-entropy: sum instead of mean (backward then disagrees with it)": (
        "cross_entropy", "return float(-log_probs[np.arange(len(y)), y].mean())",
        "return float(-log_probs[np.arange(len(y)), y].sum())",
        {"test_cross_entropy_forward", "test_cross_entropy_backward"}),
    "euclidean: gradient without 1/N": (
        "euclidean", "return self.diff / len(self.diff)", "return self.diff", {"test_euclidean_backward"}),
    "euclidean: forward without the 1/2 (backward then disagrees with it)": (
        "euclidean", "return float(0.5 * np.sum(self.diff ** 2) / len(y))",
        "return float(np.sum(self.diff ** 2) / len(y))", {"test_euclidean_forward", "test_euclidean_backward"}),
    "hinge: margin hard-coded to 1": (
        "hinge", "+ self.margin", "+ 1.0", {"test_hinge_forward"}),
    "hinge: true-class term missing in backward": (
        "hinge", "dscores[np.arange(n), self.y] = -dscores.sum(axis=1)", "dscores[np.arange(n), self.y] = 0.0",
        {"test_hinge_backward"}),
    "hinge: forward counts the true class too": (
        "hinge", "margins[rows, y] = 0.0", "pass", {"test_hinge_forward", "test_hinge_backward"}),
    "l2: gradient lambda W instead of 2 lambda W": (
        "l2", "return [2.0 * lam * p.data if", "return [lam * p.data if", {"test_l2_grads"}),
    "l2: biases get a gradient": (
        "l2", "else np.zeros_like(p.data) for p in params]", "else 2.0 * lam * p.data for p in params]",
        {"test_l2_grads"}),
    "l2: biases penalised too (grads then disagree with it)": (
        "l2", "for p in params if p.data.ndim >= 2))", "for p in params))", {"test_l2_penalty", "test_l2_grads"}),
}


# Notebook 04 (Training)
TRAINING_MISTAKES = {
    "sequential: backward in forward order": (
        "sequential", "for layer in reversed(self.layers):\n            dout", "for layer in self.layers:\n            dout",
        {"test_sequential_backward"}),
    "sequential: forward in reverse order (backward then disagrees with it)": (
        "sequential", "for layer in self.layers:\n            x = layer(x)", "for layer in reversed(self.layers):\n            x = layer(x)",
        {"test_sequential_forward", "test_sequential_backward"}),
    "sgd: learning rate folded into the velocity": (
        "sgd", "v += g\n            p.data -= self.lr * v", "v += self.lr * g\n            p.data -= v",
        {"test_sgd_momentum"}),
    "sgd: velocity never decays (plain SGD then accumulates too)": (
        "sgd", "            v *= self.momentum\n", "", {"test_sgd_plain", "test_sgd_momentum", "test_sgd_weight_decay"}),
    "sgd: biases decayed too": (
        "sgd", "if self.weight_decay and p.data.ndim >= 2:", "if self.weight_decay:", {"test_sgd_weight_decay"}),
    "sgd: weight decay outside the momentum": (
        "sgd", "g = g + self.weight_decay * p.data", "p.data -= self.lr * self.weight_decay * p.data",
        {"test_sgd_weight_decay"}),
    "sgd: a parameter without gradient crashes the step": (
        "sgd", "            if p.grad is None:\n                continue\n", "", {"test_sgd_plain", "test_sgd_momentum"}),
    "train_step: returns the loss after the update": (
        "train_step", "optimizer.step()\n    return loss", "optimizer.step()\n    return loss_fn.forward(model(xb), yb)",
        {"test_train_step"}),
    "train_step: two optimizer steps": (
        "train_step", "optimizer.step()\n    return loss", "optimizer.step()\n    optimizer.step()\n    return loss",
        {"test_train_step"}),
    "evaluate: unweighted mean of the batch losses": (
        "train_step", "total_loss += loss_fn.forward(scores, yb) * len(yb)", "total_loss += loss_fn.forward(scores, yb) * batch_size",
        {"test_evaluate"}),
    "split: not shuffled": (
        "split", "order = rng.permutation(len(x))", "order = np.arange(len(x))", {"test_split"}),
    "split: validation size rounded down": (
        "split", "n_val = int(round(len(x) * val_fraction))", "n_val = int(len(x) * val_fraction)", {"test_split"}),
    "checkpoint: keeps references, not copies": (
        "checkpoint", "self.saved = [p.data.copy() for p in model.parameters()]",
        "self.saved = [p.data for p in model.parameters()]", {"test_checkpoint"}),
    "checkpoint: a tie replaces the earlier epoch": (
        "checkpoint", "if val_acc <= self.best_acc:", "if val_acc < self.best_acc:", {"test_checkpoint"}),
    "load_model: parameters converted to float64": (
        "save_load", 'p.data = saved[f"layer{i}.{name}"].copy()', 'p.data = saved[f"layer{i}.{name}"].astype(np.float64)',
        {"test_save_load_roundtrip"}),
    "save_model: architecture not stored, every layer assumed to have parameters": (
        "save_load", "            if not names:\n                rebuilt.append(cls())\n                continue\n", "",
        {"test_save_load_architecture"}),
}


# Notebook 05 (Tuning)
TUNING_MISTAKES = {
    "step decay: a smooth exponent (epoch / step_size)": (
        "schedules", "float(lr0 * gamma ** (epoch // step_size))", "float(lr0 * gamma ** (epoch / step_size))", {"test_step_decay"}),
    "step decay: decays one epoch early": (
        "schedules", "float(lr0 * gamma ** (epoch // step_size))", "float(lr0 * gamma ** ((epoch + 1) // step_size))", {"test_step_decay"}),
    "exponential: no floor": (
        "schedules", "max(lr0 * gamma ** epoch, floor)", "lr0 * gamma ** epoch", {"test_exponential_floor"}),
    "exponential: floor added instead of a lower bound (shifts every value)": (
        "schedules", "max(lr0 * gamma ** epoch, floor)", "lr0 * gamma ** epoch + floor",
        {"test_exponential_decay", "test_exponential_floor"}),
    "exponential: min instead of max (always the floor)": (
        "schedules", "max(lr0 * gamma ** epoch, floor)", "min(lr0 * gamma ** epoch, floor)",
        {"test_exponential_decay", "test_exponential_floor"}),
    "cosine: without the 1/2": (
        "schedules", "lr_min + 0.5 * (lr0 - lr_min)", "lr_min + (lr0 - lr_min)", {"test_cosine_annealing"}),
    "cosine: lr_min ignored (only the hidden tests set it)": (
        "schedules", "lr_min + 0.5 * (lr0 - lr_min)", "0.5 * lr0", {"test_cosine_annealing"}),
    "cosine: warm-up starts at 0 (epoch / w)": (
        "schedules", "lr0 * (epoch + 1) / warmup_epochs", "lr0 * epoch / warmup_epochs", {"test_cosine_warmup"}),
    "cosine: the cosine is not shifted by the warm-up": (
        "schedules", "(epoch - warmup_epochs) / (total_epochs - warmup_epochs)", "epoch / total_epochs",
        {"test_cosine_warmup"}),
    "grid_search: chooses the lowest validation accuracy": (
        "grid_search", "val_acc > runs[best][0]", "val_acc < runs[best][0]", {"test_grid_search_selection"}),
    "grid_search: a tie keeps the later run": (
        "grid_search", "val_acc > runs[best][0]", "val_acc >= runs[best][0]", {"test_grid_search_selection"}),
    "grid_search: NaN can win (no finiteness check)": (
        "grid_search", "if math.isfinite(val_acc) and (best is None or val_acc > runs[best][0]):",
        "if best is None or val_acc > runs[best][0]:", {"test_grid_search_nan_runs"}),
    "grid_search: returns the validation accuracy as the test accuracy": (
        "grid_search", "return configs[best], val_acc, test_acc", "return configs[best], val_acc, val_acc",
        {"test_grid_search_tests_once"}),
    "grid_search: tests every model, then chooses on validation": (
        "grid_search", "runs = train(configs)\n",
        "runs = train(configs)\n    peeked = [test_set.evaluate(evaluate, m, l) for _, m, l in runs if m is not None]\n",
        {"test_grid_search_selection", "test_grid_search_tests_once", "test_grid_search_nan_runs"}),
    "grid_search: looks at the test set before training": (
        "grid_search", "runs = train(configs)\n",
        "first = test_set.evaluate(evaluate, FakeModel('a', 0.0), None)\n    runs = train(configs)\n",
        {"test_grid_search_selection", "test_grid_search_tests_once", "test_grid_search_nan_runs"}),
    "grid_search: no error when every run failed": (
        "grid_search", '        raise ValueError(f"all {len(runs)} runs failed or diverged: there is nothing to choose")\n',
        "        pass\n", {"test_grid_search_nan_runs"}),
}


# Notebook 06 (Weights): its graded cells
VALUES, BLANK = "test_normalize_values", "test_normalize_blank"
COMPONENTS, PROJECTION, VARIANCE = "test_pca_components", "test_pca_projection", "test_pca_variance"

WEIGHTS_MISTAKES = {
    "normalize: one global maximum for all images": (
        "normalize", "largest = np.abs(images).reshape(len(images), -1).max(axis=1)",
        "largest = np.full(len(images), np.abs(images).max())", {VALUES}),
    "normalize: largest value instead of largest magnitude": (
        "normalize", "largest = np.abs(images).reshape(len(images), -1).max(axis=1)",
        "largest = images.reshape(len(images), -1).max(axis=1)", {VALUES}),
    "normalize: no guard for an all-zero image (0 / 0 = nan)": (
        "normalize", "    largest = np.where(largest > 0, largest, 1.0)\n", "", {BLANK}),
    "normalize: divides the caller's array in place": (
        "normalize", "return images / largest.reshape((-1,) + (1,) * (images.ndim - 1))",
        "images /= largest.reshape((-1,) + (1,) * (images.ndim - 1))\n    return images", {BLANK}),
    "normalize: min-max scaling to [0, 1] (zero no longer at zero)": (
        "normalize", "return images / largest.reshape((-1,) + (1,) * (images.ndim - 1))",
        "flat = images.reshape(len(images), -1)\n    low = flat.min(axis=1, keepdims=True)\n"
        "    return ((flat - low) / (flat.max(axis=1, keepdims=True) - low)).reshape(images.shape)", {VALUES, BLANK}),
    "pca: not centred (components, projection and ratios all follow the mean)": (
        "pca", "centered = X - X.mean(axis=0)", "centered = X", {COMPONENTS, PROJECTION, VARIANCE}),
    "pca: centred per sample instead of per feature": (
        "pca", "centered = X - X.mean(axis=0)", "centered = X - X.mean(axis=1, keepdims=True)",
        {COMPONENTS, PROJECTION, VARIANCE}),
    "pca: components are the columns of Vt (V's rows)": (
        "pca", "components = vt[:k]", "components = vt.T[:k]", {COMPONENTS, PROJECTION, VARIANCE}),  # crashes when D > N
    "pca: projects the data without centring it": (
        "pca", "centered @ components.T", "X @ components.T", {PROJECTION}),
    "pca: ratio from the singular values, not their squares": (
        "pca", "variances = singular_values ** 2", "variances = singular_values", {VARIANCE}),
    "pca: ratio of the kept components only (they always add up to 1)": (
        "pca", "variances[:k] / variances.sum()", "variances[:k] / variances[:k].sum()", {VARIANCE}),
}


# Correct answers written differently from the reference: each must pass every graded cell.
LAYER_ALTERNATIVES = {
    "linear, einsum and a cached transpose": ("linear", '''
class Linear(Module):
    def __init__(self, in_features, out_features, rng=None):
        rng = np.random.default_rng() if rng is None else rng
        self.W = Parameter(rng.standard_normal((in_features, out_features)) * math.sqrt(2.0 / in_features))
        self.b = Parameter(np.zeros(out_features))

    def forward(self, x):
        self.x_t = np.transpose(x)
        return np.einsum("nd,dm->nm", x, self.W.data) + self.b.data[np.newaxis, :]

    def backward(self, dout):
        self.W.grad = np.einsum("dn,nm->dm", self.x_t, dout)
        self.b.grad = np.einsum("nm->m", dout)
        if self.needs_input_grad:
            return np.einsum("nm,dm->nd", dout, self.W.data)
'''),
    "relu, np.where and the x >= 0 convention": ("relu", '''
class ReLU(Module):
    def forward(self, x):
        self.x = x.copy()
        return np.where(x >= 0, x, 0.0).astype(x.dtype)

    def backward(self, dout):
        return np.where(self.x >= 0, dout, 0.0)
'''),
    "sigmoid via tanh": ("sigmoid", '''
class Sigmoid(Module):
    def forward(self, x):
        self.s = 0.5 * (1.0 + np.tanh(0.5 * x))
        return self.s

    def backward(self, dout):
        return dout * self.s - dout * self.s ** 2
'''),
    "sigmoid, naive formula, correct values with overflow warnings": ("sigmoid", '''
class Sigmoid(Module):
    def forward(self, x):
        self.x = x
        return 1.0 / (1.0 + np.exp(-x))

    def backward(self, dout):
        s = 1.0 / (1.0 + np.exp(-self.x))
        return dout * s * (1.0 - s)
'''),
    "tanh via a stable sigmoid, derivative from the input": ("tanh", '''
class Tanh(Module):
    def forward(self, x):
        self.x = x
        z = np.exp(-2.0 * np.abs(x))
        return np.sign(x) * (1.0 - z) / (1.0 + z)

    def backward(self, dout):
        return dout / np.cosh(np.clip(self.x, -350, 350)) ** 2
'''),
    "gelu through the sigmoid identity": ("gelu", '''
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715


class GELU(Module):
    def forward(self, x):
        self.x = x
        u = SQRT_2_OVER_PI * (x + GELU_CUBIC * x ** 3)
        self.p = 0.5 * (1.0 + np.tanh(u))   # = sigmoid(2u)
        return x * self.p

    def backward(self, dout):
        x, p = self.x, self.p
        du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x * x)
        return dout * (p + x * 2.0 * p * (1.0 - p) * du)
'''),
}

LOSS_ALTERNATIVES = {
    "softmax with a log-sum-exp": ("softmax", '''
def softmax(scores):
    m = np.max(scores, axis=-1, keepdims=True)
    return np.exp(scores - m - np.log(np.sum(np.exp(scores - m), axis=-1, keepdims=True)))
'''),
    "cross-entropy with a one-hot matrix and the notebook's softmax": ("cross_entropy", '''
class SoftmaxCrossEntropy(Module):
    def forward(self, scores, y):
        m = scores.max(axis=1, keepdims=True)
        lse = m[:, 0] + np.log(np.exp(scores - m).sum(axis=1))
        self.onehot = np.eye(scores.shape[1])[y]
        self.p = softmax(scores)
        return float(np.sum(lse - np.sum(self.onehot * scores, axis=1)) / scores.shape[0])

    def backward(self):
        return (self.p - self.onehot) / self.p.shape[0]
'''),
    "euclidean with loops over the batch": ("euclidean", '''
class EuclideanLoss(Module):
    def forward(self, scores, y):
        self.grad = np.array(scores, dtype=float)
        total = 0.0
        for i, label in enumerate(y):
            self.grad[i, label] -= 1.0
            total += 0.5 * float(self.grad[i] @ self.grad[i])
        self.grad /= len(y)
        return total / len(y)

    def backward(self):
        return self.grad.copy()
'''),
    "hinge that counts ties as active": ("hinge", '''
class MulticlassHinge(Module):
    def __init__(self, margin=1.0):
        self.margin = margin

    def forward(self, scores, y):
        n = scores.shape[0]
        correct = scores[np.arange(n), y].reshape(-1, 1)
        m = scores - correct + self.margin
        mask = (m >= 0)
        mask[np.arange(n), y] = False
        self.mask, self.y = mask, y
        return float(np.sum(np.where(mask, m, 0.0)) / n)

    def backward(self):
        n = len(self.y)
        d = self.mask / n
        d[np.arange(n), self.y] -= self.mask.sum(axis=1) / n
        return d
'''),
    "l2 with isinstance-free loops": ("l2", '''
def l2_penalty(params, lam):
    total = 0.0
    for p in params:
        if len(p.data.shape) > 1:
            total += float(np.vdot(p.data, p.data))
    return lam * total


def l2_penalty_grads(params, lam):
    grads = []
    for p in params:
        grads.append(2 * lam * p.data if len(p.data.shape) > 1 else 0 * p.data)
    return grads
'''),
}


TRAINING_ALTERNATIVES = {
    "sequential with functools.reduce": ("sequential", '''
import functools


class Sequential(Module):
    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        return functools.reduce(lambda h, layer: layer.forward(h), self.layers, x)

    def backward(self, dout):
        return functools.reduce(lambda g, layer: layer.backward(g), self.layers[::-1], dout)
'''),
    "sgd with a velocity dict and new arrays": ("sgd", '''
class SGD:
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.params, self.lr, self.momentum, self.weight_decay = list(params), lr, momentum, weight_decay
        self.v = {}

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is not None:
                decay = self.weight_decay * p.data if p.data.ndim > 1 else 0.0
                self.v[i] = self.momentum * self.v.get(i, 0.0) + (p.grad + decay)
                p.data = p.data - self.lr * self.v[i]
'''),
    "train_step with zero_grad; evaluate on all predictions at once": ("train_step", '''
def train_step(model, loss_fn, optimizer, xb, yb):
    optimizer.zero_grad()
    loss = loss_fn.forward(model.forward(xb), yb)
    model.backward(loss_fn.backward())
    optimizer.step()
    return float(loss)


def evaluate(model, loss_fn, x, y, batch_size=2000):
    losses, predictions = [], []
    for s in range(0, len(x), batch_size):
        scores = model(x[s:s + batch_size])
        losses.append(loss_fn.forward(scores, y[s:s + batch_size]) * len(scores))
        predictions.append(scores.argmax(axis=1))
    return sum(losses) / len(y), float(np.mean(np.concatenate(predictions) == y))
'''),
    "split with rng.choice and a boolean mask": ("split", '''
def train_val_split(x, y, val_fraction, rng):
    n_val = round(len(x) * val_fraction)
    in_val = np.zeros(len(x), dtype=bool)
    in_val[rng.choice(len(x), size=n_val, replace=False)] = True
    return x[~in_val], y[~in_val], x[in_val], y[in_val]
'''),
    "checkpoint with copy.deepcopy of the parameters": ("checkpoint", '''
import copy


class BestCheckpoint:
    def __init__(self):
        self.best_acc, self.best_epoch, self.params = float("-inf"), None, None

    def update(self, model, val_acc, epoch):
        if self.params is None or val_acc > self.best_acc:
            self.best_acc, self.best_epoch, self.params = val_acc, epoch, copy.deepcopy(model.parameters())
            return True
        return False

    def restore(self, model):
        for p, kept in zip(model.parameters(), self.params):
            p.data = kept.data.copy()
'''),
    "save/load with a layer count and numbered keys": ("save_load", '''
LAYER_TYPES = {name: getattr(layers, name) for name in ("Linear", "ReLU", "Sigmoid", "Tanh", "GELU") if hasattr(layers, name)}


def save_model(model, path):
    out = {"n_layers": np.array(len(model.layers))}
    for i, layer in enumerate(model.layers):
        out[f"type_{i}"] = np.array(type(layer).__name__)
        for j, p in enumerate(layer.parameters()):
            out[f"param_{i}_{j}"] = p.data
    with open(path, "wb") as f:
        np.savez_compressed(f, **out)


def load_model(path):
    f = np.load(path)
    result = []
    for i in range(int(f["n_layers"])):
        keys = sorted(k for k in f.files if k.startswith(f"param_{i}_"))
        cls = LAYER_TYPES[str(f[f"type_{i}"])]
        layer = cls(*f[keys[0]].shape) if keys else cls()
        for p, k in zip(layer.parameters(), keys):
            p.data = np.array(f[k])
        result.append(layer)
    return Sequential(*result)
'''),
}
