"""Report (no goal): data-parallel ``fit`` on torch.distributed, 2 workers against 1 on this
machine, for a 784-1024-1024-10 ReLU MLP trained with batch 512 on random data.

Contenders, each started by the torch backend's own launcher (``launch``, torch's elastic launch)
and timed by its rank 0 over ``--epochs`` epochs after one warm-up epoch:

* 1 worker, 1 thread (``OMP_NUM_THREADS=1``): the per-worker baseline of the scaling figures;
* 1 worker, 2 threads: one process using both cores, what a user has without workers;
* 2 workers, 1 thread each (the launcher's default).

Scaling efficiency is ``T(1 worker) / (2 · T(2 workers))`` (1.0: twice as fast). In the 2-worker
run every rank times each ``torch.distributed.all_reduce`` call (the step's one all-reduce of the
objective and all gradients, 1.9 M floats, over gloo on 127.0.0.1); the compute per step is the
epoch's time per step less that. The all-reduce time includes waiting for the slower rank.

    python benchmarks/bench_distributed.py [--rows 8192] [--epochs 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import mlpcore

SIZES = (784, 1024, 1024, 10)
BATCH = 512


def worker(out: Path, rows: int, epochs: int) -> None:
    """One rank: warm-up epoch, then ``epochs`` timed ones; rank 0 writes the figures."""
    import torch.distributed as dist

    backend: Any = mlpcore.get_backend("torch")
    world = backend.world(120.0)
    reduce_seconds: list[float] = []
    all_reduce = dist.all_reduce

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = all_reduce(*args, **kwargs)
        reduce_seconds.append(time.perf_counter() - started)
        return result

    dist.all_reduce = timed
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], rows)
    model = mlpcore.MLP(mlpcore.MLPSpec(SIZES, activation="relu"), backend="torch", seed=1)
    sgd = mlpcore.SGD(0.01)
    mlpcore.fit(model, (x, y), epochs=1, optimizer=sgd, batch_size=BATCH,
                train_accuracy=False)  # warm-up
    timed_from = len(reduce_seconds)
    history = mlpcore.fit(model, (x, y), epochs=epochs, optimizer=sgd, batch_size=BATCH,
                          train_accuracy=False)
    if world is None or world.rank == 0:
        out.write_text(json.dumps({
            "workers": 1 if world is None else world.size,
            "epoch_seconds": [e.seconds for e in history.epochs],
            "steps_per_epoch": -(-rows // BATCH),
            "all_reduce_seconds": reduce_seconds[timed_from:]}))


def contender(workers: int, threads: int, rows: int, epochs: int) -> dict[str, Any]:
    backend: Any = mlpcore.get_backend("torch")
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "figures.json"
        saved = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            backend.launch(workers, [sys.executable, __file__, "--worker", str(out),
                                     "--rows", str(rows), "--epochs", str(epochs)], 120.0)
        finally:
            if saved is None:
                del os.environ["OMP_NUM_THREADS"]
            else:
                os.environ["OMP_NUM_THREADS"] = saved
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2048 rows, 2 epochs")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs = 2048, 2
    if args.worker is not None:
        worker(args.worker, args.rows, args.epochs)
        return
    print(f"bench_distributed: {'-'.join(map(str, SIZES))} relu, batch {BATCH}, {args.rows} "
          f"random rows, torch {mlpcore.get_backend('torch').framework_version()}, "
          f"{os.cpu_count()} CPUs; min (median) seconds over {args.epochs} epochs")
    runs = {name: contender(w, t, args.rows, args.epochs)
            for name, w, t in (("1 worker, 1 thread", 1, 1), ("1 worker, 2 threads", 1, 2),
                               ("2 workers, 1 thread each", 2, 1))}
    for name, run in runs.items():
        seconds = run["epoch_seconds"]
        print(f"  {name:<26} epoch {min(seconds):7.3f} s ({statistics.median(seconds):.3f})")
    one = min(runs["1 worker, 1 thread"]["epoch_seconds"])
    both = min(runs["1 worker, 2 threads"]["epoch_seconds"])
    two = runs["2 workers, 1 thread each"]
    t2 = min(two["epoch_seconds"])
    print(f"  speed-up of 2 workers: {one / t2:.2f}x over 1 worker of 1 thread (scaling "
          f"efficiency {one / (2 * t2):.2f}), {both / t2:.2f}x over 1 process of 2 threads")
    steps = two["steps_per_epoch"]
    reduce_step = statistics.median(two["all_reduce_seconds"])
    step = statistics.median(two["epoch_seconds"]) / steps
    print(f"  2 workers, per step: {1000 * step:.1f} ms, of which all-reduce "
          f"{1000 * reduce_step:.1f} ms (median of {len(two['all_reduce_seconds'])} calls on "
          f"rank 0) and compute "
          f"{1000 * (step - reduce_step):.1f} ms")


if __name__ == "__main__":
    main()
