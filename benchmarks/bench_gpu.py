"""Goal (issue 22, item 6): on an NVIDIA GPU, the torch backend trains within 1.1x of a
hand-written torch loop on the same GPU, and each is set against the GPU's matrix-product floor.

Without CUDA (``torch.cuda.is_available()`` false) the script says so and exits 0 having measured
nothing: no GPU figure is claimed. ``nox -s bench`` installs the CPU build of torch, so there it
always skips; ``nox -s gpu`` runs it with a CUDA build.

Workloads, 55,000 rows (Fashion-MNIST when found, else random pixels of the same shape):

* ``notebook``: 784-128 (sigmoid)-10, batch 64, SGD 0.1, float32;
* ``large``: 784-4096-4096-10 (relu), batch 1024, SGD 0.1, bfloat16 (mixed precision: float32
  variables, the dense layers in bfloat16).

Contenders, alternating in one process (reverse order on odd repeats), from the same weights over
the same batches, each timed from host arrays to trained weights (``torch.cuda.synchronize``
before the clock stops), so both copy the training set to the GPU once per run:

* ``backend``: ``mlpcore.fit(model, ..., train_accuracy=False)``, the model on ``cuda:0``;
* ``hand-written``: raw tensors in ``F.linear`` layout, ``index_select`` batches,
  ``torch.autocast("cuda", torch.bfloat16)`` for the bfloat16 workload, ``F.cross_entropy``,
  ``torch.autograd.grad``, ``torch._foreach_add_``.

The goal is judged on the paired ratio (``bench_stats``). The floor: the FLOPs of an epoch's
matrix products (forward ``2·B·m·n`` per layer, backward twice that but the first layer's input
gradient) over the throughput this GPU reaches on a (1024 x 4096) @ (4096 x 4096) product in the
workload's dtype; ``ratio to floor`` is seconds per epoch over that floor.

    python benchmarks/bench_gpu.py [--epochs 2] [--repeats 3] [--rows 55000]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from bench_data import LR, training_images
from bench_stats import paired_ratio
from torch.nn import functional

import mlpcore
from mlpcore.training import epoch_order

GOAL_RATIO = 1.1
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class GpuWorkload:
    name: str
    sizes: tuple[int, ...]
    activation: str
    batch: int
    dtype: str

    def describe(self) -> str:
        return (f"{'-'.join(map(str, self.sizes))} {self.activation}, batch {self.batch}, "
                f"SGD {LR}, {self.dtype}")

    def epoch_flops(self, rows: int) -> float:
        """Matrix-product FLOPs of one epoch: forward, weight and input gradients (none for x)."""
        pairs = list(zip(self.sizes, self.sizes[1:], strict=False))
        per_row = sum(2 * m * n * (3 if i else 2) for i, (m, n) in enumerate(pairs))
        return float(per_row * rows)


WORKLOADS = (GpuWorkload("notebook", (784, 128, 10), "sigmoid", 64, "float32"),
             GpuWorkload("large", (784, 4096, 4096, 10), "relu", 1024, "bfloat16"))


def hand_written(start: dict[str, Array], x: Array, y: Array, orders: list[Array],
                 work: GpuWorkload, device: torch.device) -> list[torch.Tensor]:
    """The hand-written loop over ``orders`` from ``start``; the trained parameters."""
    n_layers = len(work.sizes) - 1
    params = [torch.tensor(start[f"dense_{i}/{kind}"].T.copy() if kind == "weights"
                           else start[f"dense_{i}/{kind}"], device=device, requires_grad=True)
              for i in range(n_layers) for kind in ("weights", "bias")]
    xs, ys = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    act = torch.relu if work.activation == "relu" else torch.sigmoid
    low = work.dtype != "float32"
    for order in orders:
        for rows in torch.split(torch.from_numpy(order).to(device), work.batch):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=low):
                a = xs.index_select(0, rows)
                for i in range(n_layers - 1):
                    a = act(functional.linear(a, params[2 * i], params[2 * i + 1]))
                logits = functional.linear(a, params[-2], params[-1]).float()
            loss = functional.cross_entropy(logits, ys.index_select(0, rows))
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                torch._foreach_add_(params, grads, alpha=-LR)
    return params


def matmul_tflops(dtype: str, device: torch.device, repeats: int = 20) -> float:
    """The TFLOP/s of a (1024 x 4096) @ (4096 x 4096) product in ``dtype`` on ``device``."""
    a = torch.randn(1024, 4096, device=device, dtype=getattr(torch, dtype))
    b = torch.randn(4096, 4096, device=device, dtype=getattr(torch, dtype))
    for _ in range(3):
        a @ b
    sync(device)
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * 1024 * 4096 * 4096 * repeats / (time.perf_counter() - started) / 1e12


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(work: GpuWorkload, x: Array, y: Array, args: argparse.Namespace,
          device: torch.device) -> bool:
    spec = mlpcore.MLPSpec(work.sizes, work.activation)  # type: ignore[arg-type]
    model = mlpcore.MLP(spec, backend="torch", seed=1, dtype=work.dtype, device=str(device))
    start = model.variables
    orders = [epoch_order(7, e, len(x)) for e in range(args.epochs)]
    seconds: dict[str, list[float]] = {"backend": [], "hand-written": []}
    for repeat in range(args.repeats):
        for name in (["backend", "hand-written"] if repeat % 2 == 0
                     else ["hand-written", "backend"]):
            sync(device)
            started = time.perf_counter()
            if name == "backend":
                model.assign(start)
                mlpcore.fit(model, (x, y), epochs=args.epochs, batch_size=work.batch,
                            optimizer=mlpcore.SGD(LR), seed=7, train_accuracy=False)
                sync(device)
            else:
                hand_written(start, x, y, orders, work, device)
            seconds[name].append((time.perf_counter() - started) / args.epochs)
    floor = work.epoch_flops(len(x)) / (matmul_tflops(work.dtype, device) * 1e12)
    ratio = paired_ratio(seconds["backend"], seconds["hand-written"])
    print(f"\n{work.name}: {work.describe()}, {len(x)} rows, {args.epochs} epochs x "
          f"{args.repeats} repeats")
    for name, values in seconds.items():
        print(f"  {name:<13} {min(values):.3f}-{max(values):.3f} s/epoch, ratio to floor "
              f"{min(values) / floor:.1f} (floor {floor * 1000:.1f} ms/epoch)")
    passed = ratio.median <= GOAL_RATIO
    print(f"  backend / hand-written: {ratio.describe()} -> {'PASS' if passed else 'FAIL'} "
          f"(goal <= {GOAL_RATIO})")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=55_000)
    parser.add_argument("--device", default="cuda:0",
                        help="the device (default cuda:0; 'cpu' only checks that the script runs)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"bench_gpu: SKIPPED, no CUDA device: torch {torch.__version__} "
              f"(CUDA build: {torch.version.cuda or 'no'}) finds none; no GPU figure measured")
        return 0
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    print(f"bench_gpu: {name}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    x, y, source = training_images(args.rows)
    print(f"data: {source}")
    results = [bench(work, x, y, args, device) for work in WORKLOADS]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
