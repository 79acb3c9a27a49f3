"""Reading and writing IDX files, the format of MNIST and Fashion-MNIST.

An IDX file (http://yann.lecun.com/exdb/mnist/) is a header followed by the array's values::

    offset  size      contents
    0       2         two zero bytes
    2       1         type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                      0x0D float32, 0x0E float64
    3       1         number of dimensions, ndim
    4       4 * ndim  each dimension's size, a big-endian uint32
    ...               prod(dims) values in C order, multi-byte values big-endian

The first four bytes read as a big-endian integer are the file's *magic number*, ``0x00000803``
for MNIST's (N, 28, 28) image files and ``0x00000801`` for its (N,) label files.

A file may be stored gzip-compressed. :func:`read_idx` recognises that from the gzip magic bytes
``1f 8b`` at the start of the file, whatever the file is called. It reads and decompresses the
whole content and checks the header's dimensions against the number of bytes actually present
before building any array, so a damaged header cannot make it allocate more than the file holds.
Every problem is reported as a :class:`~mlpcore.errors.DataError` naming the file.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.errors import DataError

__all__ = ["IDX_TYPES", "read_idx", "write_idx"]

IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
"""IDX type code -> the big-endian NumPy dtype of the values stored in the file."""

GZIP_MAGIC = b"\x1f\x8b"

_EXPECTED_MAGIC = (
    "0x0000TTNN: two zero bytes, a type code TT in "
    + ", ".join(f"{code:02X}" for code in IDX_TYPES)
    + ", and the number of dimensions NN >= 1"
)


def _read_content(path: Path) -> tuple[bytes, str]:
    """The file's bytes, decompressed when they start with the gzip magic, and a description."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise DataError(f"{path}: no such IDX file") from err
    except OSError as err:
        raise DataError(f"{path}: cannot read IDX file: {err.strerror or err}") from err
    if not raw.startswith(GZIP_MAGIC):
        return raw, "file"
    try:
        return gzip.decompress(raw), "decompressed gzip content"
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt gzip stream: {err}") from err


def read_idx(path: str | os.PathLike[str]) -> npt.NDArray[Any]:
    """Read an IDX file, raw or gzip-compressed, into a NumPy array.

    Returns a new, writable array in native byte order with the shape given by the header
    (for MNIST: (N, 28, 28) images or (N,) labels) and the dtype given by its type code:
    uint8, int8, int16, int32, float32 or float64.

    Raises :class:`~mlpcore.errors.DataError`, with the path in the message, when the file is
    missing or unreadable, its gzip stream is corrupt, its magic number is not an IDX one, its
    header is cut short, or its data has fewer or more bytes than the header declares.
    """
    path = Path(path)
    content, what = _read_content(path)
    if len(content) < 4:
        raise DataError(
            f"{path}: truncated IDX header: {what} has {len(content)} bytes, "
            "fewer than the 4-byte magic number"
        )
    magic = int.from_bytes(content[:4], "big")
    type_code, ndim = content[2], content[3]
    if content[:2] != b"\x00\x00" or type_code not in IDX_TYPES or ndim == 0:
        raise DataError(
            f"{path}: not an IDX file: magic number 0x{magic:08X} in its {what}; "
            f"expected {_EXPECTED_MAGIC}"
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(
            f"{path}: truncated IDX header: magic number 0x{magic:08X} declares {ndim} "
            f"dimensions, so the header is {header_size} bytes, but the {what} has only "
            f"{len(content)} bytes"
        )
    shape = tuple(
        int.from_bytes(content[offset:offset + 4], "big") for offset in range(4, header_size, 4)
    )
    dtype = IDX_TYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    found = len(content) - header_size
    if found != expected:
        problem = "truncated IDX data" if found < expected else "trailing bytes after IDX data"
        raise DataError(
            f"{path}: {problem}: header declares shape {shape} of {dtype.name}, which needs "
            f"{expected} bytes after the {header_size}-byte header, but the {what} has {found}"
        )
    values = np.frombuffer(content, dtype=dtype, count=math.prod(shape), offset=header_size)
    return values.astype(dtype.newbyteorder("=")).reshape(shape)


def write_idx(path: str | os.PathLike[str], array: npt.ArrayLike, *, compress: bool = False,
              compresslevel: int = 9) -> None:
    """Write ``array`` as an IDX file; with ``compress=True``, gzip-compressed.

    ``array`` must have at least one dimension, every dimension below 2**32, and a dtype that
    IDX can hold (uint8, int8, int16, int32, float32, float64); values are written big-endian.
    The gzip header carries no file name and a zero timestamp, so equal arrays give equal
    bytes. Raises ``ValueError`` for an array IDX cannot represent and
    :class:`~mlpcore.errors.DataError` when the file cannot be written.
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
