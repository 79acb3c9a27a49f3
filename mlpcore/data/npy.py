"""NumPy ``.npy`` files, read whole or memory-mapped, with errors that name the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.errors import DataError

__all__ = ["load_npy"]


def load_npy(path: str | os.PathLike[str], *, mmap: bool = False) -> npt.NDArray[Any]:
    """The array in a ``.npy`` file: ``np.load`` without pickles; ``mmap=True`` maps it
    read-only (``mmap_mode="r"``), so its pages are read when used and a file larger than
    memory can be opened. Wrap it in :class:`~mlpcore.data.rows.Rows` to scale integer images
    a block at a time: ``Rows(load_npy(p, mmap=True).reshape(n, -1), divisor=255)``.

    Every problem (missing, unreadable, not a ``.npy`` file, object dtype, fewer bytes than the
    header declares) is a :class:`~mlpcore.errors.DataError` naming the file.
    """
    path = Path(path)
    try:
        array: npt.NDArray[Any] = np.load(path, mmap_mode="r" if mmap else None,
                                          allow_pickle=False)
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such .npy file") from err
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"{path}: not a readable .npy file: {err}") from err
    if not isinstance(array, np.ndarray):  # np.load gives an NpzFile for a .npz archive
        raise DataError(f"{path}: not a .npy file (a .npz archive?)")
    return array
