"""Seconds per epoch of the reference solution's MLP against the same network in PyTorch CPU.

    .venv/bin/python benchmarks/speed.py            # ~5 min on a quiet 2-core machine (issue 4's figures)
    .venv/bin/python benchmarks/speed.py --quick    # ~1 min: 784-256-10, batch 256, 3 rounds, no profile
    .venv/bin/python benchmarks/speed.py --threads 1 --nets 784-512-256-10 --batch 256 --rounds 7 --all-dx

Prints figures and ratios; it asserts nothing (machines are noisy). What is measured:

- the reference solutions, run from the source notebooks' answer cells (`Linear`, `ReLU` from 01,
  `SoftmaxCrossEntropy` from 02, `Sequential`, `SGD(momentum=0.9, weight_decay=5e-4)`, `train_step`,
  `evaluate` from 04), the model cast to float32 before the optimizer is created and its first
  `Linear` told not to compute the gradient of the images (`needs_input_grad = False`), as notebook
  04 trains it — PyTorch computes no such gradient either;
- one epoch = shuffle + gather + every mini-batch of 54,000 standardized training images (the
  notebook's split of Fashion-MNIST when `lablib.data` finds it, else random images of its shape):
  "numpy" is a bare loop over `train_step`; "fit" and "fit+tqdm" are `lablib.training.fit` with
  progress=False / True (timed on the smallest network, where its per-batch cost weighs most; the bar
  writes to /dev/null); "torch" is the same network in PyTorch (`nn.Sequential`, `CrossEntropyLoss`,
  `optim.SGD` with weight decay on the weight matrices only, as the solution's SGD), from the same
  initial weights (copied, transposed) and in the same batch order; a few identical steps check that
  both compute the same thing. Every variant gathers each batch (`x[idx]`), as `fit` does;
- networks 784-256-10 and 784-512-256-10 at batch 256 and 64, and the notebook's 784-1024-512-10 at
  batch 256 (`--nets`/`--batch` take the full product instead);
- the GEMM lower bound: the FLOPs of the matmuls both implementations do per batch (forward, dW and
  dx of every `Linear` but the first, whose input needs no gradient) over the float32 `np.matmul`
  rate measured on exactly those shapes and memory layouts (best of 7 trials); also at torch's own
  matmul rate;
- a profile of one NumPy epoch (784-512-256-10): timers around every layer's forward/backward, the
  loss, the SGD step and the gather, next to the same epoch with the first layer computing dx too;
  and micro-benchmarks of alternatives for the work outside matmul. `--all-dx` also adds that
  variant ("all dx": what the solution cost before its first layer skipped dx) to the interleaved
  timings.

Noise: the variants run interleaved, one epoch each per round (A B C D, then B C D A, ...), every
figure is the median over rounds and each ratio the median of the ratios within a round, so a
background process slows every variant alike; min-max and the load average are printed.

Threads: each thread count runs in its own subprocess with OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS set before NumPy or PyTorch is imported (plus `threadpoolctl.threadpool_limits` when
it is installed), and `torch.set_num_threads(n)`; the worker reads the counts back (OpenBLAS through
ctypes, as threadpoolctl does) and prints them.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

VAL_FRACTION = 0.1             # the notebook's split: 54,000 of the 60,000 training images
N_CLASSES = 10
LR, MOMENTUM, WEIGHT_DECAY = 0.05, 0.9, 5e-4
SEED = 0
NETS = ("784-256-10", "784-512-256-10", "784-1024-512-10")
PROFILE_NET = "784-512-256-10"
VARIANTS = ("numpy", "fit", "fit+tqdm", "torch")
ALL_DX = "all dx"   # the solution with the first layer computing dx as well (--all-dx)
TARGET_RATIO, TARGET_FIT_OVERHEAD = 1.1, 0.05   # issue 4: NumPy <= 1.1x PyTorch; lablib's loop < 5 %


# --------------------------------------------------------------------------------------------------
# parent: one subprocess per thread count


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--batch", default="256,64", help="comma-separated batch sizes (default 256,64)")
    p.add_argument("--nets", default=",".join(NETS),
                   help=f"comma-separated layer sizes (default {','.join(NETS)}; the last one at the first "
                        "batch size only unless --nets is given)")
    p.add_argument("--rounds", type=int, default=None, help="timed epochs per variant (default 5; 3 with --quick)")
    p.add_argument("--quick", action="store_true", help="784-256-10 at batch 256 only, 3 rounds, no profile")
    p.add_argument("--no-fit", action="store_true", help="skip the two lablib.training.fit variants")
    p.add_argument("--no-profile", action="store_true", help="skip the breakdown of one NumPy epoch")
    p.add_argument("--all-dx", action="store_true",
                   help="also time the solution with its first layer computing dx (one more interleaved variant)")
    p.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--json-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.nets, args.batch = "784-256-10", "256"
        args.no_profile = True
    args.rounds = args.rounds or (3 if args.quick else 5)
    return args


def parent(args: argparse.Namespace, argv: list[str]) -> None:
    threads = [int(t) for t in args.threads.split(",")]
    results = []
    start = time.perf_counter()
    for n in threads:
        env = dict(os.environ, **{var: str(n) for var in THREAD_VARS})
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            out = tmp.name
        cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--worker", str(n), "--json-out", out]
        try:
            code = subprocess.call(cmd, env=env)
        except KeyboardInterrupt:  # the worker got it too; summarize what is done
            code = "interrupted"
        text = Path(out).read_text()
        results += json.loads(text) if text else []
        os.unlink(out)
        if code != 0:
            print(f"worker for {n} thread(s): {code if code == 'interrupted' else f'exit code {code}'}")
        if code == "interrupted":
            break
    summary(results)
    print(f"\ntotal wall time {time.perf_counter() - start:.0f} s; command: "
          f"{Path(sys.executable)} {Path(__file__).relative_to(ROOT) if Path(__file__).is_relative_to(ROOT) else __file__} "
          f"{' '.join(argv)}".rstrip())


def summary(results: list[dict]) -> None:
    if not results:
        return
    print("\n=== summary: seconds per epoch (median), NumPy solution vs PyTorch CPU and the GEMM bound ===")
    head = (f"{'threads':>7} {'network':<16} {'batch':>5} {'numpy':>7} {'torch':>7} {'np/torch':>8} "
            f"{'bound':>7} {'np/bnd':>6} {'tc/bnd':>6} {'fit +%':>7} {'tqdm +%':>7}"
            + (f" {'all dx':>7} {'ad/torch':>8}" if any("all_dx" in r for r in results) else ""))
    print(head)
    for r in results:
        fit = "" if r.get("fit_cost") is None else f"{100 * r['fit_cost']:+.2f}"
        bar = "" if r.get("tqdm_cost") is None else f"{100 * r['tqdm_cost']:+.2f}"
        all_dx = "" if r.get("all_dx") is None else f"{r['all_dx']:7.3f} {r['all_dx_ratio']:8.2f}"
        print(f"{r['threads']:>7} {r['net']:<16} {r['batch']:>5} {r['numpy']:7.3f} {r['torch']:7.3f} "
              f"{r['ratio']:8.2f} {r['bound']:7.3f} {r['numpy'] / r['bound']:6.2f} {r['torch'] / r['bound']:6.2f} "
              f"{fit:>7} {bar:>7} {all_dx}")
    print(f"targets (issue 4): np/torch <= {TARGET_RATIO} at batch 256; fit +% < {100 * TARGET_FIT_OVERHEAD:.0f} %. "
          "fit +% and tqdm +%: what lablib.training.fit (progress=False / True) adds to the bare loop, measured\n"
          "with a no-op train_step (the interleaved epochs agree within their noise; see above).\n"
          "bound: the GEMM lower bound (forward, dW, dx of each Linear, no dx for the images, at np.matmul's best "
          "measured rate); np/bnd, tc/bnd: each implementation over it"
          + ("; all dx: the solution with its first layer computing dx too (--all-dx)."
             if any("all_dx" in r for r in results) else "."))


# --------------------------------------------------------------------------------------------------
# worker: everything below runs with the thread count fixed


def limit_threads(n: int) -> str:
    """Fix NumPy's BLAS and PyTorch to n threads; return how that was checked."""
    import numpy  # noqa: F401 - loads OpenBLAS, whose thread count is read back below
    import torch

    torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        blas = _openblas_threads()
        how = f"{'/'.join(THREAD_VARS)}={os.environ.get('OPENBLAS_NUM_THREADS')} before import"
    else:
        threadpool_limits(n)
        blas = ", ".join(f"{i['internal_api']} {i['num_threads']}" for i in threadpool_info())
        how = "threadpoolctl.threadpool_limits"
    return f"{how}; torch.set_num_threads({n}); read back: BLAS {blas}, torch {torch.get_num_threads()}"


