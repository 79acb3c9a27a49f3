"""Counter-based random streams shared by every backend.

Initial weights and portable dropout masks are drawn here, in NumPy, from the Philox counter-based
generator. A stream is addressed by the user's seed plus a *path* of small integers (what the
numbers are for, which layer, which step), so any backend can reproduce any stream on its own,
in any order, without sharing generator state::

    rng = stream(seed, Purpose.INIT, layer, 0)       # the weights of dense_{layer}
    rng = stream(seed, Purpose.DROPOUT, step, layer)  # a dropout mask

Two different paths give statistically independent streams (NumPy's ``SeedSequence`` hashing).
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
    """Return a fresh Philox generator for ``(seed, purpose, *path)``.

    ``seed`` and every element of ``path`` must be non-negative integers.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    key = (int(purpose), *(int(p) for p in path))
    if any(p < 0 for p in key):
        raise ValueError(f"stream path must be non-negative integers, got {path!r}")
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(int(seed), spawn_key=key)))
