"""The mutation table: plausible wrong answers, and the words the student must read for each.

Every row is one mistake in one answer cell of a notebook. It must lose points, and the failure
message of the named graded cell must contain the row's words (case-insensitive): that is what
"named correctly" means. The share of rows named correctly must stay at or above NAMED_TARGET;
`test_share_named_correctly` prints it with the rows still unnamed:

    bash scripts/test.sh tests/test_mutation_table.py -k share -s

A row may also list arrays that are right (`right`) with the word that names the real culprit
(`culprit`): any diagnosis sentence about such an array must mention the culprit ("forward"), so
that no mistake is blamed on an array that is right. Correct answers in other styles must get no
diagnosis at all (they pass every graded cell).

One dict per notebook, one row per mistake: notebooks 03, 05 and 06 add theirs as they are written.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import numpy as np
import pytest

from answer_variants import LAYER_ALTERNATIVES, LOSS_ALTERNATIVES, TRAINING_ALTERNATIVES
from grading_helpers import ANSWERS, NEEDED, answer_source
from conftest import NOTEBOOKS, graded_cell_ids, load_notebook
from lablib import cells

#: At least this share of the table's mistakes must be named correctly.
NAMED_TARGET = 0.90
#: The rows whose diagnosis does not name the mistake yet (a row that loses its words fails the test).
KNOWN_UNNAMED = {
    "01_layers: gelu: forward without the cubic term",
    "01_layers: relu: leaky slope in forward only",
    "01_layers: sigmoid: forward is sigmoid(-x)",
    "02_losses: cross-entropy: softmax over the batch axis (its backward)",
}


@dataclass(frozen=True)
class Mistake:
    """edits: (text in the answer cell's solution, replacement) pairs, each text occurring once.
    expect: {graded cell: words its failure message must contain}. right: arrays that are right;
    a diagnosis sentence about one of them must mention `culprit`."""

    cell: str
    edits: tuple[tuple[str, str], ...]
    expect: dict[str, tuple[str, ...]]
    right: tuple[str, ...] = ()
    culprit: str = "forward"
    notes: str = ""


def M(cell: str, old: str, new: str, where: str, *words: str, **extra) -> Mistake:
    """One edit, one graded cell that must name it."""
    return Mistake(cell, ((old, new),), {where: words}, **extra)


LIN_DW, LIN_DB, LIN_DX = "self.W.grad = self.x.T @ dout", "self.b.grad = dout.sum(axis=0)", "return dout @ self.W.data.T"
LIN_FWD = "return x @ self.W.data + self.b.data"
SIG_FWD = ("z = np.exp(-np.abs(x))  # at most 1: never overflows\n"
           "        self.out = np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))")
SIG_BWD = "return dout * self.out * (1.0 - self.out)"
TANH_BWD = "return dout * (1.0 - self.out ** 2)"
GELU_BWD = "return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t ** 2) * du_dx)"

LAYERS = {
    # Linear
    "linear: dW averaged over the batch": M("linear", LIN_DW, LIN_DW + " / len(dout)", "test_linear_dW", "too small"),
    "linear: dW accumulated with +=": M("linear", LIN_DW, "self.W.grad += self.x.T @ dout", "test_linear_dW", "+="),
    "linear: dW from a loop that overwrites": M(
        "linear", LIN_DW, "for i in range(len(dout)):\n            self.W.grad = np.outer(self.x[i], dout[i])",
        "test_linear_dW", "gradient of sample"),
    "linear: dW of the first sample only": M(
        "linear", LIN_DW, "self.W.grad = np.outer(self.x[0], dout[0])", "test_linear_dW", "sample 0 alone"),
    "linear: dW with the factors swapped": M("linear", LIN_DW, "self.W.grad = dout.T @ self.x", "test_linear_dW", "transpose"),
    "linear: dW times the batch size": M("linear", LIN_DW, LIN_DW + " * len(dout)", "test_linear_dW", "too large"),
    "linear: db is a mean": M("linear", LIN_DB, "self.b.grad = dout.mean(axis=0)", "test_linear_db", "too small"),
    "linear: db summed over the wrong axis": M("linear", LIN_DB, "self.b.grad = dout.sum(axis=1)", "test_linear_db", "wrong axis"),
    "linear: db of the first sample only": M("linear", LIN_DB, "self.b.grad = dout[0].copy()", "test_linear_db", "sample 0 alone"),
    "linear: dx negated": M("linear", LIN_DX, "return -(dout @ self.W.data.T)", "test_linear_dx", "wrong sign"),
    "linear: dx without the transpose": M("linear", LIN_DX, "return dout @ self.W.data", "test_linear_dx", ".T"),
    "linear: dx is dout unchanged": M("linear", LIN_DX, "return dout", "test_linear_dx", "dout unchanged"),
    "linear: dx averaged over the batch": M("linear", LIN_DX, LIN_DX + " / len(dout)", "test_linear_dx", "too small"),
    "linear: forward without the bias": M(
        "linear", LIN_FWD, "return x @ self.W.data", "test_linear_forward", "bias", right=("db",)),
    "linear: forward uses W.T": M("linear", LIN_FWD, "return x @ self.W.data.T + self.b.data", "test_linear_dW",
                                  "forward raised", ".T", right=("dW", "dx")),
    "linear: forward returns float32": M(
        "linear", LIN_FWD, "return (x @ self.W.data + self.b.data).astype(np.float32)", "test_linear_forward", "float32"),
    "linear: ignores needs_input_grad": M(
        "linear", "        if not self.needs_input_grad:\n            return None\n", "", "test_linear_skip_dx", "needs_input_grad"),
    "linear: db summed over every axis": M("linear", LIN_DB, "self.b.grad = dout.sum()", "test_linear_db", "every axis"),
    "linear: dx computed with W.grad": M("linear", LIN_DX, "return dout @ self.W.grad.T", "test_linear_dx", "W.grad"),
    # ReLU
    "relu: forward clips its input in place": M(
        "relu", "return np.maximum(x, 0)", "x[x < 0] = 0\n        return x", "test_relu_forward", "changed its input"),
    "relu: forward returns float32": M(
        "relu", "return np.maximum(x, 0)", "return np.maximum(x, 0).astype(np.float32)", "test_relu_forward", "float32"),
    "relu: backward ignores dout": M(
        "relu", "return dout * self.positive", "return self.positive * 1.0", "test_relu_backward", "does not use dout"),
    "relu: backward changes dout in place": M(
        "relu", "return dout * self.positive", "dout[~self.positive] = 0\n        return dout", "test_relu_backward",
        "changed its argument dout"),
    "relu: mask taken from dout": M(
        "relu", "return dout * self.positive", "return dout * (dout > 0)", "test_relu_backward", "at dout"),
    "relu: mask from the output with >=": Mistake(
        "relu", (("self.positive = x > 0", "self.out = np.maximum(x, 0)"),
                 ("return dout * self.positive", "return dout * (self.out >= 0)")),
        {"test_relu_backward": ("dout unchanged",)}),
    "relu: backward returns dout": M("relu", "return dout * self.positive", "return dout", "test_relu_backward", "dout unchanged"),
    "relu: leaky slope in backward": M(
        "relu", "return dout * self.positive", "return np.where(self.positive, dout, 0.01 * dout)", "test_relu_backward",
        "slope 0.01"),
    "relu: leaky slope in forward only": M(
        "relu", "return np.maximum(x, 0)", "return np.maximum(x, 0.01 * x)", "test_relu_forward", "slope",
        right=("dx",), culprit="forward"),  # backward is right: held to known derivatives, it keeps its point
    "relu: mask inverted": M("relu", "return dout * self.positive", "return dout * ~self.positive", "test_relu_backward",
                             "inverted"),
    # Sigmoid
    "sigmoid: unstable exp(x) / (1 + exp(x))": M(
        "sigmoid", SIG_FWD, "self.out = np.exp(x) / (1.0 + np.exp(x))", "test_sigmoid_forward", "NaN", "overflow"),
    "sigmoid: derivative missing (1 - s)": M("sigmoid", SIG_BWD, "return dout * self.out", "test_sigmoid_backward", "(1 − y)"),
    "sigmoid: derivative missing s": M("sigmoid", SIG_BWD, "return dout * (1.0 - self.out)", "test_sigmoid_backward",
                                       "factor y"),
    "sigmoid: derivative from the input": Mistake(
        "sigmoid", ((SIG_FWD, "self.x = x\n        " + SIG_FWD), (SIG_BWD, "return dout * self.x * (1.0 - self.x)")),
        {"test_sigmoid_backward": ("formula meant for the output",)}),
    "sigmoid: tanh's derivative": M("sigmoid", SIG_BWD, "return dout * (1.0 - self.out ** 2)", "test_sigmoid_backward",
                                    "tanh's derivative"),
    "sigmoid: derivative evaluated at the output": M(
        "sigmoid", SIG_BWD, "s = 1.0 / (1.0 + np.exp(-self.out))\n        return dout * s * (1.0 - s)",
        "test_sigmoid_backward", "at the output"),
    "sigmoid: derivative with the wrong sign": M(
        "sigmoid", SIG_BWD, "return dout * self.out * (self.out - 1.0)", "test_sigmoid_backward", "wrong sign"),
    "sigmoid: backward ignores dout": M(
        "sigmoid", SIG_BWD, "return self.out * (1.0 - self.out)", "test_sigmoid_backward", "does not use dout"),
    "sigmoid: forward is sigmoid(-x)": M(
        "sigmoid", "1.0 / (1.0 + z), z / (1.0 + z)", "z / (1.0 + z), 1.0 / (1.0 + z)", "test_sigmoid_forward", "-x",
        right=("dx",)),  # backward (from the cached output) is right for that output: it keeps its point
    # Tanh
    "tanh: the exp quotient overflows": M(
        "tanh", "self.out = np.tanh(x)", "self.out = (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))",
        "test_tanh_forward", "NaN"),
    "tanh: derivative 1 - tanh": M("tanh", TANH_BWD, "return dout * (1.0 - self.out)", "test_tanh_backward", "(1 + y)"),
    "tanh: derivative from the input": Mistake(
        "tanh", (("self.out = np.tanh(x)", "self.x = x\n        self.out = np.tanh(x)"),
                 (TANH_BWD, "return dout * (1.0 - self.x ** 2)")),
        {"test_tanh_backward": ("formula meant for the output",)}),
    "tanh: the sigmoid's derivative": M("tanh", TANH_BWD, "return dout * self.out * (1.0 - self.out)", "test_tanh_backward",
                                        "sigmoid's derivative"),
    "tanh: derivative evaluated at the output": M(
        "tanh", TANH_BWD, "return dout * (1.0 - np.tanh(self.out) ** 2)", "test_tanh_backward", "at the output"),
    "tanh: derivative tanh squared": M("tanh", TANH_BWD, "return dout * self.out ** 2", "test_tanh_backward", "inverted"),
    "tanh: backward ignores dout": M("tanh", TANH_BWD, "return 1.0 - self.out ** 2", "test_tanh_backward", "does not use dout"),
    "tanh: derivative doubled": M("tanh", TANH_BWD, "return 2.0 * dout * (1.0 - self.out ** 2)", "test_tanh_backward", "twice"),
    "tanh: derivative 1 + tanh squared": M(
        "tanh", TANH_BWD, "return dout * (1.0 + self.out ** 2)", "test_tanh_backward", "sign"),
    "tanh: derivative (1 - tanh) squared": M(
        "tanh", TANH_BWD, "return dout * (1.0 - self.out) ** 2", "test_tanh_backward", "factor (1 − y) where (1 + y) belongs"),
    "sigmoid: derivative with an extra s": M(
        "sigmoid", SIG_BWD, "return dout * self.out ** 2 * (1.0 - self.out)", "test_sigmoid_backward", "extra factor y"),
    # GELU
    "gelu: forward without the cubic term": M(
        "gelu", "self.tanh_u = np.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x ** 3))",
        "self.tanh_u = np.tanh(SQRT_2_OVER_PI * x)", "test_gelu_backward", "higher power of x", right=("dx",)),
    "gelu: backward without the product-rule term": M(
        "gelu", GELU_BWD, "return dout * (0.5 * (1.0 + t))", "test_gelu_backward", "product rule"),
    "gelu: backward with only the product-rule term": M(
        "gelu", GELU_BWD, "return dout * (0.5 * x * (1.0 - t ** 2) * du_dx)", "test_gelu_backward", "second term"),
    "gelu: du/dx without the factor 3": M(
        "gelu", "du_dx = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x ** 2)",
        "du_dx = SQRT_2_OVER_PI * (1.0 + GELU_CUBIC * x ** 2)", "test_gelu_backward", "higher power of x"),
    "gelu: backward ignores dout": M(
        "gelu", GELU_BWD, "return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t ** 2) * du_dx", "test_gelu_backward",
        "does not use dout"),
    # A forward that returns the wrong shape, with a backward that is right: only the forward cell fails
    # (the backward cells hold backward to the numeric gradient of the output mapped to the right shape,
    # or to known derivatives), and the forward cell names both shapes.
    "linear: forward squeezes its output (batch 1 gives shape (out,))": M(
        "linear", LIN_FWD, "return (x @ self.W.data + self.b.data).squeeze()", "test_linear_forward",
        "has shape (4,), expected (1, 4)", "np.squeeze", right=("dx", "dW", "db")),
    "relu: np.max(x, 0) where np.maximum(x, 0) belongs": M(
        "relu", "return np.maximum(x, 0)", "return np.max(x, 0)", "test_relu_forward", "has shape (5,), expected (1, 5)",
        "np.max", right=("dx",)),
    "sigmoid: forward flattens its output": M(
        "sigmoid", "        return self.out\n", "        return self.out.ravel()\n", "test_sigmoid_forward",
        "has shape (5,), expected (1, 5)", right=("dx",)),
    "tanh: forward flattens its output": M(
        "tanh", "        return self.out\n", "        return self.out.reshape(-1)\n", "test_tanh_forward",
        "has shape (5,), expected (1, 5)", right=("dx",)),
    "gelu: forward loops over x.flat (a flat output)": M(
        "gelu", "return 0.5 * x * (1.0 + self.tanh_u)",
        "return np.array([0.5 * v * (1.0 + t) for v, t in zip(x.flat, self.tanh_u.flat)])", "test_gelu_forward",
        "has shape (5,), expected (1, 5)", right=("dx",)),
    "gelu: forward without the 1/2": Mistake(
        "gelu", (("return 0.5 * x * (1.0 + self.tanh_u)", "return x * (1.0 + self.tanh_u)"),),
        {"test_gelu_forward": ("twice",)}, right=("dx",)),  # backward is right: it keeps its point
}

SOFTMAX = "return exp / exp.sum(axis=1, keepdims=True)"
CE_LOG = "log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))"
CE_MEAN = "return float(-log_probs[np.arange(len(y)), y].mean())"
EU_FWD = "return float(0.5 * np.sum(self.diff ** 2) / len(y))"
EU_BWD = "return self.diff / len(self.diff)"
HINGE_TRUE = "dscores[np.arange(n), self.y] = -dscores.sum(axis=1)"
L2_GRADS = "return [2.0 * lam * p.data if"

LOSSES = {
    "softmax: no max subtraction": M(
        "softmax", "shifted = scores - scores.max(axis=1, keepdims=True)", "shifted = scores", "test_softmax_stable", "overflow"),
    "softmax: normalised over the whole batch": M("softmax", SOFTMAX, "return exp / exp.sum()", "test_softmax_values",
                                                  "whole array"),
    "softmax: normalised over the batch axis": M(
        "softmax", SOFTMAX, "return exp / exp.sum(axis=0, keepdims=True)", "test_softmax_values", "wrong axis"),
    "softmax: row sums without keepdims": M("softmax", SOFTMAX, "return exp / exp.sum(axis=1)", "test_softmax_values",
                                            "keepdims"),
    "softmax: not normalised": M("softmax", SOFTMAX, "return exp", "test_softmax_values", "its own total"),
    "softmax: the maximum of the whole batch subtracted": M(
        "softmax", "shifted = scores - scores.max(axis=1, keepdims=True)", "shifted = scores - scores.max()",
        "test_softmax_stable", "0/0"),
    "cross-entropy: softmax over the batch axis (its backward)": M(
        "cross_entropy", CE_LOG, "log_probs = scores - np.log(np.exp(scores).sum(axis=0, keepdims=True))",
        "test_cross_entropy_backward", "axis"),
    "euclidean: the label used as the target": M(
        "euclidean", "self.diff = scores - target", "self.diff = scores - y[:, None]", "test_euclidean_forward", "one-hot"),
    "hinge: averaged over every entry": M(
        "hinge", "return float(np.maximum(margins, 0.0).sum() / len(y))", "return float(np.maximum(margins, 0.0).mean())",
        "test_hinge_forward", "every entry", right=("dscores",)),
    "cross-entropy: log of softmax underflows": M(
        "cross_entropy", CE_LOG, "log_probs = np.log(np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True))",
        "test_cross_entropy_forward", "log-softmax"),
    "cross-entropy: log(p + 1e-15) caps the loss": M(
        "cross_entropy", CE_LOG,
        "log_probs = np.log(np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True) + 1e-15)",
        "test_cross_entropy_forward", "p + 1e-15", "log-softmax"),
    "cross-entropy: forward returns the per-sample losses (the mean left out)": M(
        "cross_entropy", CE_MEAN, "return -log_probs[np.arange(len(y)), y]", "test_cross_entropy_forward",
        "has shape (3,), expected ()", "mean over the batch", right=("dscores",)),
    "cross-entropy: gradient without 1/N": M(
        "cross_entropy", "return dscores / n", "return dscores", "test_cross_entropy_backward", "N = 4 times too large"),
    "cross-entropy: gradient negated": M(
        "cross_entropy", "return dscores / n", "return -dscores / n", "test_cross_entropy_backward", "wrong sign"),
    "cross-entropy: true-class term missing in backward": M(
        "cross_entropy", "dscores[np.arange(n), self.y] -= 1.0", "pass", "test_cross_entropy_backward", "true-class"),
    "cross-entropy: sum instead of mean": Mistake(
        "cross_entropy", ((CE_MEAN, "return float(-log_probs[np.arange(len(y)), y].sum())"),),
        {"test_cross_entropy_forward": ("N = 3 times too large",), "test_cross_entropy_backward": ("forward",)},
        right=("dscores",)),
    "cross-entropy: softmax over the batch axis": M(
        "cross_entropy", CE_LOG,
        "log_probs = scores - np.log(np.exp(scores).sum(axis=0, keepdims=True))",
        "test_cross_entropy_forward", "axis=0"),
    "cross-entropy: averaged over every entry": M(
        "cross_entropy", CE_MEAN, "return float(-np.mean(np.eye(scores.shape[1])[y] * log_probs))",
        "test_cross_entropy_backward", "every entry", right=("dscores",)),
    "euclidean: gradient without 1/N": M("euclidean", EU_BWD, "return self.diff", "test_euclidean_backward",
                                         "N = 4 times too large"),
    "euclidean: forward without the 1/2": Mistake(
        "euclidean", ((EU_FWD, "return float(np.sum(self.diff ** 2) / len(y))"),),
        {"test_euclidean_forward": ("twice",), "test_euclidean_backward": ("forward",)}, right=("dscores",)),
    "euclidean: forward averaged over every entry": Mistake(
        "euclidean", ((EU_FWD, "return float(0.5 * np.mean(self.diff ** 2))"),),
        {"test_euclidean_forward": ("every entry",), "test_euclidean_backward": ("every entry",)}, right=("dscores",)),
    "euclidean: gradient divided by every entry": M(
        "euclidean", EU_BWD, "return self.diff / self.diff.size", "test_euclidean_backward", "N·C"),
    "euclidean: gradient doubled": M("euclidean", EU_BWD, "return 2.0 * self.diff / len(self.diff)",
                                     "test_euclidean_backward", "twice"),
    "euclidean: gradient negated": M("euclidean", EU_BWD, "return -self.diff / len(self.diff)", "test_euclidean_backward",
                                     "wrong sign"),
    "hinge: margin hard-coded to 1": M("hinge", "+ self.margin", "+ 1.0", "test_hinge_forward", "margin is ignored"),
    "hinge: margin left out": M("hinge", "+ self.margin", "", "test_hinge_forward", "margin is left out"),
    "hinge: true-class term missing in backward": M(
        "hinge", HINGE_TRUE, "dscores[np.arange(n), self.y] = 0.0", "test_hinge_backward", "true-class"),
    "hinge: true-class term with the wrong sign": M(
        "hinge", HINGE_TRUE, "dscores[np.arange(n), self.y] = dscores.sum(axis=1)", "test_hinge_backward", "true-class"),
    "hinge: forward counts the true class too": M(
        "hinge", "margins[rows, y] = 0.0", "pass", "test_hinge_forward", "true class is counted"),
    "hinge: gradient without 1/N": M("hinge", "return dscores / n", "return dscores", "test_hinge_backward",
                                     "N = 4 times too large"),
    "l2: gradient lambda W instead of 2 lambda W": M(
        "l2", L2_GRADS, "return [lam * p.data if", "test_l2_grads", "factor 2 is missing"),
    "l2: gradient with the wrong sign": M("l2", L2_GRADS, "return [-2.0 * lam * p.data if", "test_l2_grads", "wrong sign"),
    "l2: biases get a gradient": M(
        "l2", "else np.zeros_like(p.data) for p in params]", "else 2.0 * lam * p.data for p in params]",
        "test_l2_grads", "must be all zeros"),
    "l2: biases penalised too": Mistake(
        "l2", (("for p in params if p.data.ndim >= 2))", "for p in params))"),),
        {"test_l2_penalty": ("biases are penalised",), "test_l2_grads": ("should not depend",)},
        right=("db",), culprit="function"),
    "l2: penalty with lambda / 2": M(
        "l2", "return float(lam * sum(", "return float(0.5 * lam * sum(", "test_l2_penalty", "half"),
}

SGD_STEP = "p.data -= self.lr * v"
TRAINING = {
    "sequential: backward in forward order": M(
        "sequential", "for layer in reversed(self.layers):\n            dout", "for layer in self.layers:\n            dout",
        "test_sequential_backward", "chains them", "reverse order"),
    "sequential: forward in reverse order": M(
        "sequential", "for layer in self.layers:\n            x = layer(x)",
        "for layer in reversed(self.layers):\n            x = layer(x)", "test_sequential_forward", "reverse order"),
    "sgd: learning rate folded into the velocity": M(
        "sgd", "v += g\n            p.data -= self.lr * v", "v += self.lr * g\n            p.data -= v", "test_sgd_momentum",
        "folded into the velocity"),
    "sgd: velocity never decays": M("sgd", "            v *= self.momentum\n", "", "test_sgd_plain",
                                    "never multiplied by momentum"),
    "sgd: no momentum carried over": M(
        "sgd", "v *= self.momentum\n            v += g", "v[...] = g", "test_sgd_momentum", "does not carry over"),
    "sgd: gradient damped by (1 - momentum)": M(
        "sgd", "v *= self.momentum\n            v += g", "v *= self.momentum\n            v += (1 - self.momentum) * g",
        "test_sgd_momentum", "(1 − momentum)"),
    "train_step: no backward pass": M("train_step", "    model.backward(loss_fn.backward())\n", "", "test_train_step",
                                      "model.backward"),
    "evaluate: only the last batch's accuracy": M(
        "train_step", "correct += int(np.sum(np.argmax(scores, axis=1) == yb))",
        "correct = int(np.sum(np.argmax(scores, axis=1) == yb))", "test_evaluate", "last batch is counted"),
    "sgd: biases decayed too": M(
        "sgd", "if self.weight_decay and p.data.ndim >= 2:", "if self.weight_decay:", "test_sgd_weight_decay",
        "biases are decayed"),
    "sgd: weight decay outside the momentum": M(
        "sgd", "g = g + self.weight_decay * p.data", "p.data -= self.lr * self.weight_decay * p.data",
        "test_sgd_weight_decay", "outside the momentum"),
    "sgd: weight decay not scaled by the learning rate": M(
        "sgd", "g = g + self.weight_decay * p.data", "p.data -= self.weight_decay * p.data", "test_sgd_weight_decay",
        "not scaled by the learning rate"),
    "sgd: steps uphill": M("sgd", SGD_STEP, "p.data += self.lr * v", "test_sgd_plain", "wrong way"),
    "sgd: learning rate not applied": M("sgd", SGD_STEP, "p.data -= v", "test_sgd_plain", "learning rate is not applied"),
    "sgd: update never written back": M("sgd", SGD_STEP, "p.data - self.lr * v", "test_sgd_plain", "did not change"),
    "sgd: velocity applied to a parameter without gradient": M(
        "sgd", "            if p.grad is None:\n                continue\n",
        "            if p.grad is None:\n                v *= self.momentum\n                p.data -= self.lr * v\n"
        "                continue\n", "test_sgd_momentum", "without a gradient"),
    "sgd: a parameter without gradient crashes the step": M(
        "sgd", "            if p.grad is None:\n                continue\n", "", "test_sgd_plain", "grad is None"),
    "train_step: returns the loss after the update": M(
        "train_step", "optimizer.step()\n    return loss", "optimizer.step()\n    return loss_fn.forward(model(xb), yb)",
        "test_train_step", "after the update"),
    "train_step: two optimizer steps": M(
        "train_step", "optimizer.step()\n    return loss", "optimizer.step()\n    optimizer.step()\n    return loss",
        "test_train_step", "2 times"),
    "evaluate: batch losses weighted by batch_size": M(
        "train_step", "total_loss += loss_fn.forward(scores, yb) * len(yb)",
        "total_loss += loss_fn.forward(scores, yb) * batch_size", "test_evaluate", "weighted by batch_size"),
    "split: not shuffled": M("split", "order = rng.permutation(len(x))", "order = np.arange(len(x))", "test_split",
                             "does not depend on rng"),
    "split: validation size rounded down": M(
        "split", "n_val = int(round(len(x) * val_fraction))", "n_val = int(len(x) * val_fraction)", "test_split", "round"),
    "checkpoint: keeps references, not copies": M(
        "checkpoint", "self.saved = [p.data.copy() for p in model.parameters()]",
        "self.saved = [p.data for p in model.parameters()]", "test_checkpoint", "references"),
    "checkpoint: a tie replaces the earlier epoch": M(
        "checkpoint", "if val_acc <= self.best_acc:", "if val_acc < self.best_acc:", "test_checkpoint", "tie replaces"),
    "load_model: every layer assumed to have parameters": M(
        "save_load", "            if not names:\n                rebuilt.append(cls())\n                continue\n", "",
        "test_save_load_architecture", "parameter-free"),
    "save_model: parameter-free layers left out of the architecture": M(
        "save_load", "np.array([type(layer).__name__ for layer in model.layers])",
        "np.array([type(layer).__name__ for layer in model.layers if layer.parameters()])",
        "test_save_load_architecture", "parameter-free"),
    "load_model: parameters converted to float64": M(
        "save_load", 'p.data = saved[f"layer{i}.{name}"].copy()', 'p.data = saved[f"layer{i}.{name}"].astype(np.float64)',
        "test_save_load_roundtrip", "dtypes changed"),
}

#: One table per notebook; notebooks 03, 05 and 06 add theirs here.
TABLE: dict[str, dict[str, Mistake]] = {"01_layers": LAYERS, "02_losses": LOSSES, "04_training": TRAINING}
ROWS = [(stem, name) for stem, rows in TABLE.items() for name in sorted(rows)]


def run_mistake(stem: str, mistake: Mistake) -> dict[str, cells.CellResult]:
    """Every graded cell's result with the mistake in place."""
    source = answer_source(stem, mistake.cell)
    for old, new in mistake.edits:
        assert source.count(old) == 1, f"{old!r} must occur once in answer cell {mistake.cell}"
        source = source.replace(old, new)
    return _results(stem, {mistake.cell: source})


def _results(stem: str, replace: dict[str, str]) -> dict[str, cells.CellResult]:
    """Every graded cell's result with `replace` (grade_id -> source) in place; ungraded cells that
    the graded ones do not need (demos, training runs) are skipped, as in test_notebook_grading."""
    nb = load_notebook(stem)
    graded = set(graded_cell_ids(stem))
    run = {gid: "" for gid in (cells.grade_id(c) for c in nb.cells if c.cell_type == "code")
           if gid and gid not in graded and gid not in NEEDED and gid not in ANSWERS[stem]}
    run.update(replace)
    with contextlib.chdir(NOTEBOOKS):
        results = cells.run_cells(nb, replace=run)
    return {gid: r for gid, r in results.items() if gid in graded}


def _flat(text: str | None) -> str:
    """The message with every run of whitespace made one space (a report may wrap its lines)."""
    return " ".join((text or "").split())


def named(mistake: Mistake, results: dict[str, cells.CellResult]) -> bool:
    for cell, words in mistake.expect.items():
        error = _flat(results[cell].error).lower()
        if not error or not all(_flat(w).lower() in error for w in words):
            return False
    return True


def blamed_right_arrays(mistake: Mistake, results: dict[str, cells.CellResult]) -> list[str]:
    """Diagnosis sentences ("-> dx is ...") about an array that is right, not naming the culprit."""
    found = []
    for r in results.values():
        for sentence in _flat(r.error).split("-> ")[1:]:
            for array in mistake.right:
                if re.match(rf"{re.escape(array)}\b", sentence) and mistake.culprit not in sentence:
                    found.append(sentence)
    return found


_CACHE: dict[tuple[str, str], dict[str, cells.CellResult]] = {}


def results_of(stem: str, name: str) -> dict[str, cells.CellResult]:
    if (stem, name) not in _CACHE:
        _CACHE[stem, name] = run_mistake(stem, TABLE[stem][name])
    return _CACHE[stem, name]


def test_the_table_is_broad():
    assert len(ROWS) >= 60
    for stem in TABLE:
        targeted = {cell for m in TABLE[stem].values() for cell in m.expect}
        assert set(graded_cell_ids(stem)) <= targeted, stem


@pytest.mark.parametrize("stem, name", ROWS, ids=[f"{s}:{n}" for s, n in ROWS])
def test_every_mistake_loses_points_and_blames_no_right_array(stem, name):
    results = results_of(stem, name)
    mistake = TABLE[stem][name]
    assert any(not r.passed for r in results.values()), f"{name}: no graded cell failed"
    assert all(not results[cell].passed for cell in mistake.expect), {c: results[c].passed for c in mistake.expect}
    assert blamed_right_arrays(mistake, results) == []


def test_share_named_correctly():
    unnamed = []
    for stem, name in ROWS:
        if not named(TABLE[stem][name], results_of(stem, name)):
            unnamed.append(f"{stem}: {name}")
    share = 1 - len(unnamed) / len(ROWS)
    print(f"\nnamed correctly: {len(ROWS) - len(unnamed)} of {len(ROWS)} ({share:.0%}); unnamed:")
    print("\n".join(f"  {u}" for u in unnamed))
    assert share >= NAMED_TARGET, unnamed
    assert set(unnamed) <= KNOWN_UNNAMED, f"newly unnamed: {sorted(set(unnamed) - KNOWN_UNNAMED)}"


# More correct answers, in the styles the new diagnoses could mistake for errors: derivatives taken
# from the input rather than the output, np.heaviside masks, numpy floats instead of Python floats,
# velocities kept in a dict and parameters replaced by new arrays.
MORE_ALTERNATIVES = {
    "linear with np.dot": ("01_layers", "linear", '''
class Linear(Module):
    def __init__(self, in_features, out_features, rng=None):
        rng = np.random.default_rng() if rng is None else rng
        self.in_features, self.out_features = in_features, out_features
        self.W = Parameter(rng.standard_normal((in_features, out_features)) * math.sqrt(2.0 / in_features))
        self.b = Parameter(np.zeros(out_features))

    def forward(self, x):
        self.cache = x
        return np.dot(x, self.W.data) + self.b.data

    def backward(self, dout):
        self.W.grad = np.dot(self.cache.T, dout)
        self.b.grad = np.sum(dout, axis=0)
        if self.needs_input_grad:
            return np.dot(dout, self.W.data.T)
        return None
'''),
    "relu with a heaviside mask": ("01_layers", "relu", '''
class ReLU(Module):
    def forward(self, x):
        self.x = x
        return x * (x > 0)

    def backward(self, dout):
        return dout * np.heaviside(self.x, 0.0)
'''),
    "sigmoid through logaddexp": ("01_layers", "sigmoid", '''
class Sigmoid(Module):
    def forward(self, x):
        self.y = np.exp(-np.logaddexp(0.0, -x))
        return self.y

    def backward(self, dout):
        return dout * self.y * (1.0 - self.y)
'''),
    "tanh with the derivative from the input": ("01_layers", "tanh", '''
class Tanh(Module):
    def forward(self, x):
        self.x = x
        return np.tanh(x)

    def backward(self, dout):
        return dout / np.cosh(self.x) ** 2
'''),
    "gelu with sech squared": ("01_layers", "gelu", '''
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_CUBIC = 0.044715


class GELU(Module):
    def forward(self, x):
        self.x = x
        return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x ** 3)))

    def backward(self, dout):
        u = SQRT_2_OVER_PI * (self.x + GELU_CUBIC * self.x ** 3)
        sech2 = 1.0 / np.cosh(np.clip(u, -300, 300)) ** 2
        du = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * self.x ** 2)
        return dout * (0.5 * (1.0 + np.tanh(u)) + 0.5 * self.x * sech2 * du)
'''),
    "cross-entropy with a log-sum-exp and a numpy float": ("02_losses", "cross_entropy", '''
class SoftmaxCrossEntropy(Module):
    def forward(self, scores, y):
        m = scores.max(axis=1)
        lse = m + np.log(np.exp(scores - m[:, None]).sum(axis=1))
        self.p = np.exp(scores - lse[:, None])
        self.y = y
        return np.mean(lse - scores[np.arange(len(y)), y])

    def backward(self):
        d = self.p.copy()
        d[np.arange(len(self.y)), self.y] -= 1
        return d / len(self.y)
'''),
    "euclidean as a mean of row sums": ("02_losses", "euclidean", '''
class EuclideanLoss(Module):
    def forward(self, scores, y):
        self.d = scores - np.eye(scores.shape[1])[y]
        return float(np.mean(0.5 * np.sum(self.d ** 2, axis=1)))

    def backward(self):
        return self.d / self.d.shape[0]
'''),
    "hinge with a loop over the samples": ("02_losses", "hinge", '''
class MulticlassHinge(Module):
    def __init__(self, margin=1.0):
        self.margin = margin

    def forward(self, scores, y):
        n, c = scores.shape
        self.grad = np.zeros_like(scores, dtype=float)
        total = 0.0
        for i in range(n):
            for j in range(c):
                if j != y[i]:
                    m = scores[i, j] - scores[i, y[i]] + self.margin
                    if m > 0:
                        total += m
                        self.grad[i, j] += 1.0 / n
                        self.grad[i, y[i]] -= 1.0 / n
        return total / n

    def backward(self):
        return self.grad.copy()
'''),
    "sgd with momentum written as v[:] = ... and new parameter arrays": ("04_training", "sgd", '''
class SGD:
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        self.params = list(params)
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
        self.velocity = [np.zeros_like(p.data) for p in self.params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        for p, v in zip(self.params, self.velocity):
            if p.grad is None:
                continue
            g = p.grad + (self.weight_decay * p.data if p.data.ndim > 1 else 0.0)
            v[:] = self.momentum * v + g
            p.data = p.data - self.lr * v
'''),
}

ALTERNATIVES = [(stem, k, (gid, source)) for k, (stem, gid, source) in MORE_ALTERNATIVES.items()] + \
    [("01_layers", k, v) for k, v in LAYER_ALTERNATIVES.items()] + \
    [("02_losses", k, v) for k, v in LOSS_ALTERNATIVES.items()] + \
    [("04_training", k, v) for k, v in TRAINING_ALTERNATIVES.items()]


@pytest.mark.parametrize("stem, style, answer", ALTERNATIVES, ids=[f"{s}:{n}" for s, n, _ in ALTERNATIVES])
def test_correct_alternatives_get_no_diagnosis(stem, style, answer):
    gid, source = answer
    results = _results(stem, {gid: source})
    assert {cell: r.error for cell, r in results.items() if r.error} == {}


# A mistake costs only its own cell: a forward that is unusable at large inputs (NaN at ±1000) with a
# backward that is right on its own (computed from the input) loses the forward cell only. The hidden
# backward tests then hold backward to known derivative values instead of the numeric gradient of a
# forward that cannot be differentiated there. (A backward that reuses the NaN output of forward is
# unusable itself and loses its cell too: see the "unstable" rows of test_notebook_grading.)
FORWARD_ONLY = {
    "relu": Mistake("relu", (("return np.maximum(x, 0)", "return np.maximum(x, 0) * np.exp(x) / np.exp(x)"),), {}),
    "sigmoid": Mistake("sigmoid", (
        (SIG_FWD, "self.x = x\n        self.out = np.exp(x) / (1.0 + np.exp(x))"),
        (SIG_BWD, "s = 0.5 * (1.0 + np.tanh(0.5 * self.x))\n        return dout * s * (1.0 - s)")), {}),
    "tanh": Mistake("tanh", (
        ("self.out = np.tanh(x)", "self.x = x\n        self.out = (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))"),
        (TANH_BWD, "return dout / np.cosh(self.x) ** 2")), {}),
    "gelu": Mistake("gelu", (
        ("self.tanh_u = np.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x ** 3))",
         "e = np.exp(2.0 * SQRT_2_OVER_PI * (x + GELU_CUBIC * x ** 3))\n        self.tanh_u = (e - 1.0) / (e + 1.0)"),
        ("x, t = self.x, self.tanh_u", "x = self.x\n        t = np.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x ** 3))")), {}),
}


@pytest.mark.parametrize("layer", sorted(FORWARD_ONLY))
def test_a_forward_unusable_at_large_inputs_costs_only_the_forward_cell(layer):
    with np.errstate(all="ignore"):
        results = run_mistake("01_layers", FORWARD_ONLY[layer])
    assert {cell for cell, r in results.items() if not r.passed} == {f"test_{layer}_forward"}
    assert "NaN" in results[f"test_{layer}_forward"].error


# A forward that returns the wrong shape (flattened, squeezed, one loss per sample) behind a backward
# that is right costs the forward cell only: the backward cells hold backward to the numeric gradient
# of the output mapped to the right shape (check_layer's out_shape, check_loss's per-sample mean) or to
# known derivatives (same_values, which never calls a flat output right). Before, the backward cells
# handed backward an upstream gradient of the wrong shape and lost their points too.
WRONG_SHAPE = [("01_layers", "linear: forward squeezes its output (batch 1 gives shape (out,))"),
               ("01_layers", "relu: np.max(x, 0) where np.maximum(x, 0) belongs"),
               ("01_layers", "sigmoid: forward flattens its output"),
               ("01_layers", "tanh: forward flattens its output"),
               ("01_layers", "gelu: forward loops over x.flat (a flat output)"),
               ("02_losses", "cross-entropy: forward returns the per-sample losses (the mean left out)")]


@pytest.mark.parametrize("stem, name", WRONG_SHAPE, ids=[f"{s}:{n}" for s, n in WRONG_SHAPE])
def test_a_forward_of_the_wrong_shape_costs_only_the_forward_cell(stem, name):
    results = results_of(stem, name)
    (forward_cell,) = TABLE[stem][name].expect
    assert {cell for cell, r in results.items() if not r.passed} == {forward_cell}
    assert "has shape" in results[forward_cell].error and "expected" in results[forward_cell].error
