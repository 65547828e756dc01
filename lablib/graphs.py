"""Draw a small computational graph with its numbers on it: each node's forward value and its gradient.

Notebook 03 opens with a worked example (a 2-2-2 network traced node by node). Printed, twenty
numbers are a wall; drawn where they live on the graph, the chain rule can be followed with a
finger: the gradient of a node is the sum over its outgoing edges of (local derivative × gradient
of the node the edge leads to). The notebook computes the numbers; this module only draws them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["GraphNode", "draw_graph", "NODE_RADIUS"]

#: Radius of a node's circle, in the data units of the positions.
NODE_RADIUS = 0.32
#: A white box behind the numbers, so that an arrow passing under one does not hide it.
_LABEL_BOX = {"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.9}


@dataclass(frozen=True)
class GraphNode:
    """One node: `name` (unique, used by edges), `label` (shown in the circle, may be LaTeX),
    `xy` (position), `value` (forward value) and `grad` (∂L/∂node, None when not computed)."""

    name: str
    label: str
    xy: tuple[float, float]
    value: float
    grad: float | None = None


def draw_graph(
    nodes: Sequence[GraphNode],
    edges: Sequence[tuple[str, str] | tuple[str, str, str]],
    title: str = "",
    figsize: tuple[float, float] = (11.0, 5.0),
    ax: Axes | None = None,
) -> Figure:
    """A figure of the graph: nodes as circles with their value above (black) and gradient below (red);
    edges as arrows in the forward direction, with an optional label (a weight, say) at their middle.

    Inputs:
        nodes: the nodes; names must be unique.
        edges: (from, to) or (from, to, label), by node name.
        ax: the Axes to draw on (e.g. from `plt.subplots()`, which a notebook shows inline); default a
            new Figure of `figsize`, not registered with pyplot.
    Returns:
        the Figure drawn on.
    """
    by_name: dict[str, GraphNode] = {}
    for node in nodes:
        if node.name in by_name:
            raise ValueError(f"two nodes are named {node.name!r}: give every node its own name")
        by_name[node.name] = node
    for edge in edges:
        missing = [end for end in edge[:2] if end not in by_name]
        if missing:
            raise ValueError(f"edge {edge[:2]} refers to {missing}, which is not a node; "
                             f"the nodes are {sorted(by_name)}")
    if ax is None:
        ax = Figure(figsize=figsize, layout="constrained").subplots()
    fig = ax.figure
    for edge in edges:
        start, end = by_name[edge[0]].xy, by_name[edge[1]].xy
        ax.annotate("", xy=end, xytext=start,
                    arrowprops=dict(arrowstyle="-|>", color="0.55", shrinkA=28, shrinkB=28, lw=1.2))
        if len(edge) == 3 and edge[2]:
            mid = (0.58 * start[0] + 0.42 * end[0], 0.58 * start[1] + 0.42 * end[1])
            ax.text(*mid, edge[2], fontsize=8, color="0.25", ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))
    for node in nodes:
        x, y = node.xy
        ax.add_patch(_circle((x, y)))
        ax.text(x, y, node.label, ha="center", va="center", fontsize=11, fontweight="bold")
        ax.text(x, y + NODE_RADIUS + 0.08, f"{node.value + 0.0:.4g}", ha="center", va="bottom", fontsize=9,
                bbox=_LABEL_BOX, zorder=3)
        if node.grad is not None:
            ax.text(x, y - NODE_RADIUS - 0.08, f"∂L {node.grad + 0.0:+.4g}", ha="center", va="top", fontsize=9,
                    color="#cf222e", bbox=_LABEL_BOX, zorder=3)
    xs = [n.xy[0] for n in nodes] or [0.0]
    ys = [n.xy[1] for n in nodes] or [0.0]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.9, max(ys) + 0.9)
    ax.set_aspect("equal")
    ax.axis("off")
    if title:
        ax.set_title(title)
    ax.text(0.0, 0.0, "black: forward value   red: gradient ∂L/∂(node)", transform=ax.transAxes, fontsize=8,
            color="0.35", va="bottom")
    return fig


def _circle(xy: tuple[float, float]):  # noqa: ANN202 - a matplotlib patch
    from matplotlib.patches import Circle

    return Circle(xy, NODE_RADIUS, facecolor="#ddf4ff", edgecolor="#0969da", lw=1.3)
