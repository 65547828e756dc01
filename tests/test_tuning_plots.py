"""lablib.tuning_plots: the study plots of notebook 05 draw what the table says."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lablib.tuning_plots import plot_heatmap, plot_study


def matrix() -> pd.DataFrame:
    rows = [(a, l, acc, status) for a, l, acc, status in [
        ("relu", "ce", 0.88, "ok"), ("relu", "hinge", math.nan, "diverged"), ("sigmoid", "ce", 0.81, "ok"),
        ("sigmoid", "hinge", 0.79, "ok")]]
    return pd.DataFrame(rows, columns=["activation", "loss", "val_acc", "status"])


def test_heatmap_writes_every_number_and_the_status_of_a_diverged_run():
    frame = matrix()
    table = frame.pivot(index="activation", columns="loss", values="val_acc")
    statuses = frame.pivot(index="activation", columns="loss", values="status")
    fig = plot_heatmap(table, title="activation x loss", statuses=statuses)
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == sorted(["88.0%", "diverged", "81.0%", "79.0%"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["ce", "hinge"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["relu", "sigmoid"]
    assert ax.get_xlabel() == "loss" and ax.get_ylabel() == "activation"
    assert "—" in [t.get_text() for t in plot_heatmap(table).axes[0].texts]  # no statuses: a dash for NaN


def test_study_lines_leave_out_failed_runs_and_mark_them():
    frame = pd.DataFrame({"lr": [0.001, 0.01, 0.1, 0.1], "depth": [1, 1, 1, 2], "val_acc": [0.5, 0.8, math.nan, 0.7],
                          "status": ["ok", "ok", "diverged", "ok"]})
    ax = plot_study(frame, "lr", hue="depth", logx=True).axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["depth = 1"].get_ydata()) == [50.0, 80.0]
    assert list(lines["1: failed / diverged"].get_xdata()) == [0.1]
    assert ax.get_xscale() == "log"
    with pytest.raises(KeyError, match="no column 'width'"):
        plot_study(frame, "width")