def _openblas_threads() -> str:
    """OpenBLAS's own thread count, read with ctypes from the copy NumPy loaded (what threadpoolctl does)."""
    import ctypes

    with open("/proc/self/maps") as maps:
        libs = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line})
    for lib in libs:
        handle = ctypes.CDLL(lib)
        for symbol in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_", "openblas_get_num_threads"):
            if hasattr(handle, symbol):
                return str(getattr(handle, symbol)())
    return "unknown (no OpenBLAS found)"


def load_solutions():
    """The reference solutions, run from the source notebooks' answer cells (never a copy): notebook 04
    through `use_notebook`, as a later notebook would reuse it; its `reuse` cell brings 01 and 02."""
    from lablib.reuse import use_notebook

    with contextlib.redirect_stdout(io.StringIO()):  # the reuse cell prints what it found
        training = use_notebook("04_training.ipynb", folder=NOTEBOOKS)
    modules = {"04": training, "01": getattr(training, "layers", None), "02": getattr(training, "losses", None)}
    failed = {f"{name}:{gid}": err for name, module in modules.items()
              for gid, err in getattr(module, "__errors__", {}).items()}
    if failed or None in modules.values():
        raise SystemExit(f"solution cells raised: {failed}")
    return modules["01"], modules["02"], training


def load_data(training):
    """54,000 standardized float32 training rows (and 6,000 validation rows) of Fashion-MNIST's shape."""
    import numpy as np

    from lablib.data import DatasetNotFoundError, Standardizer, load_dataset

    try:
        data = load_dataset("fashion-mnist", download=False)
        x, y, source = data.x_train, data.y_train, f"Fashion-MNIST from {data.source}"
    except DatasetNotFoundError:
        rng = np.random.default_rng(SEED)
        x = rng.integers(0, 256, (60_000, 28, 28), dtype=np.uint8)
        y = rng.integers(0, N_CLASSES, 60_000)
        source = "random uint8 images of Fashion-MNIST's shape (Fashion-MNIST not found)"
    x_train, y_train, x_val, y_val = training.train_val_split(x, y, VAL_FRACTION, np.random.default_rng(SEED))
    scaler = Standardizer().fit(x_train)
    return scaler.transform(x_train), y_train, scaler.transform(x_val), y_val, source


