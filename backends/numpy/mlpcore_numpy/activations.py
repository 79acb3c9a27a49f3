"""Activations in NumPy, in place on preallocated buffers. Maths in :mod:`mlpcore.activations`.

``TABLE[name]`` is ``(f, f')``: ``f(z, out)`` writes ``f(z)`` into ``out`` (which may be ``z``);
``f'(a, out)`` writes the derivative from the *output* ``a = f(z)``, which is what the backward
pass keeps. Call ``f`` inside ``np.errstate(over="ignore")``: sigmoid computes
``1 / (1 + exp(-z))``, where ``exp(-z)`` overflows to ``inf`` for very negative ``z`` and the
result is then exactly 0, the correctly rounded value; the overflow is expected, not an error.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mlpcore.activations import ActivationName
from mlpcore.backend_common import FloatArray, Table, floating

InPlace = Callable[[FloatArray, FloatArray], FloatArray]

TABLE: Table[tuple[InPlace, InPlace]] = Table("activation", {
    # max(z, 0); relu' = [a > 0], so relu'(0) = 0
    "relu": (lambda z, out: np.maximum(z, 0, out=out), lambda a, out: np.greater(a, 0, out=out)),
    # 1 / (1 + exp(-z)); sigmoid' = (1 - a) a
    "sigmoid": (lambda z, out: np.reciprocal(np.add(np.exp(np.negative(z, out=out), out=out), 1,
                                                    out=out), out=out),
                lambda a, out: np.multiply(np.subtract(1, a, out=out), a, out=out)),
    # tanh(z); tanh' = 1 - a²
    "tanh": (lambda z, out: np.tanh(z, out=out),
             lambda a, out: np.subtract(1, np.multiply(a, a, out=out), out=out)),
})


class NumpyActivations:
    """:class:`mlpcore.activations.ActivationOps` in NumPy."""

    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        f, _ = TABLE[name]
        x = floating(x)
        with np.errstate(over="ignore"):
            return f(x, np.empty_like(x))

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        _, f_prime = TABLE[name]
        a = self.value(name, x)
        return f_prime(a, np.empty_like(a))
