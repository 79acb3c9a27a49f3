"""Datasets: MNIST-format IDX files and the embedded Fashion-MNIST subset.

:func:`load_dataset` finds a directory of IDX files (an explicit path, then ``$MLPCORE_DATA``,
then Debian's ``/usr/share/datasets/fashion-mnist``), falls back to the 5,000 + 1,000-image
Fashion-MNIST subset shipped in ``embedded/``, and returns :class:`Splits` of float32 images in
[0, 1] and int64 labels. :func:`read_idx` reads a single IDX file, gzipped or raw. Every problem
with a data file raises :class:`~mlpcore.errors.DataError` naming the file.

``DEBIAN_FASHION_MNIST`` is re-exported here for reading; :func:`find_data_dir` looks it up in
:mod:`mlpcore.data.datasets`, so a test that wants to move it must patch it there.
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

__all__ = [
    "DEBIAN_FASHION_MNIST",
    "Dataset",
    "Splits",
    "embedded_data_dir",
    "find_data_dir",
    "find_idx_file",
    "load_dataset",
    "load_idx_pair",
    "read_idx",
    "write_idx",
]
