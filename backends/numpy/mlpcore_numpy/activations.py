"""Activations in NumPy, in place on preallocated buffers. Maths in :mod:`mlpcore.activations`.

``TABLE[name]`` is ``(f, f')``: ``f(z, out)`` writes ``f(z)`` into ``out`` (which may be ``z``);
``f'(a, out)`` writes the derivative from the activation's *output* ``a = f(z)``, which is what
the backward pass keeps: relu' = [a > 0], sigmoid' = a (1 - a), tanh' = 1 - a². Call ``f`` inside
``np.errstate(over="ignore")``: sigmoid computes ``1 / (1 + exp(-z))``, where ``exp(-z)``
overflows to ``inf`` for very negative ``z`` and the result is then exactly 0, the correctly
rounded value; the overflow is expected, not an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.activations import ActivationName
from mlpcore.backend_common import Table, floating

FloatArray = npt.NDArray[np.floating]
InPlace = Callable[[FloatArray, FloatArray], Any]


def _sigmoid(z: FloatArray, out: FloatArray) -> None:
    np.negative(z, out=out)
    np.exp(out, out=out)
    out += 1
    np.reciprocal(out, out=out)


def _sigmoid_prime(a: FloatArray, out: FloatArray) -> None:
    np.subtract(1, a, out=out)
    np.multiply(out, a, out=out)


def _tanh_prime(a: FloatArray, out: FloatArray) -> None:
    np.multiply(a, a, out=out)
    np.subtract(1, out, out=out)


TABLE: Table[tuple[InPlace, InPlace]] = Table("activation", {
    "relu": (lambda z, out: np.maximum(z, 0, out=out), lambda a, out: np.greater(a, 0, out=out)),
    "sigmoid": (_sigmoid, _sigmoid_prime),
    "tanh": (lambda z, out: np.tanh(z, out=out), _tanh_prime),
})


class NumpyActivations:
    """:class:`mlpcore.activations.ActivationOps` in NumPy."""

    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        f, _ = TABLE[name]
        x = floating(x)
        out = np.empty_like(x)
        with np.errstate(over="ignore"):
            f(x, out)
        return out

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        _, f_prime = TABLE[name]
        a = self.value(name, x)
        out = np.empty_like(a)
        f_prime(a, out)
        return out