def configs(args) -> list[tuple[str, int]]:
    """(network, batch) pairs: the product of --nets and --batch; by default the largest network
    only at the first batch size (it costs as much as the two others together)."""
    nets, batches = args.nets.split(","), [int(b) for b in args.batch.split(",")]
    pairs = [(net, b) for net in nets for b in batches]
    if args.nets == ",".join(NETS) and len(batches) > 1:
        pairs = [(net, b) for net, b in pairs if net != NETS[-1] or b == batches[0]]
    return pairs


def fit_net(args) -> str:
    """lablib.training.fit is timed on the smallest network: its per-batch overhead weighs most there."""
    return min(args.nets.split(","), key=lambda net: sum(a * b for a, b in zip(sizes_of(net), sizes_of(net)[1:])))


def sizes_of(net: str) -> list[int]:
    return [int(s) for s in net.split("-")]


def build_numpy(layers, training, sizes: list[int]):
    """The solution's Sequential of Linear/ReLU, He-initialized from SEED, cast to float32."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    mods = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(layers.Linear(fan_in, fan_out, rng=rng))
        if i < len(sizes) - 2:
            mods.append(layers.ReLU())
    model = training.Sequential(*mods).astype(np.float32)
    model.layers[0].needs_input_grad = False  # as notebook 04 trains it: no gradient for the images
    return model


def numpy_state(model, training, losses):
    """(model, loss, optimizer) — the optimizer created after the dtype change, as the notebook says."""
    model = copy.deepcopy(model)
    optimizer = training.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    return model, losses.SoftmaxCrossEntropy(), optimizer


def torch_state(model):
    """The same network in PyTorch: weights copied (transposed: torch stores (out, in)), float32;
    SGD with weight decay on the weight matrices only, like the solution's SGD."""
    import torch
    from torch import nn

    mods = []
    for layer in model.layers:
        if type(layer).__name__ == "Linear":
            lin = nn.Linear(layer.in_features, layer.out_features)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(layer.W.data.T.copy()))
                lin.bias.copy_(torch.from_numpy(layer.b.data.copy()))
            mods.append(lin)
        else:
            mods.append(nn.ReLU())
    net = nn.Sequential(*mods).float()
    weights = [m.weight for m in net if isinstance(m, nn.Linear)]
    biases = [m.bias for m in net if isinstance(m, nn.Linear)]
    opt = torch.optim.SGD([{"params": weights, "weight_decay": WEIGHT_DECAY},
                           {"params": biases, "weight_decay": 0.0}], lr=LR, momentum=MOMENTUM)
    return net, nn.CrossEntropyLoss(), opt


