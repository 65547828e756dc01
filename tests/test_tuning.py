"""lablib.tuning: the parallel, cached grid engine behind notebook 05.

The "student code" here is built the way notebooks build it: classes defined by exec in a module
that cannot be imported (as `use_notebook` does), and a train function defined in `__main__` (a
notebook cell). Workers must rebuild both from their code, never import them by name.
"""

from __future__ import annotations

import math
import types
import warnings

import numpy as np
import pytest

from lablib import tuning
from lablib.tuning import DIVERGED, FAILED, OK, GridData, code_fingerprint, run_grid

STUDENT_CODE = '''
import numpy as np

class Ridge:
    """A one-layer linear classifier trained by gradient descent: enough to have a result."""

    def __init__(self, dim, classes, rng):
        self.W = rng.standard_normal((dim, classes)) * 0.01

    def step(self, x, y, lr):
        scores = x @ self.W
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(len(y)), y] + 1e-12))
        p[np.arange(len(y)), y] -= 1.0
        self.W -= lr * x.T @ p / len(y)
        return loss

    def accuracy(self, x, y):
        return float(np.mean(np.argmax(x @ self.W, axis=1) == y))
'''

TRAIN_CELL = '''
import numpy as np

EPOCHS = 5

def train(config, data):
    if config.get("explode"):
        raise ValueError("this configuration cannot be built")
    rng = np.random.default_rng(config.get("seed", 0))
    model = student.Ridge(data.x_train.shape[1], 3, rng)
    for _ in range(EPOCHS):
        loss = model.step(data.x_train, data.y_train, config["lr"])
    return {"val_acc": model.accuracy(data.x_val, data.y_val), "train_loss": loss, "W": model.W}
'''


def notebook_module(name: str, source: str) -> types.ModuleType:
    """A module like the ones use_notebook returns: exec'd code, not importable by name."""
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), vars(module))  # noqa: S102 - the test's own code
    return module


def notebook_function(source: str = TRAIN_CELL, student_source: str = STUDENT_CODE, name: str = "train"):
    """A function defined in a notebook cell (`__main__`) that uses a use_notebook-style module."""
    scope = {"__name__": "__main__", "student": notebook_module("notebook_student", student_source)}
    exec(compile(source, "<cell train>", "exec"), scope)  # noqa: S102
    return scope[name]


@pytest.fixture(scope="module")
def data() -> GridData:
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 6)) * 3
    y = rng.integers(0, 3, 300)
    x = centers[y] + rng.standard_normal((300, 6))
    return GridData(x[:200], y[:200], x[200:], y[200:], name="blobs")


GRID = [{"lr": lr, "seed": s} for lr in (0.01, 0.1, 1.0) for s in (0, 1)]


def summary(results):
    return [(r.config, r.status, r.val_acc, r.train_loss) for r in results]


def test_parallel_results_equal_the_sequential_ones_and_come_back_in_grid_order(data, tmp_path):
    train = notebook_function()
    sequential = run_grid(train, GRID, data, n_jobs=1, cache_dir=False, progress=False)
    parallel = run_grid(train, GRID, data, n_jobs=2, cache_dir=False, progress=False)
    assert [r.config for r in parallel] == GRID
    assert summary(parallel) == summary(sequential)
    assert all(r.status == OK for r in parallel) and parallel.trained == len(GRID)
    assert np.array_equal(parallel[3].output["W"], sequential[3].output["W"])
    assert max(r.val_acc for r in parallel) > 0.9


def test_the_longest_runs_start_first_and_the_results_keep_the_grid_order(data, monkeypatch):
    """Started in the grid's order, a grid that ends with its widest network leaves one core idle while
    that run trains alone; longest first, the last runs to start are the short ones."""
    grid = [{"hidden": (w,)} for w in (32, 64, 128, 256)] + [{"hidden": (512, 256)}]
    order = []
    recorded = run_grid(lambda config, data: order.append(config["hidden"]) or {"val_acc": 1.0}, grid, data,
                        n_jobs=1, cache_dir=False, progress=False)
    assert order == [(512, 256), (256,), (128,), (64,), (32,)]
    assert [r.config for r in recorded] == grid
    order.clear()
    run_grid(lambda config, data: order.append(config["hidden"]) or {"val_acc": 1.0}, grid, data, n_jobs=1,
             cache_dir=False, progress=False, cost=None)
    assert order == [c["hidden"] for c in grid]

    # in parallel, the workers are handed the runs in that order (which worker starts first is the OS's
    # business: start times across cold workers do not say what was dispatched first)
    handed = []
    real_parallel = tuning.joblib.Parallel

    class RecordingParallel(real_parallel):
        def __call__(self, tasks):
            def recorded():
                for task in tasks:
                    handed.append(task[1][1]["hidden"])  # delayed(_run_one)(train, config, ...)
                    yield task
            return super().__call__(recorded())

    monkeypatch.setattr(tuning.joblib, "Parallel", RecordingParallel)
    parallel = run_grid(notebook_function(), [{**c, "lr": 0.1} for c in grid], data, n_jobs=2, cache_dir=False,
                        progress=False)
    assert handed == [(512, 256), (256,), (128,), (64,), (32,)]
    assert [r.config["hidden"] for r in parallel] == [c["hidden"] for c in grid] and all(r.ok for r in parallel)


