"""lablib.plotting's pictures of a network (notebook 06): image grids, heat maps, 2-D scatters by class.

Each returns a Figure, prints nothing, and shows signed values on a colour scale centred at zero.
"""

import numpy as np
import pytest
from matplotlib.figure import Figure

from lablib.plotting import (DIVERGING_CMAP, IMAGE_CMAP, plot_heatmaps, plot_image_grid, plot_scatter_2d,
                             symmetric_limit)


def image_panels(fig):
    return [ax for ax in fig.axes if ax.images and ax.images[0].get_array().ndim == 2 and ax.get_label() != "<colorbar>"]


def test_symmetric_limit_is_the_largest_magnitude_and_never_zero():
    assert symmetric_limit(np.array([[-3.0, 1.0], [2.0, 0.5]])) == 3.0
    assert symmetric_limit(np.array([0.5, np.nan, -np.inf])) == 0.5
    assert symmetric_limit(np.zeros((2, 2))) == 1.0
    assert symmetric_limit(np.array([])) == 1.0


def test_weight_grid_is_centred_at_zero_with_one_colour_bar(capsys):
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((10, 784)) + 0.7  # mostly positive: the limits must still be symmetric
    fig = plot_image_grid(weights, titles=[f"unit {i}" for i in range(10)], ncols=4,
                          colorbar_label="weight / max |weight|", title="first layer")
    assert isinstance(fig, Figure)
    panels = image_panels(fig)
    assert len(panels) == 10
    limit = np.abs(weights).max()
    for ax in panels:
        low, high = ax.images[0].get_clim()
        assert low == pytest.approx(-limit) and high == pytest.approx(limit)
        assert ax.images[0].get_cmap().name == DIVERGING_CMAP
        assert ax.images[0].get_array().shape == (28, 28)
    assert [ax.get_title() for ax in panels] == [f"unit {i}" for i in range(10)]
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 1 and colorbars[0].get_ylabel() == "weight / max |weight|"
    assert fig._suptitle.get_text() == "first layer"
    assert capsys.readouterr() == ("", "")
    fig.savefig(__import__("io").BytesIO(), format="png")  # it renders


def test_data_images_are_grey_with_their_own_range_and_no_colour_bar():
    images = np.arange(3 * 4 * 4, dtype=np.uint8).reshape(3, 4, 4)
    fig = plot_image_grid(images, diverging=False, titles=["a", "b", "c"])
    panels = image_panels(fig)
    assert len(panels) == 3
    assert all(ax.images[0].get_clim() == (0.0, 47.0) and ax.images[0].get_cmap().name == IMAGE_CMAP for ax in panels)
    assert not [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    big = plot_image_grid(images[:1], diverging=False, panel_inches=3.0)
    assert big.get_size_inches()[0] == pytest.approx(3.0)  # one panel of the width asked for


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 10)), "not a square image"),
    (np.zeros((0, 4, 4)), "non-empty"),
    (np.zeros(5), "shape"),
])
def test_image_grid_refuses_what_is_not_images(bad, message):
    with pytest.raises(ValueError, match=message):
        plot_image_grid(bad)


def test_image_grid_wants_one_title_per_image():
    with pytest.raises(ValueError, match="2 titles for 3 images"):
        plot_image_grid(np.zeros((3, 4, 4)), titles=["a", "b"])


def test_heatmaps_one_panel_per_matrix_each_centred_and_labelled(capsys):
    rng = np.random.default_rng(1)
    matrices = [rng.standard_normal((6, 4)) + 1.0, 0.01 * rng.standard_normal((4, 3)), np.zeros((3, 2))]
    fig = plot_heatmaps(matrices, ["W0", "W1", "W2"], title="weights")
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in panels] == ["W0", "W1", "W2"]
    for ax, m in zip(panels, matrices):
        low, high = ax.images[0].get_clim()
        assert low == -high and high == pytest.approx(symmetric_limit(m))  # each its own scale
        assert ax.images[0].get_array().shape == m.shape
        assert ax.get_xlabel() == "output unit" and ax.get_ylabel() == "input unit"
    assert len([ax for ax in fig.axes if ax.get_label() == "<colorbar>"]) == 3
    assert capsys.readouterr() == ("", "")


def test_heatmaps_refuse_mismatched_names_and_non_matrices():
    with pytest.raises(ValueError, match="one name per matrix"):
        plot_heatmaps([np.zeros((2, 2))], ["a", "b"])
    with pytest.raises(ValueError, match="2-D"):
        plot_heatmaps([np.zeros(3)], ["bias"])


def test_scatter_colours_each_class_and_names_it_in_the_legend(capsys):
    rng = np.random.default_rng(2)
    points, labels = rng.standard_normal((30, 2)), np.repeat([0, 2, 3], 10)
    names = ["T-shirt", "Trouser", "Pullover", "Dress"]
    fig = plot_scatter_2d(points, labels, names, axis_labels=("PC 1 (40 %)", "PC 2 (20 %)"), title="activations")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["T-shirt", "Pullover", "Dress"]  # classes present
    assert ax.get_xlabel() == "PC 1 (40 %)" and ax.get_ylabel() == "PC 2 (20 %)" and ax.get_title() == "activations"
    offsets = [c.get_offsets() for c in ax.collections]
    assert [len(o) for o in offsets] == [10, 10, 10]
    np.testing.assert_array_equal(offsets[1], points[10:20])
    colours = {tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in ax.collections}
    assert len(colours) == 3
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("points, labels, message", [
    (np.zeros((4, 3)), np.zeros(4, int), "shape \\(N, 2\\)"),
    (np.zeros((4, 2)), np.zeros(3, int), "one per point"),
    (np.zeros((2, 2)), np.array([0, 4]), "0 … 3"),
])
def test_scatter_refuses_bad_input(points, labels, message):
    with pytest.raises(ValueError, match=message):
        plot_scatter_2d(points, labels, ["a", "b", "c", "d"])


def test_importing_lablib_does_not_import_matplotlib():
    """Notebook 05's grid workers rebuild notebook 04's module, which names lablib's plot functions: they
    never draw, and importing matplotlib cost each worker ~0.4 s at its start."""
    import subprocess
    import sys

    code = ("import sys, lablib, lablib.plotting, lablib.training, lablib.tuning, lablib.data, lablib.reuse; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
