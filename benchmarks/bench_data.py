"""The training images every benchmark uses: Fashion-MNIST when it is installed, else random.

The benchmarks time 55,000 rows, the notebook's training split. The full Fashion-MNIST training
file has 60,000 (``load_dataset`` finds it under ``/usr/share/datasets/fashion-mnist`` or
``MLPCORE_DATA``); its first ``n_rows`` images are used. Without it, ``load_dataset`` falls back to
the 5,000-image embedded subset, too few, and the benchmarks time random pixels of the same shape
instead (the arithmetic per step does not depend on the pixel values).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


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
        return (splits.train.images[:n_rows], splits.train.labels[:n_rows].astype(np.int64),
                str(splits.source))
    rng = np.random.default_rng(0)
    return (rng.random((n_rows, n_inputs), dtype=np.float32),
            rng.integers(0, n_classes, n_rows, dtype=np.int64),
            f"random pixels (no dataset of {n_rows} training images found)")
