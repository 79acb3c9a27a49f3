"""Goal: saving and loading a 100-million-parameter float32 model (400 MB) costs at most 1.2x
plain safetensors, checksums included, measured in the same run.

* save: ``mlpcore.save(model, path)`` (the variables taken as read-only views of the NumPy
  backend's arrays, ``save_file`` into a temporary folder while a worker thread computes the
  CRC-32 of every variable, ``fsync``, the checksums written into the header, ``fsync``, atomic
  rename, directory ``fsync``) against ``safetensors.numpy.save_file(arrays, path)`` + one
  ``fsync`` for the same arrays (already in hand, so the baseline does strictly less). Fairness:
  before any timing each side writes its file once, so every timed save replaces an existing
  file of the same size, as a training run that checkpoints to one path does, and both pay for
  freeing the old file's blocks;
* load: ``mlpcore.load(path, backend="numpy")`` (header check, memory map, CRC-32 verification
  of every byte, the backend's own copy) against ``safetensors.numpy.load_file(path)``;
* also: saving from and loading into the torch and TensorFlow backends (GB/s, no goal; these
  backends hand ``save`` copies of their variables, not views), and the peak of NumPy/Python
  allocations while loading into torch, which shows that no full copy is made before the
  backend's own tensors (goal: peak <= 1.1x the model size).

Each measurement is the minimum of ``--repeats`` runs; save and load alternate with their
baseline so that machine noise hits both alike. Uses about 2 GB of memory.

    python benchmarks/bench_checkpoint.py [--repeats 3] [--params 100_000_000]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import safetensors.numpy

import mlpcore
from mlpcore.model import MLP
from mlpcore.spec import MLPSpec

GOAL_RATIO = 1.2
GOAL_COPY = 1.1


def spec_for(params: int) -> MLPSpec:
    hidden = 9000
    inputs = max(1, (params - 1111 * hidden) // hidden)
    return MLPSpec(sizes=(inputs, hidden, 1111), activation="relu")


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def timed(action: object) -> float:
    gc.collect()
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--params", type=int, default=100_000_000)
    parser.add_argument("--dir", default=None, help="folder for the files (default: a temp dir)")
    args = parser.parse_args()

    spec = spec_for(args.params)
    rng = np.random.default_rng(0)
    values = {name: rng.standard_normal(shape, dtype=np.float32)
              for name, shape in spec.variable_shapes().items()}
    model = MLP.from_variables(spec, values, backend="numpy")
    del values
    nbytes = sum(int(np.prod(s)) * 4 for s in spec.variable_shapes().values())
    print(f"model: {'-'.join(map(str, spec.sizes))}, {nbytes // 4:,} float32 parameters "
          f"({nbytes / 1e6:.0f} MB); {args.repeats} repeats, minimum reported")

    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        ours, plain = Path(directory) / "ours.safetensors", Path(directory) / "plain.safetensors"
        arrays = model.variables

        def plain_save() -> None:
            safetensors.numpy.save_file(arrays, plain)
            fsync_file(plain)

        plain_save()  # both sides now replace an existing file of the same size in every run
        mlpcore.save(model, ours)
        save_ours, save_plain = [], []
        for _ in range(args.repeats):
            save_plain.append(timed(plain_save))
            save_ours.append(timed(lambda: mlpcore.save(model, ours)))
        arrays.clear()  # free the baseline copy before the loads
        load_ours, load_plain = [], []
        for _ in range(args.repeats):
            load_plain.append(timed(lambda: safetensors.numpy.load_file(plain)))
            load_ours.append(timed(lambda: mlpcore.load(ours, backend="numpy")))
        frameworks: dict[str, float] = {}
        framework_saves: dict[str, float] = {}
        for backend in ("torch", "tensorflow"):
            if backend not in mlpcore.list_backends():
                continue
            other = mlpcore.load(ours, backend=backend)  # imports the framework, untimed
            framework_saves[backend] = min(timed(lambda m=other: mlpcore.save(m, ours))
                                           for _ in range(args.repeats))
            del other
            frameworks[backend] = min(timed(lambda b=backend: mlpcore.load(ours, backend=b))
                                      for _ in range(args.repeats))
        peak = None
        if "torch" in frameworks:
            gc.collect()
            tracemalloc.start()
            loaded = mlpcore.load(ours, backend="torch")
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            del loaded

    gb = nbytes / 1e9
    results = []

    def report(label: str, mine: list[float], base: list[float], base_label: str) -> None:
        ratio = min(mine) / min(base)
        print(f"{label}: mlpcore {min(mine):.3f} s ({gb / min(mine):.2f} GB/s, max "
              f"{max(mine):.3f}), {base_label} {min(base):.3f} s ({gb / min(base):.2f} GB/s, "
              f"max {max(base):.3f}); ratio {ratio:.2f} (goal <= {GOAL_RATIO})")
        results.append(ratio <= GOAL_RATIO)

    report("save", save_ours, save_plain, "save_file + fsync")
    report("load", load_ours, load_plain, "load_file")
    for backend, seconds in framework_saves.items():
        print(f"save from {backend}: {seconds:.3f} s ({gb / seconds:.2f} GB/s)")
    for backend, seconds in frameworks.items():
        print(f"load into {backend}: {seconds:.3f} s ({gb / seconds:.2f} GB/s)")
    if peak is not None:
        print(f"peak NumPy/Python allocation while loading into torch: {peak / 1e6:.0f} MB, "
              f"{peak / nbytes:.2f}x the model (goal <= {GOAL_COPY}x: only the backend's own "
              "copy)")
        results.append(peak <= GOAL_COPY * nbytes)
    ok = all(results)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
