"""The training loop around the student's own step, and the budget profiles.

The student writes `train_step`, `evaluate`, the optimizer and the checkpoint keeper (notebook 04);
`fit` only drives them: epochs of shuffled mini-batches, a progress bar, a history, evaluation every
k epochs, optional live curves, and restoring the best checkpoint at the end. It can be interrupted
(the stop button) and still returns what it has, with the best checkpoint restored.

Profiles decide how much data and how many epochs a notebook uses, so that the same notebook runs
in minutes for a student (`full`), in seconds under CI (`ci`) and when autograding (`grade`). The
profile comes from the `LABLIB_PROFILE` environment variable, default `full`. `ci` and `grade` also
make `lablib.data.load_dataset` read the small sample committed in `data/sample/`, so that they need
no data package and no network; `full` reads the whole data set.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from tqdm.auto import tqdm

__all__ = ["Budget", "PROFILES", "PROFILE_VAR", "budget", "History", "fit", "TestSet"]

PROFILE_VAR = "LABLIB_PROFILE"


@dataclass(frozen=True)
class Budget:
    """How much to train: sizes of the train / validation / test sets (None: all) and epochs.

    sample: `load_dataset` reads the committed sample (4,000 training and 1,000 test images of
    Fashion-MNIST) instead of the full data set; the sizes must fit in it (a 10 % validation split
    of 4,000 leaves 3,600 training and 400 validation images).
    """

    name: str
    train_size: int | None
    val_size: int | None
    test_size: int | None
    epochs: int
    sample: bool = False

    def take(self, x: np.ndarray, y: np.ndarray, which: str) -> tuple[np.ndarray, np.ndarray]:
        """The first `<which>_size` examples of (x, y) (all of them when the size is None)."""
        n = getattr(self, f"{which}_size")
        return (x, y) if n is None else (x[:n], y[:n])


PROFILES = {
    "full": Budget("full", None, None, None, epochs=45),
    "ci": Budget("ci", 3000, 400, 1000, epochs=3, sample=True),
    "grade": Budget("grade", 1000, 400, 500, epochs=1, sample=True),
}


def budget(name: str | None = None) -> Budget:
    """The profile called `name`, else the one named by $LABLIB_PROFILE, else `full`."""
    chosen = name or os.environ.get(PROFILE_VAR) or "full"
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r} (from {'the argument' if name else PROFILE_VAR}); "
                         f"choose one of {sorted(PROFILES)}")
    return PROFILES[chosen]


@dataclass
class History:
    """What happened in each epoch. Lists are aligned; val_* are NaN in epochs without evaluation."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    interrupted: bool = False

    @property
    def best_val_acc(self) -> float:
        return float("nan") if self.best_epoch is None else self.val_acc[self.epoch.index(self.best_epoch)]

    @property
    def train_seconds(self) -> float:
        return float(sum(self.seconds))

    def rows(self) -> list[tuple]:
        return list(zip(self.epoch, self.train_loss, self.val_loss, self.val_acc, self.lr, self.seconds))

    def __repr__(self) -> str:
        lines = ["epoch  train loss  val loss  val acc        lr   seconds"]
        for e, tl, vl, va, lr, s in self.rows():
            mark = "  <- best" if e == self.best_epoch else ""
            lines.append(f"{e:>5}  {tl:>10.4f}  {vl:>8.4f}  {va:>7.2%}  {lr:>8.3g}  {s:>8.1f}{mark}")
        if self.interrupted:
            lines.append("(interrupted)")
        return "\n".join(lines)


