"""Plots of grid studies (notebook 05): a study as lines, a two-way table as a heat map with numbers.

They take the pandas DataFrame of `GridResults.frame()` and return a matplotlib Figure (drawing
nothing on the global state), like `lablib.plotting`. Failed and diverged runs have no accuracy: a
line leaves them out and marks them at the bottom, a heat map shows their status in the cell.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_study", "plot_heatmap"]


def plot_study(frame: Any, x: str, *, value: str = "val_acc", hue: str | None = None, logx: bool = False,
               title: str = "") -> Figure:
    """`value` (an accuracy in [0, 1], drawn in %) against column `x`, one line per value of `hue`.

    Inputs:
        frame: one row per run with columns `x`, `value`, `status` (and `hue`).
    """
    for column in (x, value, "status", *([hue] if hue else [])):
        if column not in frame.columns:
            raise KeyError(f"the study's table has no column {column!r} (columns: {list(frame.columns)})")
    fig = Figure(figsize=(5.5, 3.6), layout="constrained")
    ax = fig.subplots()
    groups = [(None, frame)] if hue is None else list(frame.groupby(hue, sort=False))
    for label, group in groups:
        ok = group[group["status"] == "ok"]
        line, = ax.plot(ok[x], 100 * ok[value], "o-", label=None if hue is None else f"{hue} = {label}")
        bad = group[group["status"] != "ok"]
        if len(bad):
            ax.plot(bad[x], np.zeros(len(bad)), "x", color=line.get_color(), markersize=9,
                    label=f"{'failed / diverged' if hue is None else f'{label}: failed / diverged'}")
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=x, ylabel=f"{value} (%)", title=title)
    ax.grid(alpha=0.3)
    if hue is not None or (frame["status"] != "ok").any():
        ax.legend(fontsize="small")
    return fig


def plot_heatmap(table: Any, *, title: str = "", fmt: str = "{:.1%}", statuses: Any = None) -> Figure:
    """A heat map of a two-way table (rows x columns, values in [0, 1]) with the number in every cell.

    Inputs:
        table: a DataFrame such as `frame.pivot(index="activation", columns="loss", values="val_acc")`.
        statuses: optional table of the same shape; a cell whose status is not "ok" shows the status
            (e.g. "diverged") instead of a number.
    """
    values = table.to_numpy(dtype=float)
    fig = Figure(figsize=(1.6 * values.shape[1] + 2.2, 1.0 * values.shape[0] + 1.4), layout="constrained")
    ax = fig.subplots()
    finite = np.isfinite(values).any()
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=np.nanmin(values) if finite else 0,
                      vmax=np.nanmax(values) if finite else 1)
    ax.set_xticks(range(values.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(values.shape[0]), [str(r) for r in table.index])
    ax.set(xlabel=table.columns.name or "", ylabel=table.index.name or "", title=title)
    middle = np.nanmean(values) if finite else 0.0
    status_of = None if statuses is None else statuses.to_numpy()
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            status = None if status_of is None else status_of[i, j]
            v = values[i, j]
            text = status if status not in (None, "ok") else ("—" if math.isnan(v) else fmt.format(v))
            color = "black" if math.isfinite(v) and v >= middle else "white"
            ax.text(j, i, text, ha="center", va="center", color=color if math.isfinite(v) else "black")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig
