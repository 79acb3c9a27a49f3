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


def activate(name: ActivationName, z: FloatArray, out: FloatArray, scratch: FloatArray) -> None:
    """Write ``f(z)`` into ``out``; ``scratch`` is a buffer of the same shape. ``out`` may be ``z``
    only for relu and tanh."""
    if name == "relu":
        np.maximum(z, 0, out=out)
    elif name == "tanh":
        np.tanh(z, out=out)
    else:
        # sigmoid(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) for z < 0, with e = exp(-|z|) <= 1
        np.abs(z, out=scratch)
        np.negative(scratch, out=scratch)
        np.exp(scratch, out=scratch)
        np.add(scratch, 1, out=out)
        np.reciprocal(out, out=out)
        np.multiply(out, scratch, out=out, where=z < 0)


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
        out = np.empty_like(x)
        activate(name, x, out, np.empty_like(x))
        return out

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        a = self.value(name, x)
        out = np.empty_like(a)
        derivative_from_output(name, a, out)
        return out
