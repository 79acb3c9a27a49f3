"""L1 and L2 penalties in NumPy. Maths in :mod:`mlpcore.regularisers`.

``TABLE[kind]`` is ``(term, gradient)`` of one weight matrix before λ: ``l2``: ``Σ W² / 2`` and
``W``; ``l1``: ``Σ |W|`` and ``sign(W)``. ``Terms``: ``(λ, TABLE[kind])`` per regulariser.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mlpcore.backend_common import FloatArray, Table, penalties
from mlpcore.regularisers import Regulariser

Pair = tuple[Callable[[FloatArray], float], Callable[[FloatArray], Any]]
Terms = tuple[tuple[float, Pair], ...]

TABLE: Table[Pair] = Table("regulariser", {
    "l2": (lambda w: float(np.vdot(w, w)) / 2, lambda w: w),
    "l1": (lambda w: float(np.abs(w).sum()), np.sign),
})


def penalty(terms: Terms, weights: Sequence[FloatArray]) -> float:
    """The summed penalty of every term over every weight matrix."""
    return sum((strength * term(w) for strength, (term, _) in terms for w in weights), 0.0)


def add_gradient(terms: Terms, w: FloatArray, grad: FloatArray) -> FloatArray:
    """Add ``d penalty / d w`` to ``grad`` in place and return it."""
    for strength, (_, gradient) in terms:
        grad += strength * gradient(w)
    return grad


class NumpyRegularisers:
    """:class:`mlpcore.regularisers.RegulariserOps` in NumPy."""

    def value(self, regulariser: Regulariser, weights: Sequence[FloatArray]) -> float:
        return penalty(penalties(TABLE, (regulariser,)), weights)

    def gradient(self, regulariser: Regulariser,
                 weights: Sequence[FloatArray]) -> list[FloatArray]:
        terms = penalties(TABLE, (regulariser,))
        return [add_gradient(terms, w, np.zeros_like(w)) for w in weights]