# ---- one epoch of each variant; each returns (seconds, mean batch loss) --------------------------


def epoch_numpy(state, train_step, x, y, batch, rng):
    model, loss_fn, opt = state
    start = time.perf_counter()
    order = rng.permutation(len(x))
    total, n = 0.0, 0
    for i in range(0, len(x), batch):  # as lablib.training.fit does: gather each batch, no fresh (N, D) array
        idx = order[i:i + batch]
        total += float(train_step(model, loss_fn, opt, x[idx], y[idx]))
        n += 1
    return time.perf_counter() - start, total / n


def epoch_fit(state, training, x, y, x_val, y_val, batch, rng, progress):
    from lablib.training import fit

    model, loss_fn, opt = state
    with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):  # the bar's text goes nowhere
        history = fit(model, loss_fn, opt, train_step=training.train_step, evaluate=training.evaluate,
                      x_train=x, y_train=y, x_val=x_val, y_val=y_val, epochs=1, batch_size=batch,
                      rng=rng, progress=progress)
    # fit's own timer covers the same span as epoch_numpy's (shuffle, gather, batches);
    # the validation pass after the epoch is not training time and is left out.
    return history.seconds[0], history.train_loss[0]


def loop_cost(training_fit, y, batch, rounds: int = 7) -> dict:
    """What the loops themselves cost per epoch: a no-op train_step on (N, 1) inputs (so that the
    gather costs next to nothing), bare loop vs fit without and with its bar; medians, interleaved."""
    import numpy as np

    x1 = np.zeros((len(y), 1), np.float32)

    def noop(model, loss_fn, optimizer, xb, yb):
        return 0.0

    def bare(rng):
        start = time.perf_counter()
        order = rng.permutation(len(x1))
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            total += float(noop(None, None, None, x1[idx], y[idx]))
        return time.perf_counter() - start

    def via_fit(rng, progress):
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
            history = training_fit(None, None, None, train_step=noop, evaluate=lambda *a: (0.0, 0.0),
                                   x_train=x1, y_train=y, x_val=x1[:1], y_val=y[:1], epochs=1,
                                   batch_size=batch, rng=rng, progress=progress)
        return history.seconds[0]

    runs = {"bare": bare, "fit": lambda rng: via_fit(rng, False), "fit+tqdm": lambda rng: via_fit(rng, True)}
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            times[name].append(run(np.random.default_rng(SEED)))
    return {name: statistics.median(t) for name, t in times.items()}


def epoch_torch(state, x, y, batch, rng):
    import torch

    net, loss_fn, opt = state
    start = time.perf_counter()
    order = torch.from_numpy(rng.permutation(len(x)))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)  # no copies
    total, n = 0.0, 0
    for i in range(0, len(x), batch):
        idx = order[i:i + batch]  # a gather per batch: the cheapest way in PyTorch
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
        total += loss.item()
        n += 1
    return time.perf_counter() - start, total / n


