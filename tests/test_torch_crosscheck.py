"""The reference solutions against an independent reference: PyTorch float64 autograd.

Needs the optional `crosscheck` extra (`pip install -e .[crosscheck]`); skipped without torch.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.torch
TOL = 1e-10


def close(ours, theirs):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    scale = max(1.0, float(np.max(np.abs(theirs))) if np.size(theirs) else 1.0)
    assert np.max(np.abs(np.asarray(ours) - theirs)) <= TOL * scale


def leaf(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("n", [1, 7])
def test_linear_matches_torch(layers, n):
    rng = np.random.default_rng(n)
    layer = layers["Linear"](6, 4, rng=rng)
    layer.b.data = rng.standard_normal(4)
    x, dout = rng.standard_normal((n, 6)), rng.standard_normal((n, 4))
    out = layer(x)
    dx = layer.backward(dout)
    tx, tW, tb = leaf(x), leaf(layer.W.data), leaf(layer.b.data)
    tout = F.linear(tx, tW.T, tb)  # torch stores weights as (out, in); ours are (in, out)
    tout.backward(torch.tensor(dout))
    close(out, tout)
    close(dx, tx.grad)
    close(layer.W.grad, tW.grad)
    close(layer.b.grad, tb.grad)


ACTIVATIONS = {
    "ReLU": torch.relu,
    "Sigmoid": torch.sigmoid,
    "Tanh": torch.tanh,
    "GELU": lambda t: F.gelu(t, approximate="tanh"),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch(layers, name):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal((4, 6)) * 3, [[-40.0, -5.0, 0.5, 5.0, 40.0, 1e-3]]])
    dout = rng.standard_normal(x.shape)
    layer = layers[name]()
    out = layer(x)
    dx = layer.backward(dout)
    tx = leaf(x)
    tout = ACTIVATIONS[name](tx)
    tout.backward(torch.tensor(dout))
    close(out, tout)
    close(dx, tx.grad)


def _onehot(y, c):
    return F.one_hot(torch.tensor(y), c).double()


LOSSES = {
    "SoftmaxCrossEntropy": (lambda s, y: F.cross_entropy(s, torch.tensor(y)), {}),
    "EuclideanLoss": (lambda s, y: 0.5 * ((s - _onehot(y, s.shape[1])) ** 2).sum() / s.shape[0], {}),
    # torch's multi_margin_loss averages over the classes too: ours is C times it
    "MulticlassHinge": (lambda s, y: s.shape[1] * F.multi_margin_loss(s, torch.tensor(y), margin=5.0), {"margin": 5.0}),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("n", [1, 9])
def test_loss_matches_torch(losses, name, n):
    reference, kwargs = LOSSES[name]
    rng = np.random.default_rng(n)
    scores, y = rng.standard_normal((n, 10)) * 4, rng.integers(0, 10, n)
    loss = losses[name](**kwargs)
    value = loss.forward(scores, y)
    dscores = loss.backward()
    ts = leaf(scores)
    tvalue = reference(ts, y)
    tvalue.backward()
    assert isinstance(value, float)
    close(value, tvalue)
    close(dscores, ts.grad)


def test_softmax_matches_torch(losses):
    scores = np.random.default_rng(2).standard_normal((5, 10)) * 30
    close(losses["softmax"](scores), torch.softmax(torch.tensor(scores), dim=1))


def test_l2_matches_torch(losses):
    rng = np.random.default_rng(3)
    Parameter = losses["Parameter"]
    params = [Parameter(rng.standard_normal((5, 4))), Parameter(rng.standard_normal(4)),
              Parameter(rng.standard_normal((4, 3))), Parameter(rng.standard_normal(3))]
    leaves = [leaf(p.data) for p in params]
    penalty = 2e-4 * sum((t**2).sum() for t in leaves if t.dim() >= 2)
    penalty.backward()
    close(losses["l2_penalty"](params, 2e-4), penalty)
    for ours, t in zip(losses["l2_penalty_grads"](params, 2e-4), leaves):
        close(ours, t.grad if t.grad is not None else torch.zeros_like(t))


@pytest.fixture(scope="module")
def backprop():
    from conftest import solution_namespace

    return solution_namespace("03_backprop")


@pytest.mark.parametrize("n, hidden", [(1, 4), (6, 5), (5, 4)])
def test_two_layer_network_by_hand_matches_torch(backprop, n, hidden):
    rng = np.random.default_rng(n)
    d, c, reg = 4, 3, 0.03
    params = {"W1": rng.standard_normal((d, hidden)), "b1": rng.standard_normal(hidden),
              "W2": rng.standard_normal((hidden, c)), "b2": rng.standard_normal(c)}
    X, y = rng.standard_normal((n, d)) * 2, rng.integers(0, c, n)
    loss, grads = backprop["two_layer_loss"](*params.values(), X, y, reg)
    t = {name: leaf(value) for name, value in params.items()}
    scores = torch.relu(torch.tensor(X) @ t["W1"] + t["b1"]) @ t["W2"] + t["b2"]
    tloss = F.cross_entropy(scores, torch.tensor(y)) + reg * ((t["W1"] ** 2).sum() + (t["W2"] ** 2).sum())
    tloss.backward()
    assert isinstance(loss, float)
    close(loss, tloss)
    for name in params:
        close(grads[name], t[name].grad)
