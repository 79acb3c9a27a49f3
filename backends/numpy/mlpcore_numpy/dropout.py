"""Inverted dropout in NumPy. See :mod:`mlpcore.dropout` for the maths and the mask sources."""

from __future__ import annotations

import numpy as np

from mlpcore.backend_common import BoolArray, FloatArray
from mlpcore.dropout import check_rate, keep_scale


def native_keep_mask(rng: np.random.Generator, shape: tuple[int, ...], rate: float) -> BoolArray:
    """A keep-mask from NumPy's own generator ``rng`` (the backend's native RNG)."""
    return rng.random(shape, dtype=np.float32) >= np.float32(rate)


class NumpyDropout:
    """:class:`mlpcore.dropout.DropoutOps` in NumPy."""

    def apply(self, x: FloatArray, rate: float, *, training: bool,
              keep_mask: BoolArray | None = None, seed: int = 0) -> FloatArray:
        rate = check_rate(rate)
        x = np.asarray(x)
        if not training or rate == 0.0:
            return x.copy()
        if keep_mask is None:
            keep_mask = native_keep_mask(np.random.default_rng(seed), x.shape, rate)
        out = np.zeros_like(x)
        if rate < 1.0:
            np.multiply(x, x.dtype.type(keep_scale(rate)), out=out, where=keep_mask)
        return out
