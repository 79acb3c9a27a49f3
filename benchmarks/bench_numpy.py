"""Goal: the NumPy backend trains the textbook workload within 1.15x of a hand-written NumPy loop.

Workload: 784-128 (sigmoid)-10, truncated-normal(0.1) weights, SGD lr 0.1, batch 64, 55,000 rows
(Fashion-MNIST when found, else random pixels of the same shape). Both contenders start from the
same weights, see the same batches in the same order, and run in the same process, alternating
(the hand-written loop first on odd repeats), so machine noise hits both alike. The goal is judged
on the paired ratio (``bench_stats``: the median over repeats of backend / hand-written within a
repeat); the ratio of the minima is printed too. The baseline is what a careful person writes by
hand: gather the batch, forward, manual backprop, in-place SGD update.

    python benchmarks/bench_numpy.py [--epochs 3] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from bench_data import training_images
from bench_stats import paired_ratio

import mlpcore
from mlpcore.training import epoch_order

GOAL_RATIO = 1.15
SIZES = (784, 128, 10)
LR = 0.1
BATCH = 64
N_TRAIN = 55_000


def handwritten_epoch(params: dict[str, np.ndarray[Any, Any]], x: np.ndarray[Any, Any],
                      y: np.ndarray[Any, Any], order: np.ndarray[Any, Any]) -> float:
    w1, b1, w2, b2 = (params[k] for k in ("dense_0/weights", "dense_0/bias",
                                          "dense_1/weights", "dense_1/bias"))
    lr = np.float32(LR)
    total = 0.0
    steps = 0
    for start in range(0, len(order), BATCH):
        rows = order[start:start + BATCH]
        xb, yb = x[rows], y[rows]
        n = len(rows)
        h = 1.0 / (1.0 + np.exp(-(xb @ w1 + b1)))
        z = h @ w2 + b2
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        s = e.sum(axis=1, keepdims=True)
        total += float(np.mean(np.log(s[:, 0]) - z[np.arange(n), yb]))
        d2 = e / s
        d2[np.arange(n), yb] -= 1
        d2 /= n
        d1 = (d2 @ w2.T) * h * (1 - h)
        w2 -= lr * (h.T @ d2)
        b2 -= lr * d2.sum(axis=0)
        w1 -= lr * (xb.T @ d1)
        b1 -= lr * d1.sum(axis=0)
        steps += 1
    return total / steps


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    x, y, source = training_images(N_TRAIN, SIZES[0], SIZES[-1])
    spec = mlpcore.MLPSpec(SIZES, "sigmoid")
    print(f"workload: {'-'.join(map(str, SIZES))} sigmoid, batch {BATCH}, SGD {LR}, "
          f"{len(y)} rows of {source}; {args.epochs} epoch(s) x {args.repeats} repeats")
    ours: list[float] = []
    theirs: list[float] = []
    for repeat in range(args.repeats):
        model = mlpcore.MLP(spec, backend="numpy", seed=repeat)
        params = model.variables

        def run_backend(model: mlpcore.MLP = model, repeat: int = repeat) -> None:
            mlpcore.fit(model, (x, y), epochs=args.epochs, batch_size=BATCH,
                        optimizer=mlpcore.SGD(LR), seed=repeat, train_accuracy=False)

        def run_handwritten(params: dict[str, Any] = params, repeat: int = repeat) -> None:
            for epoch in range(args.epochs):
                handwritten_epoch(params, x, y, epoch_order(repeat, epoch, len(y)))

        contenders: list[tuple[list[float], Callable[[], None]]] = [
            (ours, run_backend), (theirs, run_handwritten)]
        for seconds, run in contenders if repeat % 2 == 0 else contenders[::-1]:
            started = time.perf_counter()
            run()
            seconds.append((time.perf_counter() - started) / args.epochs)
        drift = max(float(np.abs(model.variables[k] - params[k]).max()) for k in params)
        print(f"  repeat {repeat}: numpy backend {ours[-1]:.3f} s/epoch, "
              f"hand-written {theirs[-1]:.3f} s/epoch, max weight difference {drift:.2e}")
    ratio = paired_ratio(ours, theirs)
    print(f"numpy backend: {min(ours):.3f} s/epoch (min; max {max(ours):.3f})")
    print(f"hand-written:  {min(theirs):.3f} s/epoch (min; max {max(theirs):.3f})")
    print(f"ratio backend / hand-written: {ratio.describe()} (goal <= {GOAL_RATIO})")
    ok = ratio.median <= GOAL_RATIO
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
