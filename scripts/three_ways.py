"""Raschka's MLP trained three ways, on every installed backend, from one initial state.

The notebook trains 784-128 (sigmoid)-10 with SGD 0.1, batch 64, 10 epochs, three ways: with the
framework's optimizer, with autodiff gradients and a hand-written update, and with fully manual
backprop. Here each way is a ``(backend, method)`` pair: ``numpy/manual``, then ``optimizer``,
``autodiff`` and ``manual`` on torch and on TensorFlow, each with SGD 0.1 and with Adam 0.001.
All start from the same weights (seed 123) and see the same batches in the same order, so their
tables should agree to about three digits.

    python scripts/three_ways.py [--data DIR] [--mnist DIR] [--epochs N] [--out build/three-ways.md]

``--data`` defaults to the search order of ``mlpcore.data.load_dataset`` (``$MLPCORE_DATA``,
then Debian's dataset-fashion-mnist, then the embedded subset). ``--mnist DIR`` adds MNIST.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mlpcore
from mlpcore.data import Splits, load_dataset
from mlpcore.training import History

WAYS = [("numpy", "manual"), *((framework, method) for framework in ("torch", "tensorflow")
                                for method in ("optimizer", "autodiff", "manual"))]
OPTIMIZERS: list[mlpcore.SGD | mlpcore.Adam] = [mlpcore.SGD(0.1), mlpcore.Adam(0.001)]
SPEC = mlpcore.MLPSpec((784, 128, 10), activation="sigmoid")
SEED = 123


@dataclass
class Run:
    backend: str
    method: str
    version: str
    history: History
    test_accuracy: float
    seconds: float


def train_all(splits: Splits, epochs: int, optimizer: mlpcore.SGD | mlpcore.Adam) -> list[Run]:
    installed = set(mlpcore.list_backends())
    runs = []
    for backend, method in WAYS:
        if backend not in installed:
            print(f"  skipping {backend}/{method}: backend not installed", file=sys.stderr)
            continue
        model = mlpcore.MLP(SPEC, backend=backend, seed=SEED)
        started = time.perf_counter()
        history = mlpcore.fit(model, splits.train, optimizer=optimizer, epochs=epochs,
                              batch_size=64, validation=splits.valid, method=method)
        seconds = time.perf_counter() - started
        test = model.evaluate(splits.test.images, splits.test.labels).accuracy
        runs.append(Run(backend, method, model.backend.framework_version(), history, test,
                        seconds))
        print(f"  {backend}/{method}: Test ACC {test:.4f} ({seconds:.1f} s)", file=sys.stderr)
    return runs


def render(name: str, splits: Splits, runs: list[Run]) -> str:
    lines = [f"## {name}", "",
             f"Data: `{splits.source}`: {len(splits.train.labels)} train, "
             f"{0 if splits.valid is None else len(splits.valid.labels)} valid, "
             f"{len(splits.test.labels)} test images.", ""]
    reference = runs[0].history.loss
    lines += ["| way | framework | epoch-1 AvgCost | epoch-N AvgCost | Train/Valid ACC | "
              "Test ACC | max abs AvgCost diff vs " + f"{runs[0].backend}/{runs[0].method} |"
              " training time |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for run in runs:
        last = run.history.epochs[-1]
        diff = max(abs(a - b) for a, b in zip(run.history.loss, reference, strict=True))
        lines.append(
            f"| {run.backend}/{run.method} | {run.version} | {run.history.loss[0]:.3f} | "
            f"{last.loss:.3f} | {last.train_accuracy:.3f}/{last.valid_accuracy:.3f} | "
            f"{run.test_accuracy:.3f} | {diff:.1e} | {run.seconds:.1f} s |")
    lines.append("")
    for run in runs:
        lines += [f"### {name}: {run.backend}/{run.method}", "", "```text"]
        for record in run.history.epochs:
            lines.append(f"Epoch: {record.epoch:03d} | AvgCost: {record.loss:.3f} | "
                         f"Train/Valid ACC: {record.train_accuracy:.3f}/"
                         f"{record.valid_accuracy:.3f}")
        lines += [f"Test ACC: {run.test_accuracy:.3f}", "```", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="Fashion-MNIST directory (default: search)")
    parser.add_argument("--mnist", default=None, help="MNIST IDX directory, if you have one")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown here")
    args = parser.parse_args()

    datasets = [("Fashion-MNIST", load_dataset(args.data))]
    if args.mnist:
        datasets.append(("MNIST", load_dataset(args.mnist)))
    sections = []
    for name, splits in datasets:
        for optimizer in OPTIMIZERS:
            title = f"{name}, {optimizer}"
            print(f"{title}:", file=sys.stderr)
            sections.append(render(title, splits, train_all(splits, args.epochs, optimizer)))
    header = [
        f"Generated by `scripts/three_ways.py` on {platform.machine()}, Python "
        f"{platform.python_version()}, mlpcore {mlpcore.__version__}, {args.epochs} epochs.", ""]
    text = "\n".join(header + sections)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