def agreement(model, training, losses, x, y, batch, steps: int = 3) -> str:
    """Same network? Run a few identical steps in both and compare losses and weights."""
    import numpy as np
    import torch

    np_state, tc_state = numpy_state(model, training, losses), torch_state(model)
    net, loss_fn, opt = tc_state
    worst_loss = 0.0
    for s in range(steps):
        xb, yb = x[s * batch:(s + 1) * batch], y[s * batch:(s + 1) * batch]
        a = training.train_step(*np_state, xb, yb)
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(torch.from_numpy(xb)), torch.from_numpy(yb))
        loss.backward()
        opt.step()
        worst_loss = max(worst_loss, abs(a - loss.item()))
    lins = [m for m in net if isinstance(m, torch.nn.Linear)]
    worst_w = max(float(np.max(np.abs(layer.W.data - lin.weight.detach().numpy().T)))
                  for layer, lin in zip([m for m in np_state[0].layers if hasattr(m, "W")], lins))
    return (f"same network: over {steps} identical steps the losses differ by <= {worst_loss:.1e}, then the "
            f"weights by <= {worst_w:.1e} (float32 rounding; ~1e-5 when a unit lands on the other side of ReLU's kink)")


def all_dx_state(model, training, losses):
    """The solution with its first layer computing dx as well (what it cost before skipping it)."""
    model, loss_fn, optimizer = numpy_state(model, training, losses)
    model.layers[0].needs_input_grad = True
    return model, loss_fn, optimizer


# ---- GEMM lower bound ------------------------------------------------------------------------------


def per_call(fn, min_seconds: float = 0.02, trials: int = 7, best: bool = False) -> float:
    """Mean time per call in the median trial (the fastest with best=True) of `trials` trials,
    each at least `min_seconds` long."""
    fn()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds / 4:
        fn()
        calls += 1
    calls = max(1, calls * 4)
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return min(times) if best else statistics.median(times)


_BOUNDS: dict = {}


def gemm_bound(sizes: list[int], batch: int, n_rows: int) -> dict:
    """Seconds per epoch spent in the matmuls of every Linear (forward, dW, dx; no dx for the first
    layer) at the measured np.matmul rate (measured once per network and batch size in a run)."""
    key = (tuple(sizes), batch, n_rows)
    if key not in _BOUNDS:
        _BOUNDS[key] = _gemm_bound(sizes, batch, n_rows)
    return _BOUNDS[key]


def _gemm_bound(sizes: list[int], batch: int, n_rows: int) -> dict:
    import numpy as np
    import torch

    rng = np.random.default_rng(SEED)
    full, last = divmod(n_rows, batch)
    rows = full * batch + last
    out = {"shapes": [], "bound": 0.0, "bound_all_dx": 0.0, "torch_bound": 0.0}
    for k, (i, o) in enumerate(zip(sizes[:-1], sizes[1:])):
        x = rng.standard_normal((batch, i), dtype=np.float32)
        W = rng.standard_normal((i, o), dtype=np.float32)
        dout = rng.standard_normal((batch, o), dtype=np.float32)
        flops = 2.0 * rows * i * o  # per epoch, per matmul
        for name, a, b in (("x @ W", x, W), ("x.T @ dout", x.T, dout), ("dout @ W.T", dout, W.T)):
            t_np = per_call(lambda: a @ b, best=True)
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)  # same strides (views), no copy
            t_tc = per_call(lambda: ta @ tb, best=True)
            per_flop = 2.0 * batch * i * o
            gf_np, gf_tc = per_flop / t_np / 1e9, per_flop / t_tc / 1e9
            seconds = flops / (gf_np * 1e9)
            skipped = k == 0 and name == "dout @ W.T"  # the images' gradient: neither implementation computes it
            out["shapes"].append((f"L{k + 1} {name}" + (" (skipped)" if skipped else ""),
                                  f"({a.shape[0]},{a.shape[1]})@({b.shape[0]},{b.shape[1]})", gf_np, gf_tc, seconds))
            out["bound_all_dx"] += seconds
            if not skipped:
                out["bound"] += seconds
                out["torch_bound"] += flops / (gf_tc * 1e9)
    return out


# ---- interleaved rounds ---------------------------------------------------------------------------


def fmt_spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.3f} [{min(values):.3f}-{max(values):.3f}]"


