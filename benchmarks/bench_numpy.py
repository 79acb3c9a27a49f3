"""Goal: the NumPy backend trains within 1.15x of a hand-written NumPy loop on the notebook
workload, and within 1.10x on the dropout workload with its default (portable) masks.

Workloads (``bench_data.WORKLOADS``), 55,000 rows (Fashion-MNIST when found, else random pixels
of the same shape), truncated-normal(0.1) weights, SGD lr 0.1:

* ``notebook``: 784-128 (sigmoid)-10, batch 64;
* ``dropout``:  784-256 (relu)-10, dropout 0.5, batch 128. The backend draws the portable masks
  (``portable_keep_mask``, a Philox stream per step and layer); the hand-written loop draws its
  masks from NumPy's own generator (``default_rng``, PCG64), the cheapest draw a person writes.

Both contenders start from the same weights, see the same batches in the same order, and run in
the same process, alternating (the hand-written loop first on odd repeats), so machine noise hits
both alike. A goal is judged on the paired ratio (``bench_stats``: the median over repeats of
backend / hand-written within a repeat); the ratio of the minima is printed too. The baseline is
what a careful person writes by hand: gather the batch, forward, manual backprop, in-place SGD
update.

    python benchmarks/bench_numpy.py [--epochs 3] [--repeats 5] [--workload notebook|dropout]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from bench_data import LR, WORKLOADS, Workload, training_images
from bench_stats import paired_ratio

import mlpcore
from mlpcore.training import epoch_order

GOALS = {"notebook": 1.15, "dropout": 1.10}
N_TRAIN = 55_000
Array = np.ndarray[Any, Any]


def load() -> str:
    """The machine's 1, 5 and 15 minute load averages: a figure taken on a busy shared
    machine swings, so each is printed beside its load (``unknown`` where the system has none)."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except (AttributeError, OSError):  # not on Windows
        return "unknown"


def handwritten_epoch(work: Workload, params: dict[str, Array], x: Array, y: Array,
                      order: Array, rng: np.random.Generator) -> float:
    """One epoch of SGD by hand; the hidden activation and dropout masks as ``work`` says."""
    w1, b1, w2, b2 = (params[k] for k in ("dense_0/weights", "dense_0/bias",
                                          "dense_1/weights", "dense_1/bias"))
    lr, rate = np.float32(LR), np.float32(work.dropout)
    scale = np.float32(1.0 / (1.0 - work.dropout))
    sigmoid = work.activation == "sigmoid"
    total = 0.0
    steps = 0
    for start in range(0, len(order), work.batch):
        rows = order[start:start + work.batch]
        xb, yb = x[rows], y[rows]
        n = len(rows)
        z1 = xb @ w1 + b1
        h = 1.0 / (1.0 + np.exp(-z1)) if sigmoid else np.maximum(z1, 0, out=z1)
        if work.dropout:
            m = (rng.random(h.shape, dtype=np.float32) >= rate) * scale
            a = h * m
        else:
            a = h
        z = a @ w2 + b2
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        total += float(np.mean(np.log(s[:, 0]) - z[np.arange(n), yb]))
        d2 = e / s
        d2[np.arange(n), yb] -= 1
        d2 /= n
        d1 = d2 @ w2.T
        if work.dropout:
            d1 *= m
        d1 = d1 * h * (1 - h) if sigmoid else np.multiply(d1, h > 0, out=d1)
        w2 -= lr * (a.T @ d2)
        b2 -= lr * d2.sum(axis=0)
        w1 -= lr * (xb.T @ d1)
        b1 -= lr * d1.sum(axis=0)
        steps += 1
    return total / steps


def bench(work: Workload, x: Array, y: Array, epochs: int, repeats: int) -> bool:
    goal = GOALS[work.name]
    print(f"== {work.name}: {work.describe()}, {len(y)} rows; "
          f"{epochs} epoch(s) x {repeats} repeats; load average {load()}")
    ours: list[float] = []
    theirs: list[float] = []
    for repeat in range(repeats):
        model = mlpcore.MLP(work.spec, backend="numpy", seed=repeat)
        params = model.variables

        def run_backend(model: mlpcore.MLP = model, repeat: int = repeat) -> None:
            mlpcore.fit(model, (x, y), epochs=epochs, batch_size=work.batch,
                        optimizer=mlpcore.SGD(LR), seed=repeat, train_accuracy=False)

        def run_handwritten(params: dict[str, Any] = params, repeat: int = repeat) -> None:
            rng = np.random.default_rng(repeat)
            for epoch in range(epochs):
                handwritten_epoch(work, params, x, y, epoch_order(repeat, epoch, len(y)), rng)

        contenders: list[tuple[list[float], Callable[[], None]]] = [
            (ours, run_backend), (theirs, run_handwritten)]
        for seconds, run in contenders if repeat % 2 == 0 else contenders[::-1]:
            started = time.perf_counter()
            run()
            seconds.append((time.perf_counter() - started) / epochs)
        # without dropout both take the same steps; with it, the masks differ
        drift = ("" if work.dropout else ", max weight difference "
                 f"{max(float(np.abs(model.variables[k] - params[k]).max()) for k in params):.2e}")
        print(f"  repeat {repeat}: numpy backend {ours[-1]:.3f} s/epoch, "
              f"hand-written {theirs[-1]:.3f} s/epoch{drift}")
    ratio = paired_ratio(ours, theirs)
    print(f"numpy backend: {min(ours):.3f} s/epoch (min; max {max(ours):.3f})")
    print(f"hand-written:  {min(theirs):.3f} s/epoch (min; max {max(theirs):.3f})")
    print(f"ratio backend / hand-written: {ratio.describe()} (goal <= {goal}); "
          f"load average {load()}")
    ok = ratio.median <= goal
    print("PASS" if ok else "FAIL")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workload", choices=sorted(GOALS), action="append")
    args = parser.parse_args()
    x, y, source = training_images(N_TRAIN, 784, 10)
    print(f"data: {len(y)} rows of {source}")
    results = [bench(WORKLOADS[name], x, y, args.epochs, args.repeats)
               for name in args.workload or GOALS]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