def test_estimated_cost_ranks_what_trains_longer_higher(data):
    cost = tuning.estimated_cost
    assert cost({"hidden": (512,)}, data) > cost({"hidden": (64,)}, data)
    assert cost({"hidden": (256, 128)}, data) > cost({"hidden": (256,)}, data)
    assert cost({"hidden": 128}, data) == cost({"hidden": (128,)}, data) == cost({"hidden": [128]}, data)
    assert cost({"hidden": (128,), "epochs": 20}, data) == pytest.approx(2 * cost({"hidden": (128,), "epochs": 10}, data))
    assert cost({"hidden": (128,), "batch": 10}, data) > cost({"hidden": (128,), "batch": 100}, data)
    assert cost({"hidden": (128,), "batch_size": 10}, data) == cost({"hidden": (128,), "batch": 10}, data)
    # what it cannot read costs the same as anything else: such grids start in their own order
    assert cost({"lr": 0.1}, data) == cost({"lr": 1.0, "activation": "relu", "hidden": "wide", "epochs": "many"}, data)
    bigger = GridData(np.vstack([data.x_train] * 2), np.concatenate([data.y_train] * 2), data.x_val, data.y_val)
    assert cost({"hidden": (64,)}, bigger) == pytest.approx(2 * cost({"hidden": (64,)}, data))


def test_a_rerun_loads_every_result_from_the_cache(data, tmp_path, monkeypatch):
    train = notebook_function()
    first = run_grid(train, GRID, data, n_jobs=2, cache_dir=tmp_path, progress=False)
    assert first.trained == len(GRID) and not any(r.cached for r in first)
    assert len(list(tmp_path.glob("*.pkl"))) == len(GRID)
    with monkeypatch.context() as patch:  # no worker may be started: every result comes from the cache
        patch.setattr(tuning.joblib, "Parallel", lambda *a, **k: pytest.fail("a cached grid started workers"))
        again = run_grid(notebook_function(), GRID, data, n_jobs=2, cache_dir=tmp_path, progress=False)
    assert again.trained == 0 and all(r.cached for r in again)
    assert summary(again) == summary(first)
    grown = run_grid(train, GRID + [{"lr": 0.5, "seed": 0}], data, n_jobs=1, cache_dir=tmp_path, progress=False)
    assert grown.trained == 1 and grown[-1].status == OK


@pytest.mark.parametrize("what, changed", [
    ("the student's class", lambda t, s: (t, s.replace("self.W -= lr * x.T @ p / len(y)", "self.W -= 2 * lr * x.T @ p / len(y)"))),
    ("the notebook's train function", lambda t, s: (t.replace('config["lr"])', 'config["lr"] / 2)'), s)),
    ("a constant the train function reads", lambda t, s: (t.replace("EPOCHS = 5", "EPOCHS = 6"), s)),
])
def test_an_edited_implementation_retrains(data, tmp_path, what, changed):
    run_grid(notebook_function(), GRID[:2], data, n_jobs=1, cache_dir=tmp_path, progress=False)
    train_source, student_source = changed(TRAIN_CELL, STUDENT_CODE)
    edited = run_grid(notebook_function(train_source, student_source), GRID[:2], data, n_jobs=1, cache_dir=tmp_path,
                      progress=False)
    assert edited.trained == 2, f"editing {what} should retrain"


def test_comments_and_other_data_or_profile(data, tmp_path):
    base = code_fingerprint(notebook_function())
    commented = STUDENT_CODE.replace("scores = x @ self.W\n", "scores = x @ self.W  # the class scores\n")
    assert code_fingerprint(notebook_function(student_source=commented)) == base
    assert code_fingerprint(notebook_function()) == base  # rebuilt classes: same code, same key
    run_grid(notebook_function(), GRID[:1], data, n_jobs=1, cache_dir=tmp_path, progress=False)
    assert run_grid(notebook_function(), GRID[:1], data, n_jobs=1, cache_dir=tmp_path, progress=False,
                    profile="other").trained == 1
    other = GridData(data.x_train[:-1], data.y_train[:-1], data.x_val, data.y_val, name="blobs")
    assert run_grid(notebook_function(), GRID[:1], other, n_jobs=1, cache_dir=tmp_path, progress=False).trained == 1