def bench_config(sol, data, net: str, batch: int, args, with_fit: bool) -> dict:
    import numpy as np

    layers, losses, training = sol
    x, y, x_val, y_val, _ = data
    sizes = sizes_of(net)
    base = build_numpy(layers, training, sizes)
    x_val_small, y_val_small = x_val[:batch], y_val[:batch]  # fit validates after each epoch; keep it small
    variants = list(VARIANTS) if with_fit else ["numpy", "torch"]
    if args.all_dx:
        variants.insert(1, ALL_DX)
    def new_state(v):
        if v == "torch":
            return torch_state(base)
        return (all_dx_state if v == ALL_DX else numpy_state)(base, training, losses)

    states = {v: new_state(v) for v in variants}
    rngs = {v: np.random.default_rng(SEED + 1) for v in variants}  # same batch order for every variant

    def run(v):
        if v == "torch":
            return epoch_torch(states[v], x, y, batch, rngs[v])
        if v in ("fit", "fit+tqdm"):
            return epoch_fit(states[v], training, x, y, x_val_small, y_val_small, batch, rngs[v], v == "fit+tqdm")
        return epoch_numpy(states[v], training.train_step, x, y, batch, rngs[v])

    # warm-up: a few batches through a throw-away copy of every variant (allocator, BLAS threads, torch)
    for v in variants:
        st = new_state(v)
        warm_rng = np.random.default_rng(0)
        if v == "torch":
            epoch_torch(st, x[:8 * batch], y[:8 * batch], batch, warm_rng)
        else:
            epoch_numpy(st, training.train_step, x[:8 * batch], y[:8 * batch], batch, warm_rng)
    times = {v: [] for v in variants}
    losses_last = {}
    for r in range(args.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            seconds, loss = run(v)
            times[v].append(seconds)
            losses_last[v] = loss

    def paired(a, b):
        return statistics.median(t_a / t_b for t_a, t_b in zip(times[a], times[b]))

    bound = gemm_bound(sizes, batch, len(x))
    result = {"net": net, "batch": batch, "numpy": statistics.median(times["numpy"]),
              "torch": statistics.median(times["torch"]), "ratio": paired("numpy", "torch"),
              "bound": bound["bound"]}
    if with_fit:
        from lablib.training import fit

        loops = loop_cost(fit, y, batch)
        result["fit_cost"] = (loops["fit"] - loops["bare"]) / result["numpy"]
        result["tqdm_cost"] = (loops["fit+tqdm"] - loops["bare"]) / result["numpy"]
    if args.all_dx:
        result["all_dx"] = statistics.median(times[ALL_DX])
        result["all_dx_ratio"] = paired(ALL_DX, "torch")

    n_batches = -(-len(x) // batch)
    print(f"\n--- {net}, batch {batch} ({n_batches} batches/epoch), {args.rounds} interleaved rounds; "
          f"{agreement(base, training, losses, x, y, batch)}")
    print(f"  {'variant':<12} {'s/epoch median [min-max]':<26} {'vs numpy':>8} {'vs torch':>8} {'vs bound':>8} "
          f"{'last loss':>9}")
    for v in variants:
        rel_np = "" if v == "numpy" else f"{paired(v, 'numpy'):8.3f}"
        rel_tc = "" if v == "torch" else f"{paired(v, 'torch'):8.3f}"
        print(f"  {v:<12} {fmt_spread(times[v]):<26} {rel_np:>8} {rel_tc:>8} "
              f"{statistics.median(times[v]) / bound['bound']:8.2f} {losses_last[v]:9.4f}")
    if with_fit:
        print(f"  the loops alone (no-op train_step on (N, 1) inputs): bare {1e3 * loops['bare']:.2f} ms/epoch, "
              f"fit {1e3 * loops['fit']:.2f} ms, fit+tqdm {1e3 * loops['fit+tqdm']:.2f} ms, so fit adds "
              f"{100 * result['fit_cost']:+.2f} % of the numpy epoch and {100 * result['tqdm_cost']:+.2f} % with its bar; "
              "the interleaved 'vs numpy' above differ from 1 by noise only")
    print(f"  GEMM bound {bound['bound']:.3f} s/epoch (forward, dW, dx of every Linear at np.matmul's measured "
          f"rate, without the first layer's dx: the images need no gradient); {bound['bound_all_dx']:.3f} s with "
          f"it; at torch's matmul rate {bound['torch_bound']:.3f} s")
    print(f"  {'matmul':<24} {'shapes':<24} {'np GFLOP/s':>10} {'torch':>7} {'s/epoch':>8}")
    for name, shape, gf_np, gf_tc, seconds in bound["shapes"]:
        print(f"  {name:<24} {shape:<24} {gf_np:10.1f} {gf_tc:7.1f} {seconds:8.3f}")
    return result


# ---- profile of one NumPy epoch -------------------------------------------------------------------


def instrument(model, loss_fn, opt, timers: dict) -> None:
    """Wrap every layer's forward/backward, the loss and the optimizer step in timers (per instance)."""
    def timed(obj, method, key):
        fn = getattr(obj, method)

        def wrapper(*a, **k):
            t = time.perf_counter()
            result = fn(*a, **k)
            timers[key] = timers.get(key, 0.0) + time.perf_counter() - t
            return result
        setattr(obj, method, wrapper)

    for layer in model.layers:
        kind = type(layer).__name__
        timed(layer, "forward", f"{kind} forward")
        timed(layer, "backward", f"{kind} backward")
    timed(loss_fn, "forward", "loss forward")
    timed(loss_fn, "backward", "loss backward")
    timed(opt, "step", "SGD step")


def profiled_epoch(state, train_step, timers: dict, x, y, batch, rng) -> tuple[float, int]:
    """One epoch as lablib.training.fit runs it (a gather per batch), the shuffle and gather timed
    too; returns (seconds, minor page faults)."""
    import resource

    timers.clear()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    order = rng.permutation(len(x))
    gather = time.perf_counter() - start  # the permutation
    for i in range(0, len(x), batch):
        t = time.perf_counter()
        idx = order[i:i + batch]
        xb, yb = x[idx], y[idx]
        gather += time.perf_counter() - t
        train_step(*state, xb, yb)
    timers["shuffle + gather"] = gather
    total = time.perf_counter() - start
    timers["loop + train_step + calls"] = total - sum(timers.values())
    return total, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def profile_epoch(sol, data, net: str, batch: int, epochs: int = 3) -> None:
    """Where one epoch of the solution goes, next to the same epoch with the first layer computing dx.

    Both run instrumented and interleaved, `epochs` epochs each; every figure is a median over them.
    """
    import numpy as np

    layers, losses, training = sol
    x, y = data[0], data[1]
    sizes = sizes_of(net)
    base = build_numpy(layers, training, sizes)
    runs = {}
    for name, state in (("solution", numpy_state(base, training, losses)),
                        (ALL_DX, all_dx_state(base, training, losses))):
        timers: dict[str, float] = {}
        instrument(*state, timers)
        profiled_epoch(state, training.train_step, timers, x[:4 * batch], y[:4 * batch], batch,
                       np.random.default_rng(0))  # warm-up
        runs[name] = {"state": state, "timers": timers, "rng": np.random.default_rng(SEED + 1), "epochs": []}
    for _ in range(epochs):
        for name, run in runs.items():
            total, faults = profiled_epoch(run["state"], training.train_step, run["timers"], x, y, batch, run["rng"])
            run["epochs"].append({"total": total, "faults": faults, **run["timers"]})

    def medians(name):
        rows = runs[name]["epochs"]
        return {key: statistics.median(r[key] for r in rows) for key in rows[0]}

    bound = gemm_bound(sizes, batch, len(x))
    sol_t, all_t = medians("solution"), medians(ALL_DX)
    sol_total, sol_faults = sol_t.pop("total"), sol_t.pop("faults")
    all_total, all_faults = all_t.pop("total"), all_t.pop("faults")
    print(f"\n--- profile: one epoch of the NumPy solution, {net}, batch {batch}, median of {epochs} "
          f"(timers around each call; every figure a median): {sol_total:.3f} s. GEMM bound {bound['bound']:.3f} s, so "
          f"{1 - bound['bound'] / sol_total:.0%} of the epoch is outside matmul.")
    print(f"  '{ALL_DX}' = the same network with its first Linear computing dx too (needs_input_grad True), "
          f"interleaved with it: {all_total:.3f} s; skipping that dx saves {1 - sol_total / all_total:.0%} of the epoch")
    print(f"  {'component':<27} {'solution':>9} {'share':>6} {ALL_DX:>10} {'saves':>7}")
    for key in sorted(sol_t, key=lambda k: -sol_t[k]):
        print(f"  {key:<27} {sol_t[key]:8.3f}s {sol_t[key] / sol_total:6.1%} {all_t.get(key, 0.0):9.3f}s "
              f"{(all_t.get(key, 0.0) - sol_t[key]) / all_total:7.1%}")
    print(f"  {'minor page faults / epoch':<27} {sol_faults:9.0f} {'':>6} {all_faults:10.0f}")

    # micro-benchmarks at this network's shapes: alternatives for the work outside matmul
    rng = np.random.default_rng(SEED)
    n_batches = -(-len(x) // batch)
    h = sizes[1]
    a = rng.standard_normal((batch, h), dtype=np.float32)
    mask = a > 0
    rows = [
        (f"ReLU backward ({batch}x{h}): dout * mask", n_batches, lambda: a * mask),
        ("  dout * (x > 0), recomputed", n_batches, lambda: a * (a > 0)),
        ("  np.where(mask, dout, 0)", n_batches, lambda: np.where(mask, a, np.float32(0))),
        ("  dout[~mask] = 0 on a copy (bool index)", n_batches, lambda: _bool_index(a, mask)),
        (f"b.grad: dout.sum(axis=0) ({batch}x{h})", n_batches, lambda: a.sum(axis=0)),
        ("  np.ones(N) @ dout", n_batches, lambda: np.ones(batch, np.float32) @ a),
    ]
    print(f"  micro-benchmarks (seconds per epoch at {n_batches} batches; median of 7 trials):")
    for what, calls, fn in rows:
        seconds = per_call(fn) * calls
        print(f"  {what:<44} {seconds:8.3f}s {seconds / sol_total:6.1%}")


def _bool_index(dout, mask):
    dx = dout.copy()
    dx[~mask] = 0
    return dx


def busy_cpus(seconds: float = 1.0) -> float | None:
    """How many CPUs other processes kept busy over the last `seconds` (this one sleeps meanwhile),
    from /proc/stat; None where there is none. Unlike the load average, which decays over a minute,
    this does not count the worker that just finished."""
    def sample():
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        fields = fields[:8]  # user .. steal; guest time is already counted in user and nice
        return sum(fields), fields[3] + fields[4]  # total and idle + iowait jiffies

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except OSError:
        return None
    elapsed = total1 - total0
    return (os.cpu_count() or 1) * (elapsed - (idle1 - idle0)) / elapsed if elapsed else None


def worker(args) -> None:
    threads = args.worker
    how = limit_threads(threads)
    import numpy as np
    import torch

    t0 = time.perf_counter()
    load0 = os.getloadavg()
    sol = load_solutions()
    data = load_data(sol[2])
    print(f"\n===== {threads} thread(s): {how}")
    print(f"numpy {np.__version__}, torch {torch.__version__}, {os.cpu_count()} CPUs, load average "
          f"{load0[0]:.2f}; data: {data[4]}, {len(data[1])} training rows, float32; solution classes from "
          f"{', '.join(p.name for p in sorted(NOTEBOOKS.glob('0[124]_*.ipynb')))}")
    others = busy_cpus()
    if others is not None and others > 0.5 and others + threads > (os.cpu_count() or 1):
        print(f"NOTE: other processes kept {others:.1f} of {os.cpu_count()} CPUs busy just now, every figure "
              f"below is inflated{' and 2+ threads suffer most (BLAS threads wait for each other)' if threads > 1 else ''}; "
              "the ratios (same-round pairs) hold up better than the seconds")
    results = []
    for net, batch in configs(args):
        r = bench_config(sol, data, net, batch, args, with_fit=not args.no_fit and net == fit_net(args))
        r["threads"] = threads
        results.append(r)
        if args.json_out:  # after every configuration: an interrupted run still has a summary
            Path(args.json_out).write_text(json.dumps(results))
    if not args.no_profile:
        nets = [net for net, _ in configs(args)]
        profile_epoch(sol, data, PROFILE_NET if PROFILE_NET in nets else nets[0], int(args.batch.split(",")[0]))
    load1 = os.getloadavg()
    print(f"\n{threads} thread(s) done in {time.perf_counter() - t0:.0f} s; load average {load0[0]:.2f} -> {load1[0]:.2f}")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    if args.worker is None:
        parent(args, argv)
        return
    try:
        worker(args)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
