"""Plots for the notebooks: training curves (also live), confusion matrices, and the pictures of
what a network learned (notebook 06): image grids, heat maps of weight matrices, 2-D scatters by class.

Every function returns the matplotlib Figure and draws nothing on the global state beyond it, so a
notebook shows it by ending a cell with it (or it is saved with `fig.savefig`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_history", "LivePlot", "confusion_matrix", "plot_confusion_matrix", "most_confused",
           "symmetric_limit", "plot_image_grid", "plot_heatmaps", "plot_scatter_2d",
           "DIVERGING_CMAP", "IMAGE_CMAP"]

#: Colour map of signed values (weights): blue negative, white zero, red positive.
DIVERGING_CMAP = "RdBu_r"
#: Colour map of the data set's images (dark background, bright garment), as they are usually shown.
IMAGE_CMAP = "gray"
#: Colours of the classes in a scatter (up to 10 classes; more cycle through them).
CLASS_COLOURS = "tab10"


def _figure(**kwargs: Any) -> Figure:
    """A new Figure. matplotlib is imported at the first plot, not with lablib: the grid workers of
    notebook 05 rebuild notebook 04's module, which names these functions, and never draw (importing
    matplotlib would cost every worker about 0.4 s when it starts)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _colormap(name: str) -> Any:
    from matplotlib import colormaps

    return colormaps[name]


def plot_history(history: Any, title: str = "") -> Figure:
    """Loss (train and validation) and validation accuracy per epoch; the restored epoch is marked."""
    from matplotlib.ticker import MaxNLocator

    fig = _figure(figsize=(10, 3.6), layout="constrained")
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
    fig = _figure(figsize=(7, 6), layout="constrained")
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


def symmetric_limit(values: np.ndarray) -> float:
    """max |values|, the colour limit that puts zero in the middle of a diverging map (1.0 when all
    values are zero or there are none, so that a blank picture still has a valid colour range)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    limit = float(np.max(np.abs(finite))) if finite.size else 0.0
    return limit if limit > 0 else 1.0


def _as_images(images: np.ndarray) -> np.ndarray:
    """(N, H, W) as is; (N, D) with D a perfect square as (N, √D, √D)."""
    images = np.asarray(images)
    if images.ndim == 2:
        side = int(round(np.sqrt(images.shape[1])))
        if side * side != images.shape[1]:
            raise ValueError(f"images of shape {images.shape}: {images.shape[1]} values per row is not a square "
                             "image; pass them as (N, height, width)")
        images = images.reshape(len(images), side, side)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(f"expected a non-empty stack of images, shape (N, height, width) or (N, height*width); "
                         f"got shape {images.shape}")
    return images


def plot_image_grid(images: np.ndarray, *, titles: Sequence[str] | None = None, ncols: int = 8,
                    diverging: bool = True, colorbar_label: str = "", title: str = "",
                    panel_inches: float = 1.3) -> Figure:
    """Images in a grid, one panel each, all on the same colour scale.

    Inputs:
        images: shape (N, H, W), or (N, H*W) for square images (a weight matrix's columns, transposed).
        titles: optional, one per image (a unit's index, "Shirt → T-shirt/top").
        diverging: True for signed values such as weights: DIVERGING_CMAP with limits ±max|images|, so
            that zero is white, and one colour bar for the whole grid. False for the data set's images:
            IMAGE_CMAP between their minimum and maximum, no colour bar.
        panel_inches: the width of one image panel.
    Returns:
        the Figure; `fig.axes` holds the N image panels first (then the colour bar's axes).
    """
    images = _as_images(images)
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"{len(titles)} titles for {len(images)} images")
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    fig = _figure(figsize=(panel_inches * ncols + (1.0 if diverging else 0.0),
                          (panel_inches + 0.1) * nrows + (0.5 if title else 0.2)),
                 layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    if diverging:
        limit = symmetric_limit(images)
        style = dict(cmap=DIVERGING_CMAP, vmin=-limit, vmax=limit)
    else:
        low, high = float(np.min(images)), float(np.max(images))
        style = dict(cmap=IMAGE_CMAP, vmin=low, vmax=high if high > low else low + 1)
    shown = None
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(images):
            ax.set_axis_off()
            continue
        shown = ax.imshow(images[i], interpolation="nearest", **style)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if diverging:
        fig.colorbar(shown, ax=axes, shrink=0.8, label=colorbar_label)
    if title:
        fig.suptitle(title)
    return fig


def plot_heatmaps(matrices: Sequence[np.ndarray], names: Sequence[str], *,
                  axis_labels: tuple[str, str] = ("output unit", "input unit"), title: str = "") -> Figure:
    """One heat map per matrix, side by side, each with its own colour scale centred at zero.

    Inputs:
        matrices: 2-D arrays, e.g. every Linear's W of shape (in, out), shown with rows = inputs.
        names: a panel title for each ("layer 0: W (784, 1024)").
        axis_labels: (x label, y label) of every panel.
    Returns:
        the Figure; `fig.axes` holds one panel per matrix, then one colour bar per panel.
    """
    if len(matrices) != len(names) or not len(matrices):
        raise ValueError(f"give one name per matrix (got {len(matrices)} matrices and {len(names)} names)")
    for name, m in zip(names, matrices):
        if np.ndim(m) != 2:
            raise ValueError(f"{name}: a heat map needs a 2-D matrix, got shape {np.shape(m)}")
    fig = _figure(figsize=(4.2 * len(matrices), 4.2), layout="constrained")
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, m, name in zip(axes, matrices, names):
        limit = symmetric_limit(m)
        image = ax.imshow(np.asarray(m), cmap=DIVERGING_CMAP, vmin=-limit, vmax=limit, aspect="auto",
                          interpolation="nearest")
        ax.set(title=name, xlabel=axis_labels[0], ylabel=axis_labels[1])
        fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
    if title:
        fig.suptitle(title)
    return fig


def plot_scatter_2d(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *,
                    axis_labels: tuple[str, str] = ("component 1", "component 2"), title: str = "",
                    size: float = 6.0) -> Figure:
    """Points in 2-D, one colour per class, the class names in the legend.

    Inputs:
        points: shape (N, 2), e.g. the first two principal components of N samples.
        labels: integer classes, shape (N,), values in 0 … len(class_names) - 1.
        axis_labels: (x label, y label), e.g. ("PC 1 (31 % of the variance)", "PC 2 (12 %)").
    Returns:
        the Figure (one axes; its legend lists the classes present).
    """
    points, labels = np.asarray(points), np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2), got {points.shape}: keep two components")
    if labels.shape != (len(points),):
        raise ValueError(f"labels must have shape ({len(points)},), one per point; got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(class_names)):
        raise ValueError(f"labels must lie in 0 … {len(class_names) - 1} (one per class name); "
                         f"got {labels.min()} … {labels.max()}")
    fig = _figure(figsize=(7.5, 5.5), layout="constrained")
    ax = fig.subplots()
    colours = _colormap(CLASS_COLOURS)
    for c, name in enumerate(class_names):
        mine = labels == c
        if mine.any():
            ax.scatter(points[mine, 0], points[mine, 1], s=size, alpha=0.6, color=colours(c % colours.N),
                       label=name, linewidths=0)
    ax.set(xlabel=axis_labels[0], ylabel=axis_labels[1], title=title)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3, frameon=False)
    return fig