FAILING_CELL = TRAIN_CELL.replace("    return {", '''    if config.get("nan"):
        loss = float("nan")
    if config.get("stop"):
        raise Diverged("loss became inf at epoch 2")
    return {''').replace("import numpy as np", "import numpy as np\nfrom lablib.tuning import Diverged")


def test_failing_and_diverging_runs_are_recorded_and_the_grid_goes_on(data):
    grid = [{"lr": 0.1}, {"lr": 0.1, "explode": True}, {"lr": 0.1, "nan": True}, {"lr": 0.1, "stop": True},
            {"lr": 1.0}]
    results = run_grid(notebook_function(FAILING_CELL), grid, data, n_jobs=2, cache_dir=False, progress=False)
    assert [r.status for r in results] == [OK, FAILED, DIVERGED, DIVERGED, OK]
    assert results[1].error == "ValueError: this configuration cannot be built"
    assert "nan" in results[2].error and "inf at epoch 2" in results[3].error
    frame = results.frame()
    assert list(frame["status"]) == [OK, FAILED, DIVERGED, DIVERGED, OK]
    assert math.isnan(frame["val_acc"][1]) and frame["val_acc"][4] > 0.5
    assert "2 diverged" in repr(results)


def test_a_train_function_that_returns_no_accuracy_fails_with_a_clear_error(data):
    results = run_grid(lambda config, data: 0.9, [{"lr": 1}], data, n_jobs=1, cache_dir=False, progress=False)
    assert results[0].status == FAILED and "return a dict with 'val_acc'" in results[0].error


INTERRUPTED_CELL = TRAIN_CELL.replace('    if config.get("explode"):', '''    if config.get("interrupt"):
        raise KeyboardInterrupt
    if config.get("explode"):''')


def test_an_interrupted_grid_keeps_what_finished_and_the_rerun_trains_the_rest(data, tmp_path):
    grid = [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3, "interrupt": True}, {"lr": 0.4}]
    train = notebook_function(INTERRUPTED_CELL)
    stopped = run_grid(train, grid, data, n_jobs=1, cache_dir=tmp_path, progress=False)  # the stop button
    assert stopped.interrupted and [r is not None for r in stopped] == [True, True, False, False]
    assert "interrupted after 2 of 4" in repr(stopped)
    assert len(list(tmp_path.glob("*.pkl"))) == 2 and not list(tmp_path.glob(".*tmp"))
    grid[2] = {"lr": 0.3}
    resumed = run_grid(train, grid, data, n_jobs=1, cache_dir=tmp_path, progress=False)
    assert resumed.trained == 2 and [r.cached for r in resumed] == [True, True, False, False]


def test_a_corrupt_cache_file_is_retrained(data, tmp_path):
    run_grid(notebook_function(), GRID[:1], data, n_jobs=1, cache_dir=tmp_path, progress=False)
    (file,) = tmp_path.glob("*.pkl")
    file.write_bytes(b"not a pickle")
    assert run_grid(notebook_function(), GRID[:1], data, n_jobs=1, cache_dir=tmp_path, progress=False).trained == 1


def test_stop_if_diverged_raises_only_on_a_non_finite_loss():
    history = types.SimpleNamespace(train_loss=[1.0, 0.5], epoch=[1, 2])
    tuning.stop_if_diverged(history)
    history.train_loss.append(float("inf"))
    history.epoch.append(3)
    with pytest.raises(tuning.Diverged, match="inf at epoch 3"):
        tuning.stop_if_diverged(history)


def test_bad_input_gets_a_clear_error(data):
    with pytest.raises(ValueError, match="lengths differ"):
        GridData(data.x_train, data.y_train[:-1], data.x_val, data.y_val)
    with pytest.raises(TypeError, match="GridData"):
        run_grid(notebook_function(), GRID, (data.x_train, data.y_train), cache_dir=False)


