"""lablib.graphs: a computational graph drawn with its forward values and gradients on it."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from lablib.graphs import GraphNode, draw_graph

NODES = [GraphNode("x", "$x$", (0.0, 0.0), 2.0, -0.5), GraphNode("z", "$z$", (2.0, 0.0), 1.5, 0.25),
         GraphNode("L", "$L$", (4.0, 0.0), 0.125)]


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_every_value_and_gradient_is_written_on_the_graph():
    fig = draw_graph(NODES, [("x", "z", "w = 0.75"), ("z", "L")], title="tiny")
    shown = texts(fig)
    for expected in ["2", "1.5", "0.125", "∂L -0.5", "∂L +0.25", "w = 0.75", "$x$", "$z$", "$L$"]:
        assert expected in shown, (expected, shown)
    assert not any(t.startswith("∂L") and "0.125" in t for t in shown)  # L has no gradient given
    assert sum(isinstance(p, Circle) for p in fig.axes[0].patches) == 3
    arrows = [t for t in fig.axes[0].texts if getattr(t, "arrow_patch", None) is not None]
    assert len(arrows) == 2
    assert fig.axes[0].get_title() == "tiny"


def test_a_figure_is_returned_and_pyplot_is_not_touched():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = draw_graph(NODES, [])
    assert isinstance(fig, Figure) and plt.get_fignums() == before


def test_bad_graphs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"edge \('x', 'y'\) refers to \['y'\].*the nodes are \['L', 'x', 'z'\]"):
        draw_graph(NODES, [("x", "y")])
    with pytest.raises(ValueError, match="two nodes are named 'x'"):
        draw_graph([*NODES, GraphNode("x", "x again", (1.0, 1.0), 0.0)], [])


def test_it_draws_on_an_axes_it_is_given():
    fig = Figure()
    ax = fig.subplots()
    assert draw_graph(NODES, [("x", "z")], ax=ax) is fig
    assert "1.5" in [t.get_text() for t in ax.texts]
