"""Counter-based random streams shared by every backend (docs/contracts.md, "Random streams").

``stream(seed, purpose, *path)`` is a Philox generator keyed by the seed and a path of small
integers, e.g. ``(seed, INIT, layer, 0)`` for a layer's weights: any backend can reproduce any
stream on its own, in any order, and different paths give independent streams.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np

__all__ = ["Purpose", "stream"]


class Purpose(IntEnum):
    """The first element of every stream path, so streams for different purposes never collide."""

    INIT = 1
    DROPOUT = 2
    SHUFFLE = 3


def stream(seed: int, purpose: Purpose, *path: int) -> np.random.Generator:
    """A fresh Philox generator for ``(seed, purpose, *path)``, all non-negative integers."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    key = (int(purpose), *(int(p) for p in path))
    if any(p < 0 for p in key):
        raise ValueError(f"stream path must be non-negative integers, got {path!r}")
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(int(seed), spawn_key=key)))