def test_a_scheduler_without_dask_installed_says_what_to_install(data, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith(("dask", "distributed")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    monkeypatch.setenv(tuning.SCHEDULER_VAR, "tcp://127.0.0.1:1")
    with pytest.raises(ImportError, match=r"backprop-lab\[dask\].*LABLIB_DASK_SCHEDULER|LABLIB_DASK_SCHEDULER.*backprop-lab\[dask\]"):
        run_grid(notebook_function(), GRID[:1], data, cache_dir=False, progress=False)


def test_the_same_grid_on_a_two_worker_dask_cluster_equals_the_local_run(data, tmp_path, monkeypatch):
    distributed = pytest.importorskip("distributed", reason="the optional dask extra is not installed")
    train = notebook_function()
    local = run_grid(train, GRID, data, n_jobs=2, cache_dir=False, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        on_cluster = run_grid(train, GRID, data, scheduler=cluster.scheduler_address, cache_dir=tmp_path,
                              progress=False)
        assert summary(on_cluster) == summary(local) and on_cluster.trained == len(GRID)
        monkeypatch.setenv(tuning.SCHEDULER_VAR, cluster.scheduler_address)  # the instructor's one setting
        from_env = run_grid(train, GRID + [{"lr": 0.5, "seed": 0}], data, cache_dir=tmp_path, progress=False)
        assert from_env.trained == 1 and summary(from_env)[:-1] == summary(local)


@pytest.mark.slow
def test_the_benchmark_prints_its_figures():
    """benchmarks/tuning.py runs end to end on a tiny grid and prints every figure the closing note quotes."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "benchmarks/tuning.py", "--configs", "2", "--train", "200", "--val", "50",
                           "--epochs", "1", "--jobs", "2"], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    for label in ("sequential, BLAS threads free", "sequential, 1 BLAS thread", "parallel (run_grid, cold workers)",
                  "parallel, warm workers, grid order", "parallel (run_grid, warm workers)",
                  "cached re-run of the whole grid"):
        assert re.search(rf"^{re.escape(label)}\s+[\d.]+ s", done.stdout, re.M), done.stdout
    assert re.search(r"speed-up over sequential: [\d.]+x \(BLAS free\), [\d.]+x \(1 BLAS thread\)", done.stdout)
    assert "parallel results equal the sequential (1 BLAS thread) ones: True" in done.stdout
    assert re.search(r"bound for 2 processes over the BLAS-free loop: 2 x [\d.]+ / [\d.]+ = [\d.]+x", done.stdout)


@pytest.mark.filterwarnings("ignore:.*cancelled:UserWarning")  # joblib says that it stopped the workers
def test_an_interrupt_while_workers_run_returns_what_finished(data, tmp_path, monkeypatch):
    """The stop button in Jupyter raises KeyboardInterrupt in the notebook's process while it waits for the
    workers: simulated here as arriving with the third result, in the parallel (loky) mode."""
    stored = []
    real_store = tuning._store

    def store_then_interrupt(path, result):
        if len(stored) == 2:
            raise KeyboardInterrupt
        stored.append(path)
        real_store(path, result)

    monkeypatch.setattr(tuning, "_store", store_then_interrupt)
    stopped = run_grid(notebook_function(), GRID, data, n_jobs=2, cache_dir=tmp_path, progress=False)
    assert stopped.interrupted and sum(r is not None for r in stopped) == 2
    assert sorted(tmp_path.glob("*.pkl")) == sorted(stored)
    monkeypatch.setattr(tuning, "_store", real_store)
    resumed = run_grid(notebook_function(), GRID, data, n_jobs=2, cache_dir=tmp_path, progress=False)
    assert resumed.trained == len(GRID) - 2 and not resumed.interrupted


def test_a_configuration_that_is_not_a_dict_is_refused(data):
    with pytest.raises(TypeError, match="must be a dict"):
        run_grid(notebook_function(), [0.1, 0.01], data, cache_dir=False)


def test_a_run_that_overflows_is_recorded_as_diverged_without_numpy_warnings(data):
    def overflowing(config, data):
        loss = np.exp(np.array([1000.0]))[0] * 0.0  # inf * 0: overflow, then an invalid value
        return {"val_acc": 0.1, "train_loss": loss}

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning would turn into an exception: a FAILED run
        results = run_grid(overflowing, [{"lr": 1.0}], data, n_jobs=1, cache_dir=False, progress=False)
    assert [r.status for r in results] == [DIVERGED], results[0].error


def test_the_progress_bar_says_what_the_last_run_did():
    assert tuning._outcome(tuning.RunResult({}, OK, 0.851)) == "ok 85.10%"
    assert tuning._outcome(tuning.RunResult({}, FAILED, error="NotImplementedError: write it")) == "failed: NotImplementedError"
    assert tuning._outcome(tuning.RunResult({}, DIVERGED, error="training loss nan at epoch 2")) == "diverged: loss not finite"
