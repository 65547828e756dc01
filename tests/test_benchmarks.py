"""The benchmark scripts still run against the current notebooks and lablib.

Benchmarks print figures and assert nothing about speed (machines are noisy); these tests only make
sure each script runs end to end on a tiny configuration and prints the figures it promises, so a
change to a notebook or to lablib cannot silently break the commands the README and the closing
notes quote.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, runnable_here

BENCHMARKS = ROOT / "benchmarks"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(*args: str, timeout: int = 300) -> str:
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def speed():
    return load_script("speed")


def test_speed_trains_the_solution_as_notebook_04_does(speed):
    layers, losses, training = speed.load_solutions()
    model = speed.build_numpy(layers, training, [784, 16, 10])
    assert [type(m).__name__ for m in model.layers] == ["Linear", "ReLU", "Linear"]
    assert all(p.data.dtype == np.float32 for p in model.parameters())
    assert model.layers[0].needs_input_grad is False and model.layers[2].needs_input_grad is True
    assert speed.all_dx_state(model, training, losses)[0].layers[0].needs_input_grad is True
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((600, 784), dtype=np.float32), rng.integers(0, 10, 600)
    state = speed.numpy_state(model, training, losses)
    seconds, loss = speed.epoch_numpy(state, training.train_step, x, y, 128, np.random.default_rng(1))
    assert seconds > 0 and np.isfinite(loss)
    assert model.layers[0].W.grad is None  # the copy trained, not the model it was built from


@pytest.mark.slow
def test_speed_runs_end_to_end_and_prints_every_figure():
    pytest.importorskip("torch", reason="the speed benchmark compares with PyTorch (the crosscheck extra)")
    out = run_script("benchmarks/speed.py", "--threads", "1", "--nets", "784-16-10", "--batch", "256",
                     "--rounds", "1", "--all-dx")
    row = re.search(r"^\s+1 784-16-10\s+256\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", out, re.MULTILINE)
    assert row, out
    numpy_s, torch_s, ratio, bound = map(float, row.groups())
    assert min(numpy_s, torch_s, ratio, bound) > 0
    agreement = re.search(r"losses differ by <= ([\d.e+-]+), then the weights by <= ([\d.e+-]+)", out)
    assert agreement and float(agreement[1]) < 1e-4 and float(agreement[2]) < 1e-4, out
    assert "L1 dout @ W.T (skipped)" in out and "--- profile" in out and "fit adds" in out


@pytest.mark.slow
def test_accuracy_runs_notebook_04_and_reads_its_result():
    notebook = ROOT / "notebooks" / "04_training.ipynb"
    if not runnable_here([notebook]):
        pytest.skip("Fashion-MNIST is not installed here (notebook 04 would try to download it)")
    out = run_script("benchmarks/accuracy.py", "--profile", "grade")
    assert re.search(r"test accuracy\s+\d+\.\d\d %", out) and "epoch kept" in out, out
