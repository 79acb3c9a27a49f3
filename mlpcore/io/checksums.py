"""Per-variable checksums of checkpoint data: the algorithms a manifest may name.

A checksum covers a tensor's stored bytes exactly (little-endian, C order). Two algorithms:

- ``"crc32"`` (written by default since format version 2): zlib's CRC-32, 8 lowercase hex digits,
  the integer value zero-padded. About 5 GB/s here, so verification costs a few percent of a
  load. It detects every error of up to 32 consecutive bits (so every flipped bit) and all but
  about 1 in 4 billion random corruptions. It does **not** resist deliberate tampering: anyone
  can change data and fix the CRC.
- ``"sha256"`` (format version 1, and ``save(..., checksum="sha256")``): 64 lowercase hex
  digits. Cryptographic, about 1.7 GB/s here, so it costs roughly a second per 2 GB.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable
from typing import Any, Final, Literal, get_args

__all__ = ["ALGORITHMS", "ChecksumName", "Crc32", "new_digest", "placeholder", "valid_hex"]

ChecksumName = Literal["crc32", "sha256"]
ALGORITHMS: Final[tuple[str, ...]] = get_args(ChecksumName)
_HEX_DIGITS: Final = {"crc32": 8, "sha256": 64}
_PLACEHOLDER_CHAR: Final = "x"


class Crc32:
    """zlib's CRC-32 with the ``update``/``hexdigest`` interface of a ``hashlib`` object."""

    def __init__(self) -> None:
        self._value = 0

    def update(self, data: Any, /) -> None:
        self._value = zlib.crc32(data, self._value)

    def hexdigest(self) -> str:
        return f"{self._value:08x}"


_FACTORIES: Final[dict[str, Callable[[], Any]]] = {"crc32": Crc32, "sha256": hashlib.sha256}


def new_digest(algorithm: str) -> Any:
    """A fresh digest object for ``algorithm`` (one of :data:`ALGORITHMS`)."""
    if algorithm not in _FACTORIES:
        raise ValueError(f"checksum must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    return _FACTORIES[algorithm]()


def valid_hex(algorithm: str, text: object) -> bool:
    """Whether ``text`` is a well-formed ``algorithm`` digest: the right number of lowercase hex."""
    return (isinstance(text, str) and len(text) == _HEX_DIGITS[algorithm]
            and all(c in "0123456789abcdef" for c in text))


def placeholder(algorithm: str) -> str:
    """A stand-in as wide as an ``algorithm`` digest, and never a valid one (``"x"`` repeated).

    :func:`mlpcore.save` writes the header with these first and overwrites them with the real
    digests once the data is written, so an unfinished file can never pass :func:`valid_hex`.
    """
    return _PLACEHOLDER_CHAR * _HEX_DIGITS[algorithm]
