"""Counter-based random streams shared by every backend (docs/contracts.md, "Random streams").

``stream(seed, purpose, *path)`` is a Philox generator keyed by the seed and a path of small
integers, e.g. ``(seed, INIT, layer, 0)`` for a layer's weights: any backend can reproduce any
stream on its own, in any order, and different paths give independent streams.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt

__all__ = ["Purpose", "philox_key", "stream", "stream_words"]


class Purpose(IntEnum):
    """The first element of every stream path, so streams for different purposes never collide."""

    INIT = 1
    DROPOUT = 2
    SHUFFLE = 3


def _seed_sequence(seed: int, purpose: Purpose, path: tuple[int, ...]) -> np.random.SeedSequence:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    key = (int(purpose), *(int(p) for p in path))
    if any(p < 0 for p in key):
        raise ValueError(f"stream path must be non-negative integers, got {path!r}")
    return np.random.SeedSequence(int(seed), spawn_key=key)


def stream(seed: int, purpose: Purpose, *path: int) -> np.random.Generator:
    """A fresh Philox generator for ``(seed, purpose, *path)``, all non-negative integers."""
    return np.random.Generator(np.random.Philox(_seed_sequence(seed, purpose, path)))


def philox_key(seed: int, purpose: Purpose, *path: int) -> tuple[int, int]:
    """The 128-bit key ``(k0, k1)`` of :func:`stream`'s Philox4x64-10 bit generator: its
    ``SeedSequence.generate_state(2, uint64)``. The counter starts at 0 and is incremented before
    each block, so 64-bit outputs ``4b .. 4b+3`` are ``philox4x64_10((b + 1, 0, 0, 0), key)``."""
    k0, k1 = _seed_sequence(seed, purpose, path).generate_state(2, np.uint64)
    return int(k0), int(k1)


def stream_words(seed: int, purpose: Purpose, *path: int,
                 count: int) -> npt.NDArray[np.uint32]:
    """The first ``count`` 32-bit words :func:`stream` draws, e.g. for ``random(dtype=float32)``,
    whose ``k``-th value is ``(word_k >> 8) · 2^-24``: each 64-bit output split low half first,
    as NumPy's ``next_uint32`` does. Drawn as 64-bit integers in one call."""
    raw = np.random.Philox(_seed_sequence(seed, purpose, path)).random_raw((count + 1) // 2)
    # little-endian 64-bit words viewed as 32-bit pairs: low half first on any host
    words: npt.NDArray[np.uint32] = raw.astype("<u8", copy=False).view("<u4")[:count]
    return words
