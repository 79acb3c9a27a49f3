"""The framework benchmarks' workloads, and the training images every benchmark uses:
Fashion-MNIST when it is installed, else random.

The benchmarks time 55,000 rows, the notebook's training split. The full Fashion-MNIST training
file has 60,000 (``load_dataset`` finds it under ``/usr/share/datasets/fashion-mnist`` or
``MLPCORE_DATA``); its first ``n_rows`` images are used. Without it, ``load_dataset`` falls back to
the 5,000-image embedded subset, too few, and the benchmarks time random pixels of the same shape
instead (the arithmetic per step does not depend on the pixel values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import mlpcore

Array = np.ndarray[Any, Any]
LR = 0.1
"""The SGD learning rate of every workload."""


@dataclass(frozen=True)
class Workload:
    """One benchmark workload: layer sizes, activation, dropout rate and batch size."""

    name: str
    sizes: tuple[int, int, int]
    activation: str
    dropout: float
    batch: int

    @property
    def spec(self) -> mlpcore.MLPSpec:
        return mlpcore.MLPSpec(self.sizes, self.activation, self.dropout)  # type: ignore[arg-type]

    def describe(self) -> str:
        drop = f", dropout {self.dropout}" if self.dropout else ""
        return (f"{'-'.join(map(str, self.sizes))} {self.activation}{drop}, batch {self.batch}, "
                f"SGD {LR}")


WORKLOADS = {
    "notebook": Workload("notebook", (784, 128, 10), "sigmoid", 0.0, 64),
    "dropout": Workload("dropout", (784, 256, 10), "relu", 0.5, 128),
}


def training_images(n_rows: int, n_inputs: int = 784,
                    n_classes: int = 10) -> tuple[Array, Array, str]:
    """``n_rows`` images (float32 in [0, 1], (n_rows, n_inputs)), int64 labels, and the source."""
    from mlpcore.data import load_dataset
    from mlpcore.errors import DataError

    try:
        splits = load_dataset(None, validation_size=0)
    except DataError:
        splits = None
    if splits is not None and len(splits.train.labels) >= n_rows:
        return (np.asarray(splits.train.images[:n_rows]),
                splits.train.labels[:n_rows].astype(np.int64), str(splits.source))
    rng = np.random.default_rng(0)
    return (rng.random((n_rows, n_inputs), dtype=np.float32),
            rng.integers(0, n_classes, n_rows, dtype=np.int64),
            f"random pixels (no dataset of {n_rows} training images found)")
