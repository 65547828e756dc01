"""Run a grid of training configurations in parallel, cache every result on disk, scale out to Dask.

    results = run_grid(train_config, configs, data)      # all cores, one progress bar, cached
    results.frame()                                        # a pandas DataFrame: config, val_acc, status

`train(config, data)` is the notebook's own function: it builds and trains one configuration on
`data` (a `GridData`: training and validation arrays only, so nothing in a grid can see the test
set) and returns a mapping with at least `"val_acc"` (and, if it has one, `"train_loss"`; any other
keys are kept, e.g. the trained parameters).

What the engine adds, on joblib (what scikit-learn's searches stand on):

- **Parallel**: one loky worker process per core (`n_jobs`), one BLAS thread each, so that the
  workers do not fight over the cores; results arrive as they complete
  (`return_as="generator_unordered"`) and move one progress bar over the whole grid.
- **Longest first**: the runs start in decreasing order of `estimated_cost` (from the hidden
  widths, epochs and batch size a configuration names), so that the grid does not end with one
  worker training the widest network while the others wait. In given order, a grid of widths
  64-512 spends up to a third of its wall time on one core. Results keep the grid's order.
- **How workers get the student's code**: `train` and everything it uses (the classes that
  `use_notebook` defined from notebooks 01, 02, 04, the notebook's own functions) live in modules
  that cannot be imported by name (`__main__`, `notebook_04_training`). joblib sends `train` with
  cloudpickle, which pickles such functions, classes and modules *by value*: each worker rebuilds
  them from their code, nothing is imported by reference. (Tested with loky and with Dask.)
- **Cache**: each result is stored under `build/tuning/` (`cache_dir`) with a key made of the
  configuration, `code_fingerprint(train)` (the bytecode and constants of `train` and of every
  function, class and notebook module it reaches: the student's code, not its comments), the
  data's fingerprint, the profile and lablib's version. Re-running a grid loads what is there at
  once; editing an implementation changes the key, so the grid retrains. The notebook's process
  writes the results as they arrive (joblib's `Memory` would write them where the function runs:
  on a cluster, the worker's disk), atomically, so an interrupted grid keeps everything that
  finished, and the next run trains only the rest.
- **Failures**: a run that raises is recorded as `failed` (with the error), one whose loss or
  validation accuracy is not finite, or that raised `Diverged` (see `stop_if_diverged`), as
  `diverged`; the rest of the grid goes on.
- **A cluster**: given a Dask scheduler address (`scheduler=` or `$LABLIB_DASK_SCHEDULER`), the same
  grid runs on that cluster through joblib's Dask backend (optional extra: `pip install
  'backprop-lab[dask]'`). Large arguments (the data) are scattered to the workers once.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import joblib
import numpy as np
from tqdm.auto import tqdm

from .fingerprint import code_fingerprint

__all__ = [
    "GridData", "RunResult", "GridResults", "Diverged", "stop_if_diverged", "run_grid", "code_fingerprint",
    "SCHEDULER_VAR", "OK", "FAILED", "DIVERGED", "STATUSES", "default_cache_dir", "estimated_cost",
]

#: Environment variable naming a Dask scheduler ("tcp://host:8786"): grids then run on that cluster.
SCHEDULER_VAR = "LABLIB_DASK_SCHEDULER"
#: Sub-folder of the build folder that holds the cached results.
CACHE_FOLDER = "tuning"
#: Bump when the stored result format changes: older files are then ignored (retrained).
CACHE_VERSION = 1
#: BLAS threads per worker process: one, so that n workers use n cores without oversubscription.
WORKER_BLAS_THREADS = 1

OK, FAILED, DIVERGED = "ok", "failed", "diverged"
#: A run's status: trained, raised an exception, or its loss / accuracy stopped being finite.
STATUSES = (OK, FAILED, DIVERGED)


class Diverged(ArithmeticError):
    """Raised inside a run to stop it early: its loss is no longer finite."""


def stop_if_diverged(history: Any) -> None:
    """An `on_epoch_end` callback for `lablib.training.fit`: stop a run whose training loss is NaN or inf
    (instead of training the remaining epochs on NaN), so that the grid records it as diverged."""
    if history.train_loss and not math.isfinite(history.train_loss[-1]):
        raise Diverged(f"training loss {history.train_loss[-1]} at epoch {history.epoch[-1]}")


def default_cache_dir() -> Path:
    """`<build>/tuning`: the build folder is `$LABLIB_BUILD` or `<repo>/build` (git-ignored)."""
    from .grading import paths

    return paths.build_root() / CACHE_FOLDER


# --------------------------------------------------------------------------------------------------
# what trains: the data (the code's fingerprint is lablib.fingerprint's)


@dataclass(frozen=True, repr=False)
class GridData:
    """The arrays a grid trains and validates on: x_train (N, D), y_train (N,), x_val (M, D), y_val (M,).
    There is deliberately no test set here: choices are made on validation data."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    name: str = ""

    def __post_init__(self) -> None:
        if len(self.x_train) != len(self.y_train) or len(self.x_val) != len(self.y_val):
            raise ValueError(f"x and y lengths differ: train {len(self.x_train)} vs {len(self.y_train)}, "
                             f"val {len(self.x_val)} vs {len(self.y_val)}")

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of the four arrays (their bytes, dtypes and shapes) and the name."""
        return joblib.hash((self.name, self.x_train, self.y_train, self.x_val, self.y_val))

    def __repr__(self) -> str:
        return (f"GridData({self.name!r}: {len(self.y_train)} training, {len(self.y_val)} validation examples "
                f"of shape {self.x_train.shape[1:]}, {self.x_train.dtype})")


# --------------------------------------------------------------------------------------------------
# how long a run takes, roughly: the order in which the runs start

#: Per-step cost of a mini-batch (Python calls, small-matrix inefficiency), in multiply-adds per sample
#: times the batch size; and how much slower each multiply-add is at batch size b: (1 + SMALL_BATCH / b).
#: Fitted on notebook 04's MLP (one BLAS thread): batch 10 costs 2.7x batch 100 per image at width 128.
STEP_OVERHEAD, SMALL_BATCH = 1.5e6, 24.0


def _widths(hidden: Any) -> list[int]:
    if isinstance(hidden, (int, np.integer)):
        return [int(hidden)]
    if isinstance(hidden, (list, tuple)) and all(isinstance(h, (int, np.integer)) for h in hidden):
        return [int(h) for h in hidden]
    return []


def estimated_cost(config: Mapping[str, Any], data: GridData) -> float:
    """A relative estimate of how long `config` trains on `data`, only used to start the longest runs
    first: training images x epochs x multiply-adds per image (input -> `hidden` widths -> classes),
    made dearer by small batches. Keys it reads: "hidden" (an int or a tuple of ints), "epochs",
    "batch" or "batch_size"; a configuration without them costs the same as any other."""
    n_classes = int(np.max(data.y_train)) + 1 if len(data.y_train) else 1
    sizes = [data.x_train.shape[1] if data.x_train.ndim > 1 else 1, *_widths(config.get("hidden")), n_classes]
    macs = float(sum(a * b for a, b in zip(sizes[:-1], sizes[1:])))
    batch = config.get("batch", config.get("batch_size"))
    if isinstance(batch, (int, float, np.number)) and batch > 0:
        per_image = macs * (1 + SMALL_BATCH / batch) + STEP_OVERHEAD / batch
    else:
        per_image = macs
    epochs = config.get("epochs", 1)
    epochs = float(epochs) if isinstance(epochs, (int, float, np.number)) and epochs > 0 else 1.0
    return epochs * len(data.y_train) * per_image


# --------------------------------------------------------------------------------------------------
# one run


@dataclass
class RunResult:
    """The outcome of one configuration. `output` is what `train` returned (empty if it failed)."""

    config: dict
    status: str
    val_acc: float = float("nan")
    train_loss: float = float("nan")
    seconds: float = 0.0
    error: str | None = None
    output: dict = field(default_factory=dict)
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == OK


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _run_one(train: Callable, config: dict, data: GridData, index: int, limit_threads: bool) -> tuple[int, RunResult]:
    """Train one configuration (in a worker); never raises: failures become results."""
    limiter: Any = contextlib.nullcontext()
    if limit_threads:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=WORKER_BLAS_THREADS)
    start = time.perf_counter()
    # A diverging run overflows on its way to inf/NaN; that is recorded below as DIVERGED, so NumPy's
    # RuntimeWarnings would only add red lines (from "<dynamic-code>") to the notebook's output.
    with limiter, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            output = train(dict(config), data)
        except Diverged as exc:
            return index, RunResult(dict(config), DIVERGED, seconds=time.perf_counter() - start, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a failing configuration is a result, not the end of the grid
            message = f"{type(exc).__name__}: {exc}"
            return index, RunResult(dict(config), FAILED, seconds=time.perf_counter() - start, error=message)
    seconds = time.perf_counter() - start
    if not isinstance(output, Mapping) or "val_acc" not in output:
        return index, RunResult(dict(config), FAILED, seconds=seconds,
                                error=f"train must return a dict with 'val_acc'; it returned {type(output).__name__}")
    val_acc, train_loss = _float(output["val_acc"]), _float(output.get("train_loss", 0.0))
    status, error = OK, None
    if not (math.isfinite(val_acc) and math.isfinite(train_loss)):
        status, error = DIVERGED, f"training loss {train_loss}, validation accuracy {val_acc}"
    return index, RunResult(dict(config), status, val_acc, train_loss if "train_loss" in output else float("nan"),
                            seconds, error, dict(output))


# --------------------------------------------------------------------------------------------------
# the grid


@dataclass
class GridResults(Sequence[RunResult]):
    """The runs of a grid, in the order of its configurations. After an interruption, the runs not
    finished are None (`interrupted` is True); `seconds` is the wall time of this call."""

    runs: list[RunResult | None]
    interrupted: bool = False
    seconds: float = 0.0

    @property
    def trained(self) -> int:
        """How many runs this call trained (the others came from the cache, or did not finish)."""
        return sum(run is not None and not run.cached for run in self.runs)

    def __getitem__(self, i: Any) -> Any:
        return self.runs[i]

    def __len__(self) -> int:
        return len(self.runs)

    def frame(self, with_output: Sequence[str] = ()) -> Any:
        """A pandas DataFrame, one row per configuration: its keys as columns, then val_acc, status,
        seconds, cached, error (and the keys of `output` named in `with_output`)."""
        import pandas as pd

        rows = []
        for run in self.runs:
            if run is None:
                continue
            row = dict(run.config)
            row.update(val_acc=run.val_acc, status=run.status, seconds=round(run.seconds, 2), cached=run.cached,
                       error=run.error or "")
            row.update({key: run.output.get(key) for key in with_output})
            rows.append(row)
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        done = [r for r in self.runs if r is not None]
        counts = {s: sum(r.status == s for r in done) for s in STATUSES}
        text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        note = f", interrupted after {len(done)} of {len(self.runs)}" if self.interrupted else ""
        return f"GridResults({len(self.runs)} runs: {text or 'none'}; {self.trained} trained in {self.seconds:.1f} s{note})"


def _outcome(result: RunResult) -> str:
    """A run in a few words for the progress bar: "ok 85.10%", or its status and why ("failed: ValueError")."""
    if result.ok:
        return f"ok {result.val_acc:.2%}"
    why = (result.error or "").split(":")[0] if result.status == FAILED else "loss not finite"
    return f"{result.status}: {why}" if why else result.status


def _store(path: Path, result: RunResult) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    joblib.dump(result, tmp)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _load(path: Path) -> RunResult | None:
    try:
        result = joblib.load(path)
    except Exception:  # noqa: BLE001 - an unreadable cache file is retrained, not fatal
        return None
    return result if isinstance(result, RunResult) else None


@contextlib.contextmanager
def _backend(n_jobs: int | None, scheduler: Any) -> Iterator[int | None]:
    """joblib's backend for this grid: loky on this machine, or Dask given a scheduler (address or Client)."""
    address = scheduler if scheduler is not None else os.environ.get(SCHEDULER_VAR) or None
    if address is None:
        with joblib.parallel_config(backend="loky", inner_max_num_threads=WORKER_BLAS_THREADS):
            yield n_jobs
        return
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError(f"a Dask scheduler was given ({address!r}, from "
                          f"{'the argument' if scheduler is not None else SCHEDULER_VAR}) but Dask is not installed: "
                          "pip install 'backprop-lab[dask]' (or unset the variable to run on this machine)") from None
    own = not isinstance(address, Client)
    client = Client(address, set_as_default=False) if own else address
    try:
        with joblib.parallel_config(backend="dask", client=client):
            yield -1
    finally:
        if own:
            client.close()


