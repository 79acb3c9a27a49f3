"""Finding and loading an MNIST-format dataset, and splitting off a validation set.

A dataset directory holds the four files of MNIST and Fashion-MNIST, each either gzipped
(``.gz``) or raw; when both exist the raw one is read::

    train-images-idx3-ubyte   (60000, 28, 28) uint8 pixels
    train-labels-idx1-ubyte   (60000,) uint8 class numbers
    t10k-images-idx3-ubyte    (10000, 28, 28) uint8 pixels
    t10k-labels-idx1-ubyte    (10000,) uint8 class numbers

:func:`find_data_dir` picks the directory, first match wins:

1. the directory passed to it (``load_dataset(path)``, ``mlpcore train --data PATH``);
2. the directory named by the environment variable ``MLPCORE_DATA`` (an empty value counts as
   unset);
3. ``/usr/share/datasets/fashion-mnist``, where Debian's ``dataset-fashion-mnist`` package
   installs the full Fashion-MNIST (:data:`DEBIAN_FASHION_MNIST`);
4. none: :func:`load_dataset` then uses the Fashion-MNIST subset embedded in this package
   (5,000 training and 1,000 test images, equally many of each class; see
   ``embedded/README.md``).

A directory named in step 1 or 2 that does not exist is an error, never a reason to fall back to
the next step: a typo must not silently train on other data.

:func:`load_dataset` keeps the *last* ``validation_size`` images of the training file back for
validation and trains on the ones before them, as the Raschka notebook does with MNIST (55,000
training + 5,000 validation images). Images come as float32 rows scaled to [0, 1], labels as
int64.
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
from mlpcore.errors import DataError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs Fashion-MNIST."""

DATA_ENV_VAR = "MLPCORE_DATA"
"""Environment variable naming a dataset directory, searched after an explicit path."""

DEFAULT_VALIDATION_SIZE = 5000
"""Validation images kept back by default: 10% of the training file, at most this many."""

FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
"""The standard file names in a dataset directory, without the optional ``.gz``."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Labelled images: ``images`` float32 (N, rows*cols) in [0, 1], ``labels`` int64 (N,).

    ``source`` says where they came from (file names and the range of rows taken). The
    constructor checks dtypes, shapes and that there is one label per image, and raises
    :class:`~mlpcore.errors.DataError` naming ``source`` otherwise.
    """

    images: npt.NDArray[np.float32]
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
    """A dataset's training, validation (``None`` when none was kept back) and test sets.

    ``source`` names the directory they were read from, or says they are the embedded subset.
    """

    train: Dataset
    valid: Dataset | None
    test: Dataset
    source: str