def _evaluate(evaluate: Callable, model: Any, loss_fn: Any, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    result = evaluate(model, loss_fn, x, y)
    try:
        loss, acc = result
        return float(loss), float(acc)
    except (TypeError, ValueError):
        raise TypeError(f"evaluate must return (loss, accuracy); it returned {result!r}") from None


def fit(
    model: Any,
    loss_fn: Any,
    optimizer: Any,
    *,
    train_step: Callable[[Any, Any, Any, np.ndarray, np.ndarray], float],
    evaluate: Callable[[Any, Any, np.ndarray, np.ndarray], tuple[float, float]],
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    checkpoint: Any = None,
    lr_schedule: Callable[[int], float] | None = None,
    eval_every: int = 1,
    progress: bool = True,
    on_epoch_end: Callable[["History"], None] | None = None,
) -> History:
    """Train `model` with the student's `train_step` for `epochs` epochs of shuffled mini-batches.

    Inputs:
        train_step(model, loss_fn, optimizer, xb, yb) -> float: one update; returns the batch loss.
        evaluate(model, loss_fn, x, y) -> (loss, accuracy): no update.
        x_train (N, D), y_train (N,), x_val, y_val: the data (float32 inputs train fastest).
        rng: shuffles the batches (a numpy Generator: runs are reproducible).
        checkpoint: optional object with `update(model, val_acc, epoch) -> bool` (called after each
            evaluation) and `restore(model)` (called at the end, also after an interruption).
        lr_schedule: optional epoch -> learning rate, assigned to `optimizer.lr` before each epoch.
        eval_every: evaluate on the validation set every k epochs (and after the last one).
        on_epoch_end: called with the history after every epoch (live plots).
    Returns:
        History; `best_epoch` is the epoch whose checkpoint was restored (None without a checkpoint).
    """
    if len(x_train) != len(y_train) or len(x_val) != len(y_val):
        raise ValueError(f"x and y lengths differ: train {len(x_train)} vs {len(y_train)}, val {len(x_val)} vs {len(y_val)}")
    history = History()
    n_batches = -(-len(x_train) // batch_size)
    bar = tqdm(total=epochs * n_batches, disable=not progress, unit="batch", mininterval=0.5, leave=True)
    try:
        for epoch in range(1, epochs + 1):
            if lr_schedule is not None:
                optimizer.lr = float(lr_schedule(epoch - 1))
            start = time.perf_counter()
            order = rng.permutation(len(x_train))
            total = 0.0
            for i in range(0, len(order), batch_size):
                # a gather per batch: copying the whole set each epoch cost up to 25 % of an epoch
                batch = order[i:i + batch_size]
                total += float(train_step(model, loss_fn, optimizer, x_train[batch], y_train[batch]))
                bar.update(1)
            seconds = time.perf_counter() - start
            val_loss = val_acc = float("nan")
            if epoch % eval_every == 0 or epoch == epochs:
                val_loss, val_acc = _evaluate(evaluate, model, loss_fn, x_val, y_val)
                if checkpoint is not None and checkpoint.update(model, val_acc, epoch):
                    history.best_epoch = epoch
            history.epoch.append(epoch)
            history.train_loss.append(total / n_batches)
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
            history.lr.append(float(getattr(optimizer, "lr", float("nan"))))
            history.seconds.append(seconds)
            bar.set_postfix(epoch=epoch, loss=f"{total / n_batches:.4f}", val_acc=f"{val_acc:.2%}", refresh=False)
            if on_epoch_end is not None:
                on_epoch_end(history)
    except KeyboardInterrupt:
        history.interrupted = True
    finally:
        bar.close()
    if checkpoint is not None and history.best_epoch is not None:
        checkpoint.restore(model)
    return history


class TestSet:
    """The test set, usable once: test accuracy is measured exactly once, on the chosen model.

    `evaluate(fn, model, loss_fn)` calls `fn(model, loss_fn, x, y)` the first time and returns
    its result; a second call raises, so that no choice is ever made on test data.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self._x, self._y = x, y
        self.used_by: str | None = None

    def __len__(self) -> int:
        return len(self._y)

    def evaluate(self, fn: Callable, model: Any, loss_fn: Any) -> tuple[float, float]:
        if self.used_by is not None:
            raise RuntimeError(f"the test set was already used ({self.used_by}). Choose models on the "
                               "validation set; measure test accuracy once, at the end.")
        self.used_by = f"to evaluate {type(model).__name__}"
        return _evaluate(fn, model, loss_fn, self._x, self._y)

    def predictions(self, predict: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(y_true, y_pred) for a confusion matrix; allowed only after `evaluate`, on the same model."""
        if self.used_by is None:
            raise RuntimeError("call evaluate first: predictions are for analysing the final model")
        return self._y, predict(self._x)
