"""Rows that need not fit in memory: a (memory-mapped) array handed out a block at a time.

:class:`Rows` holds stored values (N, D) of any real dtype, usually a read-only memory map of an
IDX or ``.npy`` file (``read_idx(path, mmap=True)``, ``load_npy(path, mmap=True)``), and a
``divisor``: ``rows.take(indices, dtype)`` is ``values[indices] / divisor``, computed in
:attr:`Rows.dtype` and given as a new C-contiguous ``dtype`` array, so 8-bit images become floats
a block at a time, never as a whole, with the values a whole conversion would give. Only the rows
asked for are read. After every :data:`BLOCK_ROWS` rows the pages of the map that were touched
are released (``madvise(MADV_DONTNEED)``; they stay in the operating system's page cache, so
reading them again costs no disk I/O): the process's resident size grows with the block, not
with the file. ``fit``, ``evaluate`` and ``predict`` read :class:`Rows` a block at a time
(docs/user-guide.md, "Data larger than memory").
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from mlpcore.errors import InvalidInputError

__all__ = ["BLOCK_ROWS", "Rows", "as_rows", "memory_map_of"]

BLOCK_ROWS = 1024
"""Rows gathered between two releases of a map's pages. The kernel maps up to 64 KiB around each
page it faults in, so one block keeps at most ``BLOCK_ROWS × 64 KiB`` (64 MiB) of the file
resident, and less for rows read in order."""


def memory_map_of(array: Any) -> mmap.mmap | None:
    """The :class:`mmap.mmap` under ``array`` (an ``np.memmap``, ``np.load(mmap_mode=...)``'s
    result, a view of either, or ``np.frombuffer`` over a map), else ``None``."""
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return base
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return None


class Rows:
    """``values`` (N, D) handed out as ``values[rows] / divisor`` in a floating dtype.

    :attr:`dtype`, in which the division is done, is ``values``'s own for floating values and
    float32 for integers (so uint8 images with ``divisor=255`` give what ``load_idx_pair`` gives
    in memory). ``source`` names the data in errors. ``values`` is kept as given (no copy); a
    memory map under it (:func:`memory_map_of`) has its pages released after every block read.
    """

    ndim = 2

    def __init__(self, values: npt.NDArray[Any], *, divisor: float = 1.0,
                 source: str = "rows") -> None:
        if values.ndim != 2 or values.dtype.kind not in "iuf":
            raise InvalidInputError(f"{source}: rows must be a real array of shape (N, D), got "
                                    f"{values.dtype} of shape {values.shape}")
        self.values, self.divisor, self.source = values, float(divisor), source
        self.dtype: np.dtype[Any] = (values.dtype.newbyteorder("=") if values.dtype.kind == "f"
                                     else np.dtype(np.float32))
        self._map = memory_map_of(values)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.values.shape[0]), int(self.values.shape[1]))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        mapped = ", memory-mapped" if self._map is not None else ""
        return (f"Rows({self.values.dtype}{self.shape} / {self.divisor:g}{mapped}, "
                f"source={self.source!r})")

    @overload
    def __getitem__(self, key: slice) -> Rows: ...
    @overload
    def __getitem__(self, key: npt.ArrayLike) -> npt.NDArray[Any]: ...

    def __getitem__(self, key: slice | npt.ArrayLike) -> Rows | npt.NDArray[Any]:
        """As NumPy indexes: ``rows[a:b]`` is a view (:class:`Rows` of those rows, nothing read),
        ``rows[indices]`` a copy of those rows (:meth:`take`, in :attr:`dtype`)."""
        if isinstance(key, slice):
            return Rows(self.values[key], divisor=self.divisor, source=self.source)
        return self.take(np.asarray(key), self.dtype)

    def __array__(self, dtype: npt.DTypeLike | None = None,
                  copy: bool | None = None) -> npt.NDArray[Any]:
        """Every row in memory at once (what ``np.asarray(rows)`` gives): a whole copy."""
        return self.take(np.arange(len(self)), self.dtype if dtype is None else dtype)

    def take(self, rows: npt.ArrayLike, dtype: npt.DTypeLike = np.float32) -> npt.NDArray[Any]:
        """``values[rows] / divisor`` as a C-contiguous ``dtype`` array (len(rows), D).

        ``IndexError`` for an index outside ``[0, N)``."""
        index = np.asarray(rows, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"{self.source}: row indices must lie in [0, {len(self)}), "
                             f"got {int(index.min())}..{int(index.max())}")
        out = np.empty((index.size, self.shape[1]), dtype)
        for start in range(0, index.size, BLOCK_ROWS):
            block = slice(start, start + BLOCK_ROWS)
            values = self.values[index[block]]
            out[block] = (values if self.divisor == 1.0 else
                          np.divide(values, self.dtype.type(self.divisor), dtype=self.dtype))
            self.release()
        return out

    def blocks(self, dtype: npt.DTypeLike = np.float32,
               size: int | None = None) -> Iterator[tuple[slice, npt.NDArray[Any]]]:
        """Every row in order, ``size`` (default ``8 * BLOCK_ROWS``) at a time:
        ``(slice, take(slice))`` pairs."""
        size = 8 * BLOCK_ROWS if size is None else size
        for start in range(0, len(self), size):
            where = slice(start, min(start + size, len(self)))
            yield where, self.take(np.arange(where.start, where.stop), dtype)

    def release(self) -> None:
        """Drop the map's resident pages from this process (no-op without a map or madvise)."""
        if self._map is not None and hasattr(self._map, "madvise"):
            self._map.madvise(mmap.MADV_DONTNEED)


def as_rows(x: Any) -> Rows | None:
    """``x`` itself if it is :class:`Rows`; a 2-D floating array backed by a memory map as
    :class:`Rows` (divisor 1); anything else ``None`` (it is used in memory, as before)."""
    if isinstance(x, Rows):
        return x
    if isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype.kind == "f" \
            and memory_map_of(x) is not None:
        return Rows(x, source="memory-mapped inputs")
    return None
