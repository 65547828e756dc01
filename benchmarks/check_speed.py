"""How long the gradient checks take: one big layer, a 784-256-10 network, and whole notebooks.

    .venv/bin/python benchmarks/check_speed.py

Prints figures and ratios; it asserts nothing (machines are noisy). The layers are the reference
solutions, loaded from the source notebooks' answer cells.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lablib import Module, cells, check_layer

ROOT = Path(__file__).resolve().parent.parent


def solutions(stem: str) -> dict:
    nb = cells.load(ROOT / "notebooks" / f"{stem}.ipynb")
    skip = {cells.grade_id(c): "" for c in nb.cells if c.cell_type == "code" and cells.points(c) > 0}
    scope: dict = {}
    cells.run_cells(nb, replace=skip, namespace=scope)
    return scope


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    ns = solutions("01_layers")
    Linear, ReLU = ns["Linear"], ns["ReLU"]
    rng = np.random.default_rng(0)

    class Network(Module):
        def __init__(self):
            self.layers = [Linear(784, 256, rng=rng), ReLU(), Linear(256, 10, rng=rng)]

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

        def backward(self, dout):
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
            return dout

    print("check_layer cost (best of 3)")
    for name, make, n in [("Linear(784, 256)", lambda: Linear(784, 256, rng=rng), 16),
                          ("Linear(784, 256)", lambda: Linear(784, 256, rng=rng), 64),
                          ("784-256-10 network", Network, 64)]:
        layer, x = make(), rng.standard_normal((n, 784))
        seconds, report = best_of(lambda: check_layer(layer, x))
        entries = x.size + sum(p.data.size for p in layer.parameters())
        forward_s, _ = best_of(lambda: layer.forward(x), 5)
        print(f"  {name:<20} batch {n:>3}: {seconds * 1e3:7.1f} ms, passed={report.passed}, "
              f"{report.evaluations} forward calls; a full numeric gradient needs {2 * entries:,} "
              f"(~{2 * entries * forward_s:.0f} s, {2 * entries / report.evaluations:,.0f}x more)")

    print("graded cells run in-process (hidden tests included, best of 3)")
    for stem in ("01_layers", "02_losses", "03_backprop"):
        nb = cells.load(ROOT / "notebooks" / f"{stem}.ipynb")
        seconds, results = best_of(lambda: cells.run_cells(nb))
        graded = [r for r in results.values() if r.points]
        print(f"  {stem}: {seconds:.2f} s for {len(results)} cells, "
              f"{sum(r.passed for r in graded)}/{len(graded)} graded cells pass")

    print("graded (test) cells alone, in-process, hidden tests included (setup and answers run once before)")
    for stem in ("01_layers", "02_losses", "03_backprop"):
        print("  " + graded_cells_alone(stem))


def graded_cells_alone(stem: str) -> str:
    """Seconds each graded cell takes on the reference solutions: the check time of a notebook."""
    nb = cells.load(ROOT / "notebooks" / f"{stem}.ipynb")
    graded = [c for c in nb.cells if c.cell_type == "code" and cells.points(c) > 0]
    scope: dict = {}
    cells.run_cells(nb, replace={cells.grade_id(c): "" for c in graded}, namespace=scope)
    seconds = {}
    for cell in graded:
        start = time.perf_counter()
        exec(compile(cell.source, cells.grade_id(cell), "exec"), scope)  # noqa: S102 - the source's own test
        seconds[cells.grade_id(cell)] = time.perf_counter() - start
    slowest = max(seconds, key=seconds.get)
    return (f"{stem}: {sum(seconds.values()):.2f} s for {len(seconds)} graded cells, "
            f"slowest {slowest} {seconds[slowest]:.2f} s")


if __name__ == "__main__":
    main()
