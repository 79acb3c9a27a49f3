"""MNIST-format datasets: IDX files and the embedded Fashion-MNIST subset, ``.npy`` arrays, and
rows read a block at a time from files larger than memory (docs/user-guide.md).

A test that moves ``DEBIAN_FASHION_MNIST`` patches it in :mod:`mlpcore.data.datasets`.
"""

from mlpcore.data.datasets import (
    DEBIAN_FASHION_MNIST,
    Dataset,
    Splits,
    embedded_data_dir,
    find_data_dir,
    find_idx_file,
    load_dataset,
    load_idx_pair,
)
from mlpcore.data.idx import read_idx, write_idx
from mlpcore.data.npy import load_npy
from mlpcore.data.rows import Rows

__all__ = ["DEBIAN_FASHION_MNIST", "Dataset", "Rows", "Splits", "embedded_data_dir",
           "find_data_dir", "find_idx_file", "load_dataset", "load_idx_pair", "load_npy",
           "read_idx", "write_idx"]
