"""Report (no goal): data-parallel ``fit`` on torch.distributed and on tf.distribute, 2 workers
against 1 on this machine, for a 784-1024-1024-10 ReLU MLP trained with batch 512 on random data.

Contenders, each started by the backend's own launcher (``launch``: torch's elastic launch; for
TensorFlow mlpcore's, which sets ``TF_CONFIG``) and timed by its rank 0 over ``--epochs`` epochs
after one warm-up epoch:

* 1 worker, 1 thread (``OMP_NUM_THREADS=1``; TensorFlow ``TF_NUM_INTRAOP_THREADS=1``): the
  per-worker baseline of the scaling figures;
* 1 worker, 2 threads: one process using both cores, what a user has without workers;
* 2 workers, 1 thread each (the launchers' default).

Scaling efficiency is ``T(1 worker) / (2 · T(2 workers))`` (1.0: twice as fast). The all-reduce
time per step: on torch, in the 2-worker run every rank times each ``torch.distributed.all_reduce``
call (the step's one all-reduce of the objective and all gradients, 1.9 M floats, over gloo on
127.0.0.1), waiting for the slower rank included; on TensorFlow the collective runs inside the
step's graph, so after training each rank times 20 calls of the same all-reduce alone (the
strategy's collective on a buffer of the step's size). The compute per step is the epoch's time
per step less that.

TensorFlow also shares each batch over several devices of one process
(``DataParallel(devices=...)``, a ``MirroredStrategy``): a fresh process splits its CPU into two
logical devices and times, after a warm-up epoch each, ``fit`` on ``/CPU:0`` alone and ``fit``
over both (the two logical CPUs share the process's threads and cores, so this shows the cost of
the replicas' split and all-reduce, not a speed-up two GPUs would give).

    python benchmarks/bench_distributed.py [--backend torch,tensorflow] [--rows 8192]
                                           [--epochs 3] [--quick] [--replicas-only]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import mlpcore

SIZES = (784, 1024, 1024, 10)
BATCH = 512


THREADS = {"torch": "OMP_NUM_THREADS", "tensorflow": "TF_NUM_INTRAOP_THREADS"}
"""The variable that sets a worker's threads, per backend."""


def _time_torch_all_reduce(reduce_seconds: list[float]) -> None:
    """Every ``torch.distributed.all_reduce`` call from now on appends its seconds."""
    import torch.distributed as dist

    all_reduce = dist.all_reduce

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        result = all_reduce(*args, **kwargs)
        reduce_seconds.append(time.perf_counter() - started)
        return result

    dist.all_reduce = timed


def _time_tensorflow_all_reduce(size: int, calls: int = 20) -> list[float]:
    """Seconds of ``calls`` all-reduces alone of ``size`` floats, by the trainer's collective
    inside ``strategy.run`` (one ``tf.function`` call each, after one that traces)."""
    import tensorflow as tf

    from mlpcore_tensorflow import distributed

    strategy = distributed.strategy()
    buffer = tf.ones([size])
    def replica() -> list[Any]:
        return distributed.all_reduce([buffer])

    def run() -> Any:
        return strategy.run(replica)

    step = tf.function(run)

    seconds = []
    for _ in range(calls + 1):
        started = time.perf_counter()
        step()[0].numpy()
        seconds.append(time.perf_counter() - started)
    return seconds[1:]


