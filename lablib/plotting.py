"""Plots for the notebooks: training curves (also live), confusion matrices.

Every function returns the matplotlib Figure and draws nothing on the global state beyond it, so a
notebook shows it by ending a cell with it (or it is saved with `fig.savefig`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_history", "LivePlot", "confusion_matrix", "plot_confusion_matrix", "most_confused"]


def plot_history(history: Any, title: str = "") -> Figure:
    """Loss (train and validation) and validation accuracy per epoch; the restored epoch is marked."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    epochs = np.asarray(history.epoch)
    val = ~np.isnan(np.asarray(history.val_acc, dtype=float))
    ax_loss.plot(epochs, history.train_loss, label="train")
    ax_loss.plot(epochs[val], np.asarray(history.val_loss)[val], "o-", label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.plot(epochs[val], 100 * np.asarray(history.val_acc)[val], "o-", color="C1", label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="validation accuracy")
    if history.best_epoch is not None:
        for ax in (ax_loss, ax_acc):
            ax.axvline(history.best_epoch, color="gray", linestyle="--", label=f"kept: epoch {history.best_epoch}")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


class LivePlot:
    """Redraws the training curves in place after every epoch: pass `on_epoch_end=LivePlot()` to fit.

    Outside a notebook (no IPython display) it does nothing.
    """

    def __init__(self, title: str = ""):
        self.title = title
        self.handle = None

    def __call__(self, history: Any) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        fig = plot_history(history, self.title)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j] = how many samples of true class i were predicted as class j; shape (C, C), int64."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    return counts


def most_confused(counts: np.ndarray, class_names: Sequence[str], k: int = 5) -> list[tuple[str, str, int]]:
    """The k largest off-diagonal entries: (true class, predicted class, count), largest first."""
    off = counts.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:k]
    return [(class_names[i], class_names[j], int(off[i, j])) for i, j in zip(*np.unravel_index(order, off.shape))]


def plot_confusion_matrix(counts: np.ndarray, class_names: Sequence[str], title: str = "") -> Figure:
    """Rows: true class; columns: predicted; each cell shows its count, colour = fraction of the row."""
    fig = Figure(figsize=(7, 6), layout="constrained")
    ax = fig.subplots()
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title or f"confusion matrix ({counts.sum()} samples)")
    for i in range(counts.shape[0]):
        for j in range(counts.shape[1]):
            ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, label="fraction of the true class")
    return fig
