"""lablib.training: profiles, the loop around the student's step, the once-only test set; plots."""

import numpy as np
import pytest

from lablib import Module, Parameter
from lablib.plotting import confusion_matrix, most_confused, plot_confusion_matrix, plot_history
from lablib.training import PROFILES, TestSet, budget, fit


class Affine(Module):
    def __init__(self, d, c, rng):
        self.W, self.b = Parameter(rng.standard_normal((d, c)) * 0.1), Parameter(np.zeros(c))

    def forward(self, x):
        self.x = x
        return x @ self.W.data + self.b.data

    def backward(self, dout):
        self.W.grad, self.b.grad = self.x.T @ dout, dout.sum(0)
        return dout @ self.W.data.T


class CE(Module):
    def forward(self, s, y):
        e = np.exp(s - s.max(1, keepdims=True))
        self.p, self.y = e / e.sum(1, keepdims=True), y
        return float(-np.log(self.p[np.arange(len(y)), y]).mean())

    def backward(self):
        d = self.p.copy()
        d[np.arange(len(self.y)), self.y] -= 1
        return d / len(self.y)


class Plain:
    def __init__(self, params, lr):
        self.params, self.lr = params, lr

    def step(self):
        for p in self.params:
            p.data -= self.lr * p.grad


def step(model, loss_fn, opt, xb, yb):
    loss = loss_fn.forward(model(xb), yb)
    model.backward(loss_fn.backward())
    opt.step()
    return loss


def evaluate(model, loss_fn, x, y):
    s = model(x)
    return loss_fn.forward(s, y), float(np.mean(s.argmax(1) == y))


class Keeper:
    def __init__(self):
        self.best, self.calls, self.restored = -1.0, [], False

    def update(self, model, acc, epoch):
        self.calls.append(epoch)
        if acc > self.best:
            self.best, self.saved = acc, [p.data.copy() for p in model.parameters()]
            return True
        return False

    def restore(self, model):
        self.restored = True
        for p, s in zip(model.parameters(), self.saved):
            p.data[...] = s


def blobs(n, rng):
    y = rng.integers(0, 3, n)
    return rng.standard_normal((n, 4)) + 3 * np.eye(3, 4)[y], y


def test_budget_profiles_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("LABLIB_PROFILE", raising=False)
    assert budget().name == "full" and budget("ci") is PROFILES["ci"]
    monkeypatch.setenv("LABLIB_PROFILE", "grade")
    assert budget().name == "grade"
    x, y = np.arange(5000), np.arange(5000)
    assert len(budget().take(x, y, "train")[0]) == PROFILES["grade"].train_size
    assert len(PROFILES["full"].take(x, y, "train")[0]) == 5000
    monkeypatch.setenv("LABLIB_PROFILE", "huge")
    with pytest.raises(ValueError, match="unknown profile 'huge'.*LABLIB_PROFILE"):
        budget()


def test_fit_learns_evaluates_every_k_epochs_and_restores_the_best():
    rng = np.random.default_rng(0)
    (x, y), (xv, yv) = blobs(600, rng), blobs(200, rng)
    model, keeper, seen = Affine(4, 3, rng), Keeper(), []
    opt = Plain(model.parameters(), 0.1)
    history = fit(model, CE(), opt, train_step=step, evaluate=evaluate, x_train=x, y_train=y, x_val=xv, y_val=yv,
                  epochs=5, batch_size=64, rng=rng, checkpoint=keeper, eval_every=2,
                  lr_schedule=lambda e: 0.1 / (e + 1),
                  progress=False, on_epoch_end=lambda h: seen.append(len(h.epoch)))
    assert history.epoch == [1, 2, 3, 4, 5] and seen == [1, 2, 3, 4, 5]
    assert keeper.calls == [2, 4, 5] and keeper.restored
    assert np.isnan(history.val_acc[0]) and history.val_acc[-1] > 0.9
    assert history.train_loss[-1] < history.train_loss[0]
    assert history.lr == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025, 0.02])
    assert history.best_epoch in (2, 4, 5) and "<- best" in repr(history)
    assert evaluate(model, CE(), xv, yv)[1] == pytest.approx(history.best_val_acc)


def test_fit_is_reproducible_with_the_same_generator():
    def run():
        rng = np.random.default_rng(1)
        (x, y), (xv, yv) = blobs(300, rng), blobs(50, rng)
        model = Affine(4, 3, rng)
        fit(model, CE(), Plain(model.parameters(), 0.1), train_step=step, evaluate=evaluate, x_train=x, y_train=y,
            x_val=xv, y_val=yv, epochs=2, batch_size=32, rng=rng, progress=False)
        return model.W.data
    assert np.array_equal(run(), run())


def test_fit_stops_cleanly_when_interrupted_and_keeps_the_best():
    rng = np.random.default_rng(2)
    (x, y), (xv, yv) = blobs(200, rng), blobs(50, rng)
    model, keeper = Affine(4, 3, rng), Keeper()
    calls = []

    def interrupting_step(*args):
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return step(*args)

    history = fit(model, CE(), Plain(model.parameters(), 0.1), train_step=interrupting_step, evaluate=evaluate,
                  x_train=x, y_train=y, x_val=xv, y_val=yv, epochs=5, batch_size=50, rng=rng,
                  checkpoint=keeper, progress=False)
    assert history.interrupted and history.epoch == [1, 2] and keeper.restored


def test_fit_explains_a_bad_evaluate():
    rng = np.random.default_rng(3)
    (x, y) = blobs(20, rng)
    model = Affine(4, 3, rng)
    with pytest.raises(TypeError, match=r"evaluate must return \(loss, accuracy\)"):
        fit(model, CE(), Plain(model.parameters(), 0.1), train_step=step, evaluate=lambda *a: 0.5,
            x_train=x, y_train=y, x_val=x, y_val=y, epochs=1, batch_size=10, rng=rng, progress=False)


def test_the_test_set_can_be_used_once():
    rng = np.random.default_rng(4)
    x, y = blobs(30, rng)
    model = Affine(4, 3, rng)
    test = TestSet(x, y)
    with pytest.raises(RuntimeError, match="call evaluate first"):
        test.predictions(lambda a: a)
    loss, acc = test.evaluate(evaluate, model, CE())
    assert 0 <= acc <= 1 and len(test) == 30
    y_true, y_pred = test.predictions(lambda a: model(a).argmax(1))
    assert y_true.shape == y_pred.shape == (30,)
    with pytest.raises(RuntimeError, match="already used"):
        test.evaluate(evaluate, model, CE())


def test_confusion_matrix_and_plots():
    counts = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 0], num_classes=3)
    assert counts.tolist() == [[1, 1, 0], [0, 1, 0], [2, 0, 1]]
    assert most_confused(counts, ["a", "b", "c"], k=2) == [("c", "a", 2), ("a", "b", 1)]
    assert plot_confusion_matrix(counts, ["a", "b", "c"]).axes
    with pytest.raises(ValueError, match="shape"):
        confusion_matrix([0, 1], [0], 2)

    class H:
        epoch, train_loss, val_loss, val_acc, best_epoch = [1, 2], [1.0, 0.5], [1.1, float("nan")], [0.5, float("nan")], 1

    assert len(plot_history(H()).axes) == 2
