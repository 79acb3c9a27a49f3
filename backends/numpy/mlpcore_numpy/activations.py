"""Activations in NumPy, written to run in place on preallocated buffers.

See :mod:`mlpcore.activations` for the maths. The derivative is computed from the activation's
*output* ``a = f(z)``, which is what the backward pass keeps: relu' = [a > 0],
sigmoid' = a (1 - a), tanh' = 1 - a².
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mlpcore.activations import ActivationName, check_activation

FloatArray = npt.NDArray[np.floating]


def activate(name: ActivationName, z: FloatArray, out: FloatArray) -> None:
    """Write ``f(z)`` into ``out`` (which may be ``z``).

    Call it inside ``np.errstate(over="ignore")``: sigmoid computes ``1 / (1 + exp(-z))``, where
    ``exp(-z)`` overflows to ``inf`` for very negative ``z`` and the result is then exactly 0,
    the correctly rounded value; the overflow is expected, not an error.
    """
    if name == "relu":
        np.maximum(z, 0, out=out)
    elif name == "tanh":
        np.tanh(z, out=out)
    else:
        np.negative(z, out=out)
        np.exp(out, out=out)
        out += 1
        np.reciprocal(out, out=out)


def derivative_from_output(name: ActivationName, a: FloatArray, out: FloatArray) -> None:
    """Write ``f'(z)`` into ``out`` given ``a = f(z)``."""
    if name == "relu":
        np.greater(a, 0, out=out)
    elif name == "tanh":
        np.multiply(a, a, out=out)
        np.subtract(1, out, out=out)
    else:
        np.subtract(1, a, out=out)
        np.multiply(out, a, out=out)


class NumpyActivations:
    """:class:`mlpcore.activations.ActivationOps` in NumPy."""

    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        check_activation(name)
        x = np.asarray(x)
        if x.dtype.kind != "f":
            raise TypeError(f"activations take floating-point arrays, got dtype {x.dtype}")
        out = np.empty_like(x)
        with np.errstate(over="ignore"):
            activate(name, x, out)
        return out

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        a = self.value(name, x)
        out = np.empty_like(a)
        derivative_from_output(name, a, out)
        return out