def run_grid(
    train: Callable[[dict, GridData], Mapping[str, Any]],
    configs: Sequence[Mapping[str, Any]],
    data: GridData,
    *,
    profile: str | None = None,
    n_jobs: int | None = -1,
    scheduler: Any = None,
    cache_dir: str | os.PathLike | None | bool = None,
    progress: bool = True,
    desc: str = "grid",
    cost: Callable[[Mapping[str, Any], GridData], float] | None = estimated_cost,
) -> GridResults:
    """Train every configuration with `train(config, data)`, in parallel, with cached results.

    Inputs:
        train: the function that trains one configuration (see the module docstring).
        configs: the grid, a sequence of dicts of JSON-like values (each becomes a table row).
        data: the training and validation arrays (a GridData).
        profile: part of the cache key (default: the current budget profile's name).
        n_jobs: worker processes on this machine (-1: one per core; 1: in this process, no workers).
        scheduler: a Dask scheduler address or Client; default $LABLIB_DASK_SCHEDULER, else this machine.
        cache_dir: where results are kept (default `<build>/tuning`); False: no cache at all.
        desc: the progress bar's label.
        cost: cost(config, data) -> a relative training time; the runs start longest first (ties keep
            the grid's order). None: start them in the grid's order.
    Returns:
        GridResults in the order of `configs`. Interrupting (the stop button) returns what finished.
    """
    from . import __version__
    from .training import budget

    if not isinstance(data, GridData):
        raise TypeError(f"data must be a lablib.tuning.GridData (training and validation arrays), not {type(data).__name__}")
    if not all(isinstance(c, Mapping) for c in configs):
        raise TypeError("every configuration must be a dict (a table row), e.g. {'lr': 0.1, 'hidden': (128,)}")
    configs = [dict(c) for c in configs]
    profile = profile or budget().name
    start = time.perf_counter()
    what = {"code": code_fingerprint(train), "data": data.fingerprint, "profile": profile,
            "lablib": __version__, "cache": CACHE_VERSION}
    keys = [joblib.hash({"config": c, **what}) for c in configs]
    folder = None if cache_dir is False else Path(cache_dir or default_cache_dir())
    runs: list[RunResult | None] = [None] * len(configs)
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        for i, key in enumerate(keys):
            if (folder / f"{key}.pkl").is_file():
                runs[i] = _load(folder / f"{key}.pkl")
                if runs[i] is not None:
                    runs[i].cached = True
    todo = [i for i, r in enumerate(runs) if r is None]
    if cost is not None:  # longest first (a stable sort: equal costs keep the grid's order)
        todo.sort(key=lambda i: -cost(configs[i], data))
    bar = tqdm(total=len(configs), initial=len(configs) - len(todo), desc=desc, unit="run", disable=not progress)
    interrupted = False
    try:
        if todo:
            local = n_jobs == 1 and scheduler is None and not os.environ.get(SCHEDULER_VAR)
            with contextlib.ExitStack() as stack:
                jobs = n_jobs if local else stack.enter_context(_backend(n_jobs, scheduler))
                if local:
                    stack.enter_context(joblib.parallel_config(backend="sequential"))
                tasks = (joblib.delayed(_run_one)(train, configs[i], data, i, not local) for i in todo)
                for i, result in joblib.Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1)(tasks):
                    if folder is not None:  # stored first: what is returned is on disk
                        _store(folder / f"{keys[i]}.pkl", result)
                    runs[i] = result
                    bar.update(1)
                    bar.set_postfix_str(f"last: {_outcome(result)}", refresh=False)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()
    return GridResults(runs, interrupted, time.perf_counter() - start)
