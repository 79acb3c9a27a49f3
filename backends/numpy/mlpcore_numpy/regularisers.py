"""L1 and L2 penalties in NumPy. See :mod:`mlpcore.regularisers` for the maths."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt

from mlpcore.regularisers import Regulariser

FloatArray = npt.NDArray[np.floating]


def penalty(regularisers: Iterable[Regulariser], weights: Sequence[FloatArray]) -> float:
    """The summed penalty of every regulariser over every weight matrix."""
    total = 0.0
    for regulariser in regularisers:
        if regulariser.kind == "l2":
            total += regulariser.strength * sum(float(np.vdot(w, w)) for w in weights) / 2
        else:
            total += regulariser.strength * sum(float(np.abs(w).sum()) for w in weights)
    return total


def add_gradient(regularisers: Iterable[Regulariser], w: FloatArray, grad: FloatArray) -> None:
    """Add ``d penalty / d w`` to ``grad`` in place."""
    for regulariser in regularisers:
        if regulariser.kind == "l2":
            grad += regulariser.strength * w
        else:
            grad += regulariser.strength * np.sign(w)


class NumpyRegularisers:
    """:class:`mlpcore.regularisers.RegulariserOps` in NumPy."""

    def value(self, regulariser: Regulariser, weights: Sequence[FloatArray]) -> float:
        return penalty((regulariser,), weights)

    def gradient(self, regulariser: Regulariser,
                 weights: Sequence[FloatArray]) -> list[FloatArray]:
        grads = [np.zeros_like(w) for w in weights]
        for w, g in zip(weights, grads, strict=True):
            add_gradient((regulariser,), w, g)
        return grads
