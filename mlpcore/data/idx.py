"""IDX files, the format of MNIST (http://yann.lecun.com/exdb/mnist/), raw or gzip-compressed.

An IDX file is two zero bytes, a type code (:data:`IDX_TYPES`), the number of dimensions ndim,
ndim big-endian uint32 sizes, then the values in C order, big-endian. MNIST's (N, 28, 28) images
start 0x00000803, its (N,) labels 0x00000801.
"""

from __future__ import annotations

import gzip
import math
import mmap as mmap_module
import os
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from mlpcore.errors import DataError

__all__ = ["IDX_TYPES", "read_idx", "write_idx"]

IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
"""IDX type code -> the big-endian dtype of the values in the file."""

GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike[str], *, mmap: bool = False) -> npt.NDArray[Any]:
    """The file's array: the header's shape and dtype.

    By default it is read into memory, in native byte order, writable. ``mmap=True`` maps a raw
    file instead: a read-only array in the file's (big-endian) dtype whose pages are read when
    used, so a file larger than memory can be opened; gzip content cannot be mapped, so a gzipped
    file is decompressed into memory as without ``mmap`` (``gunzip -k`` it once to map it).

    Gzip is recognised by its magic bytes, whatever the file is called. The header is checked
    against the bytes present before any array is built, so a hostile header cannot make it
    allocate more than the file holds. Every problem is a DataError naming the file.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            head = file.read(4 + 4 * 255)
            if mmap and not head.startswith(GZIP_MAGIC):
                size = os.fstat(file.fileno()).st_size
                dtype, shape, offset = _header(path, head, size, "file")
                return _mapped(path, file, dtype, shape, offset)
            content = head + file.read()
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such IDX file") from err
    except OSError as err:
        raise DataError(f"{path}: cannot read IDX file: {err.strerror or err}") from err
    what = "file"
    if content.startswith(GZIP_MAGIC):
        what = "decompressed gzip content"
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{path}: corrupt gzip stream: {err}") from err
    dtype, shape, offset = _header(path, content, len(content), what)
    values = np.frombuffer(content, dtype=dtype, count=math.prod(shape), offset=offset)
    return values.astype(dtype.newbyteorder("=")).reshape(shape)


def _header(path: Path, head: bytes, size: int,
            what: str) -> tuple[np.dtype[Any], tuple[int, ...], int]:
    """(dtype, shape, data offset) from the first bytes ``head`` of content of ``size`` bytes,
    checked against that size; a DataError naming ``path`` and ``what`` the content is."""
    if size < 4:
        raise DataError(f"{path}: truncated IDX header: {what} has {size} bytes, "
                        "fewer than the 4-byte magic number")
    magic, type_code, ndim = int.from_bytes(head[:4], "big"), head[2], head[3]
    if head[:2] != b"\x00\x00" or type_code not in IDX_TYPES or ndim == 0:
        codes = ", ".join(f"{code:02X}" for code in IDX_TYPES)
        raise DataError(f"{path}: not an IDX file: magic number 0x{magic:08X} in its {what}; "
                        f"expected 0x0000TTNN: two zero bytes, a type code TT in {codes}, "
                        "and the number of dimensions NN >= 1")
    header_size = 4 + 4 * ndim
    if size < header_size:
        raise DataError(f"{path}: truncated IDX header: magic number 0x{magic:08X} declares "
                        f"{ndim} dimensions, so the header is {header_size} bytes, but the "
                        f"{what} has only {size} bytes")
    shape = tuple(int.from_bytes(head[i:i + 4], "big") for i in range(4, header_size, 4))
    dtype = IDX_TYPES[type_code]
    expected, found = math.prod(shape) * dtype.itemsize, size - header_size
    if found != expected:
        problem = "truncated IDX data" if found < expected else "trailing bytes after IDX data"
        raise DataError(f"{path}: {problem}: header declares shape {shape} of {dtype.name}, "
                        f"which needs {expected} bytes after the {header_size}-byte header, "
                        f"but the {what} has {found}")
    return dtype, shape, header_size


def _mapped(path: Path, file: BinaryIO, dtype: np.dtype[Any], shape: tuple[int, ...],
            offset: int) -> npt.NDArray[Any]:
    """The values of an open raw file as a read-only array over a memory map of it."""
    if math.prod(shape) == 0:  # an empty file region cannot be mapped
        return np.empty(shape, dtype)
    try:
        mapping = mmap_module.mmap(file.fileno(), 0, access=mmap_module.ACCESS_READ)
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot memory-map IDX file: {err}") from err
    return np.frombuffer(mapping, dtype=dtype, count=math.prod(shape), offset=offset
                         ).reshape(shape)


def write_idx(path: str | os.PathLike[str], array: npt.ArrayLike, *, compress: bool = False,
              compresslevel: int = 9) -> None:
    """Write ``array`` as an IDX file; ``compress=True`` gzips it with mtime 0 (reproducible).

    ``ValueError`` for an array IDX cannot hold (dtype not in :data:`IDX_TYPES`, no dimension, a
    size >= 2**32); :class:`~mlpcore.errors.DataError` when the file cannot be written.
    """
    path = Path(path)
    values = np.asarray(array)
    codes = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
    code = codes.get(values.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot hold dtype {values.dtype}; expected one of "
                         + ", ".join(dtype.name for dtype in codes))
    if not 1 <= values.ndim <= 255 or any(size >= 2**32 for size in values.shape):
        raise ValueError(f"IDX cannot hold an array of shape {values.shape}")
    header = bytes([0, 0, code, values.ndim]) + b"".join(
        size.to_bytes(4, "big") for size in values.shape)
    content = header + values.astype(IDX_TYPES[code]).tobytes(order="C")
    if compress:
        content = gzip.compress(content, compresslevel=compresslevel, mtime=0)
    try:
        path.write_bytes(content)
    except OSError as err:
        raise DataError(f"{path}: cannot write IDX file: {err.strerror or err}") from err