def worker(name: str, out: Path, rows: int, epochs: int) -> None:
    """One rank: warm-up epoch, then ``epochs`` timed ones; rank 0 writes the figures."""
    backend: Any = mlpcore.get_backend(name)
    world = backend.world(120.0)
    reduce_seconds: list[float] = []
    if name == "torch" and world is not None:
        _time_torch_all_reduce(reduce_seconds)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], rows)
    model = mlpcore.MLP(mlpcore.MLPSpec(SIZES, activation="relu"), backend=name, seed=1)
    sgd = mlpcore.SGD(0.01)
    mlpcore.fit(model, (x, y), epochs=1, optimizer=sgd, batch_size=BATCH,
                train_accuracy=False)  # warm-up
    timed_from = len(reduce_seconds)
    history = mlpcore.fit(model, (x, y), epochs=epochs, optimizer=sgd, batch_size=BATCH,
                          train_accuracy=False)
    if name == "tensorflow" and world is not None:
        reduce_seconds = _time_tensorflow_all_reduce(
            1 + sum(int(np.prod(shape)) for shape in model.spec.variable_shapes().values()))
    if world is None or world.rank == 0:
        out.write_text(json.dumps({
            "workers": 1 if world is None else world.size,
            "epoch_seconds": [e.seconds for e in history.epochs],
            "steps_per_epoch": -(-rows // BATCH),
            "all_reduce_seconds": reduce_seconds[timed_from:]}))


def replicas_worker(out: Path, rows: int, epochs: int) -> None:
    """In this fresh process: two logical CPUs, then ``fit`` on one of them and over both."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], rows)
    figures = {}
    for label, devices in (("1 device", ()), ("2 replicas", ("cpu:0", "cpu:1"))):
        model = mlpcore.MLP(mlpcore.MLPSpec(SIZES, activation="relu"), backend="tensorflow",
                            seed=1)
        setting = mlpcore.DataParallel(devices=devices) if devices else False
        for n in (1, epochs):  # warm-up, then timed
            history = mlpcore.fit(model, (x, y), epochs=n, optimizer=mlpcore.SGD(0.01),
                                  batch_size=BATCH, train_accuracy=False,
                                  data_parallel=setting)
        figures[label] = [e.seconds for e in history.epochs]
    out.write_text(json.dumps(figures))


def report_replicas(rows: int, epochs: int) -> None:
    """Time TensorFlow's 2 logical CPU replicas against 1 device (:func:`replicas_worker`)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "figures.json"
        subprocess.run([sys.executable, __file__, "--replicas-worker", str(out), "--rows",
                        str(rows), "--epochs", str(epochs)], check=True, timeout=1800)
        figures: dict[str, list[float]] = json.loads(out.read_text())
    print(f"  one process, DataParallel(devices=('cpu:0', 'cpu:1')), 2 logical CPUs sharing "
          f"{os.cpu_count()} cores:")
    for label, seconds in figures.items():
        print(f"  {label:<26} epoch {min(seconds):7.3f} s ({statistics.median(seconds):.3f})")
    print(f"  2 replicas / 1 device: {min(figures['2 replicas']) / min(figures['1 device']):.2f}"
          "x the time per epoch")


def contender(name: str, workers: int, threads: int, rows: int,
              epochs: int) -> dict[str, Any]:
    backend: Any = mlpcore.get_backend(name)
    variable = THREADS[name]
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "figures.json"
        saved = os.environ.get(variable)
        os.environ[variable] = str(threads)
        try:
            backend.launch(workers, [sys.executable, __file__, "--worker", str(out),
                                     "--backend", name, "--rows", str(rows),
                                     "--epochs", str(epochs)], 120.0)
        finally:
            if saved is None:
                del os.environ[variable]
            else:
                os.environ[variable] = saved
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


def report(name: str, rows: int, epochs: int) -> None:
    """Run the three contenders of backend ``name`` and print their figures."""
    print(f"bench_distributed: {'-'.join(map(str, SIZES))} relu, batch {BATCH}, {rows} "
          f"random rows, {name} {mlpcore.get_backend(name).framework_version()}, "
          f"{os.cpu_count()} CPUs; min (median) seconds over {epochs} epochs")
    runs = {label: contender(name, w, t, rows, epochs)
            for label, w, t in (("1 worker, 1 thread", 1, 1), ("1 worker, 2 threads", 1, 2),
                                ("2 workers, 1 thread each", 2, 1))}
    for label, run in runs.items():
        seconds = run["epoch_seconds"]
        print(f"  {label:<26} epoch {min(seconds):7.3f} s ({statistics.median(seconds):.3f})")
    one = min(runs["1 worker, 1 thread"]["epoch_seconds"])
    both = min(runs["1 worker, 2 threads"]["epoch_seconds"])
    two = runs["2 workers, 1 thread each"]
    t2 = min(two["epoch_seconds"])
    print(f"  speed-up of 2 workers: {one / t2:.2f}x over 1 worker of 1 thread (scaling "
          f"efficiency {one / (2 * t2):.2f}), {both / t2:.2f}x over 1 process of 2 threads")
    steps = two["steps_per_epoch"]
    reduce_step = statistics.median(two["all_reduce_seconds"])
    step = statistics.median(two["epoch_seconds"]) / steps
    how = "in training" if name == "torch" else "alone, after training"
    print(f"  2 workers, per step: {1000 * step:.1f} ms, of which all-reduce "
          f"{1000 * reduce_step:.1f} ms (median of {len(two['all_reduce_seconds'])} calls "
          f"{how}, rank 0) and compute {1000 * (step - reduce_step):.1f} ms")
    if name == "tensorflow":
        report_replicas(rows, epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="torch,tensorflow",
                        help="comma-separated backends to report (default: torch,tensorflow)")
    parser.add_argument("--rows", type=int, default=8192)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2048 rows, 2 epochs")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--replicas-worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--replicas-only", action="store_true",
                        help="only TensorFlow's 2 logical CPU replicas against 1 device")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs = 2048, 2
    if args.replicas_worker is not None:
        replicas_worker(args.replicas_worker, args.rows, args.epochs)
        return
    if args.replicas_only:
        report_replicas(args.rows, args.epochs)
        return
    if args.worker is not None:
        worker(args.backend, args.worker, args.rows, args.epochs)
        return
    for name in args.backend.split(","):
        if name not in THREADS:
            parser.error(f"--backend: {name!r} is not one of {', '.join(THREADS)}")
        report(name, args.rows, args.epochs)


if __name__ == "__main__":
    main()
