"""Finding an MNIST-format dataset directory, loading it, and keeping a validation set back.

Each of the four :data:`FILE_NAMES` may be gzipped (``.gz``) or raw (read if both exist). The
directory, first match wins: the path given, ``$MLPCORE_DATA`` (if non-empty),
:data:`DEBIAN_FASHION_MNIST`, else the embedded Fashion-MNIST subset. A path given or in
``$MLPCORE_DATA`` that does not exist is an error, never a reason to fall back to other data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.data.idx import read_idx
from mlpcore.data.rows import Rows
from mlpcore.errors import DataError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs Fashion-MNIST."""

DATA_ENV_VAR = "MLPCORE_DATA"

FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""The standard file names in a dataset directory, without the optional ``.gz``."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images float32 (N, D) in [0, 1], labels int64 (N,), and where they came from.

    ``images`` is an array in memory, or :class:`~mlpcore.data.rows.Rows` (loaded with
    ``mmap=True``) handing out float32 rows a block at a time. Wrong dtypes, shapes or counts
    raise :class:`~mlpcore.errors.DataError` naming ``source``.
    """

    images: npt.NDArray[np.float32] | Rows
    labels: npt.NDArray[np.int64]
    source: str

    def __post_init__(self) -> None:
        if self.images.dtype != np.float32 or self.images.ndim != 2:
            raise DataError(f"{self.source}: images must be a float32 array of shape (N, D), "
                            f"got {self.images.dtype} of shape {self.images.shape}")
        if self.labels.dtype != np.int64 or self.labels.ndim != 1:
            raise DataError(f"{self.source}: labels must be an int64 array of shape (N,), "
                            f"got {self.labels.dtype} of shape {self.labels.shape}")
        if len(self.images) != len(self.labels):
            raise DataError(f"{self.source}: {len(self.images)} images but "
                            f"{len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return (f"Dataset(images={self.images.dtype}{self.images.shape}, "
                f"labels={self.labels.dtype}{self.labels.shape}, source={self.source!r})")


@dataclass(frozen=True, eq=False)
class Splits:
    """Training, validation (``None`` when none was kept back) and test sets, and their source."""

    train: Dataset
    valid: Dataset | None
    test: Dataset
    source: str


def load_idx_pair(images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str],
                  source: str | None = None, *, mmap: bool = False) -> Dataset:
    """A :class:`Dataset` of uint8 images (N, rows, cols) or (N, D), every size >= 1, scaled to
    float32 (N, rows*cols) / 255, and of N non-negative integer labels, as int64.

    ``mmap=True``: the images stay uint8 in the file, memory-mapped (a gzipped file: in memory,
    see :func:`read_idx`), as :class:`~mlpcore.data.rows.Rows` divided by 255 a block at a
    time; the labels are read into memory. ``source`` defaults to both paths. Each DataError
    names the file at fault (both for counts).
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    pixels, labels = read_idx(images_path, mmap=mmap), read_idx(labels_path)
    if pixels.dtype != np.uint8 or pixels.ndim < 2 or pixels.size == 0:
        raise DataError(f"{images_path}: expected uint8 images of shape (N, rows, cols) with "
                        f"N, rows, cols >= 1, found {pixels.dtype} of shape {pixels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 1:
        raise DataError(f"{labels_path}: expected integer labels of shape (N,), "
                        f"found {labels.dtype} of shape {labels.shape}")
    if len(pixels) != len(labels):
        raise DataError(f"{images_path} holds {len(pixels)} images but {labels_path} holds "
                        f"{len(labels)} labels; they must match one to one")
    if labels.min() < 0:
        raise DataError(f"{labels_path}: labels must be non-negative, found {labels.min()}")
    source = source if source is not None else f"{images_path} + {labels_path}"
    flat = pixels.reshape(len(pixels), -1)
    if mmap:
        return Dataset(images=Rows(flat, divisor=255, source=str(images_path)),
                       labels=labels.astype(np.int64), source=source)
    images = flat.astype(np.float32)
    images /= np.float32(255)
    return Dataset(images=images, labels=labels.astype(np.int64), source=source)


def find_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The dataset directory in the search order above, or ``None`` for the embedded subset.

    Checks only that it exists (:class:`~mlpcore.errors.DataError` naming it and its origin).
    """
    if explicit is not None:
        if os.fspath(explicit) == "":
            raise DataError("'': the data directory path is empty")
        path, origin = Path(explicit).expanduser(), "the argument"
    elif os.environ.get(DATA_ENV_VAR, ""):
        path, origin = Path(os.environ[DATA_ENV_VAR]).expanduser(), f"${DATA_ENV_VAR}"
    else:
        return DEBIAN_FASHION_MNIST if DEBIAN_FASHION_MNIST.is_dir() else None
    if not path.exists():
        raise DataError(f"{path}: data directory from {origin} does not exist")
    if not path.is_dir():
        raise DataError(f"{path}: data directory from {origin} is not a directory")
    return path


def find_idx_file(directory: str | os.PathLike[str], name: str) -> Path:
    """``directory/name`` or else ``directory/name.gz``; a DataError naming both if neither."""
    candidates = [Path(directory) / name, Path(directory) / f"{name}.gz"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(f"{directory}: no IDX file {name!r}; looked for "
                    + " and ".join(repr(c.name) for c in candidates) + " in that directory")


def embedded_data_dir() -> Path:
    """The directory of the Fashion-MNIST subset shipped inside this package."""
    location: Any = resources.files("mlpcore.data") / "embedded"
    if not isinstance(location, os.PathLike):
        raise DataError(f"{location}: the embedded dataset is not installed as a directory")
    return Path(location)


def load_dataset(path: str | os.PathLike[str] | None = None, *,
                 validation_size: int | np.integer[Any] | None = None,
                 embedded: bool = False, mmap: bool = False) -> Splits:
    """Load ``find_data_dir(path)``, or the embedded subset, as training/validation/test sets.

    The last ``validation_size`` training images (default: 10%, at most 5,000) become ``valid``
    (``None`` for 0), the ones before them ``train``; ``mmap=True`` maps the image files instead
    of reading them (:func:`load_idx_pair`). ``ValueError`` for a ``validation_size``
    that is not a non-negative integer below the number of training images, or for both ``path``
    and ``embedded=True``; :class:`~mlpcore.errors.DataError` for a missing or damaged file.
    """
    if validation_size is not None and (isinstance(validation_size, bool)
                                        or not isinstance(validation_size, int | np.integer)
                                        or validation_size < 0):
        raise ValueError("validation_size must be a non-negative integer or None, "
                         f"got {validation_size!r}")
    if embedded and path is not None:
        raise ValueError(f"pass a path ({os.fspath(path)!r}) or embedded=True, not both")
    directory = None if embedded else find_data_dir(path)
    source = str(directory)
    if directory is None:
        directory = embedded_data_dir()
        source = f"embedded Fashion-MNIST subset ({directory})"
    files = {key: find_idx_file(directory, name) for key, name in FILE_NAMES.items()}
    full = load_idx_pair(files["train_images"], files["train_labels"], mmap=mmap)
    test = load_idx_pair(files["test_images"], files["test_labels"],
                         source=str(files["test_images"]), mmap=mmap)
    if full.images.shape[1] != test.images.shape[1]:
        raise DataError(f"{files['train_images']} has {full.images.shape[1]} pixels per image "
                        f"but {files['test_images']} has {test.images.shape[1]}")
    n = len(full)
    n_valid = min(5000, n // 10) if validation_size is None else validation_size
    if n_valid >= n:
        raise ValueError(f"validation_size must be smaller than the {n} training images in "
                         f"{files['train_images']}, got {n_valid}")
    n_train, origin = n - n_valid, files["train_images"]
    train = Dataset(full.images[:n_train], full.labels[:n_train], f"{origin} [0:{n_train}]")
    valid = (Dataset(full.images[n_train:], full.labels[n_train:], f"{origin} [{n_train}:{n}]")
             if n_valid else None)
    return Splits(train=train, valid=valid, test=test, source=source)