def load_idx_pair(images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str],
                  source: str | None = None) -> Dataset:
    """Load an images file and its labels file into a :class:`Dataset`.

    The images file must hold uint8 pixels of shape (N, rows, cols) (or (N, D)), N >= 1; they
    become float32 (N, rows*cols) divided by 255. The labels file must hold N non-negative integers;
    they become int64 (N,). ``source`` defaults to the two paths. Raises
    :class:`~mlpcore.errors.DataError` for an unreadable file, wrong dtypes or shapes, or when
    the numbers of images and labels differ (the message names both files).
    """
    images_path, labels_path = Path(images_path), Path(labels_path)
    pixels = read_idx(images_path)
    labels = read_idx(labels_path)
    if pixels.dtype != np.uint8 or pixels.ndim < 2 or pixels.size == 0:
        raise DataError(f"{images_path}: expected uint8 images of shape (N, rows, cols) with "
                        f"N, rows, cols >= 1, found {pixels.dtype} of shape {pixels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.ndim != 1:
        raise DataError(f"{labels_path}: expected integer labels of shape (N,), "
                        f"found {labels.dtype} of shape {labels.shape}")
    if len(pixels) != len(labels):
        raise DataError(f"{images_path} holds {len(pixels)} images but {labels_path} holds "
                        f"{len(labels)} labels; they must match one to one")
    if labels.size and labels.min() < 0:
        raise DataError(f"{labels_path}: labels must be non-negative, found {labels.min()}")
    images = pixels.reshape(len(pixels), -1).astype(np.float32)
    images /= np.float32(255)
    return Dataset(images=images, labels=labels.astype(np.int64),
                   source=source if source is not None else f"{images_path} + {labels_path}")


def _existing_dir(path: Path, origin: str) -> Path:
    if not path.exists():
        raise DataError(f"{path}: data directory from {origin} does not exist")
    if not path.is_dir():
        raise DataError(f"{path}: data directory from {origin} is not a directory")
    return path


def find_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The dataset directory to use, or ``None`` for the embedded subset.

    Search order: ``explicit``, then ``$MLPCORE_DATA``, then :data:`DEBIAN_FASHION_MNIST` if it
    exists. An explicit path or ``$MLPCORE_DATA`` naming a missing directory raises
    :class:`~mlpcore.errors.DataError`; the search never falls back past it. Only checks that the
    directory exists; :func:`find_idx_file` looks for the files in it.
    """
    if explicit is not None:
        if os.fspath(explicit) == "":
            raise DataError("'': the data directory path is empty")
        return _existing_dir(Path(explicit).expanduser(), "the argument")
    from_env = os.environ.get(DATA_ENV_VAR, "")
    if from_env:
        return _existing_dir(Path(from_env).expanduser(), f"${DATA_ENV_VAR}")
    if DEBIAN_FASHION_MNIST.is_dir():
        return DEBIAN_FASHION_MNIST
    return None


def find_idx_file(directory: str | os.PathLike[str], name: str) -> Path:
    """``directory/name`` or ``directory/name.gz``, whichever exists (the raw file if both).

    Raises :class:`~mlpcore.errors.DataError` listing the names looked for when neither exists.
    """
    directory = Path(directory)
    candidates = [directory / name, directory / f"{name}.gz"]
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


def _check_validation_size(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"validation_size must be a non-negative integer or None, got {value!r}")
    if value < 0:
        raise ValueError(f"validation_size must be a non-negative integer, got {value}")
    return int(value)


def _rows(dataset: Dataset, start: int, stop: int, source: str) -> Dataset:
    return Dataset(images=dataset.images[start:stop], labels=dataset.labels[start:stop],
                   source=source)


def load_dataset(path: str | os.PathLike[str] | None = None, *,
                 validation_size: int | np.integer[Any] | None = None,
                 embedded: bool = False) -> Splits:
    """Load a dataset directory, or the embedded subset, as training/validation/test sets.

    The directory is ``find_data_dir(path)``; with ``embedded=True``, or when the search finds
    nothing, it is the embedded Fashion-MNIST subset. The last ``validation_size`` images of the
    training file become ``valid`` and the ones before them ``train``; ``validation_size=0``
    gives ``valid=None``. By default it is 10% of the training images, at most
    :data:`DEFAULT_VALIDATION_SIZE`: 55,000 + 5,000 for (Fashion-)MNIST, 4,500 + 500 for the
    embedded subset. Images are float32 (N, rows*cols) in [0, 1], labels int64 (N,).

    Raises ``ValueError`` for a ``validation_size`` that is not a non-negative integer smaller
    than the number of training images, or when both ``path`` and ``embedded=True`` are given;
    :class:`~mlpcore.errors.DataError` for a missing directory or a missing or damaged file.
    """
    wanted = _check_validation_size(validation_size)
    if embedded:
        if path is not None:
            raise ValueError(f"pass a path ({os.fspath(path)!r}) or embedded=True, not both")
        directory = None
    else:
        directory = find_data_dir(path)
    if directory is None:
        directory = embedded_data_dir()
        source = f"embedded Fashion-MNIST subset ({directory})"
    else:
        source = str(directory)

    files = {key: find_idx_file(directory, name) for key, name in FILE_NAMES.items()}
    full = load_idx_pair(files["train_images"], files["train_labels"])
    test = load_idx_pair(files["test_images"], files["test_labels"],
                         source=str(files["test_images"]))
    if full.images.shape[1] != test.images.shape[1]:
        raise DataError(f"{files['train_images']} has {full.images.shape[1]} pixels per image "
                        f"but {files['test_images']} has {test.images.shape[1]}")

    n = len(full)
    n_valid = min(DEFAULT_VALIDATION_SIZE, n // 10) if wanted is None else wanted
    if n_valid >= n:
        raise ValueError(f"validation_size must be smaller than the {n} training images in "
                         f"{files['train_images']}, got {n_valid}")
    n_train = n - n_valid
    train = _rows(full, 0, n_train, f"{files['train_images']} [0:{n_train}]")
    valid = _rows(full, n_train, n, f"{files['train_images']} [{n_train}:{n}]") if n_valid else None
    return Splits(train=train, valid=valid, test=test, source=source)
