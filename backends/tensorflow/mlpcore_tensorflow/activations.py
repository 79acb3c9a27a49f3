"""Activations in TensorFlow. See :mod:`mlpcore.activations` for the maths.

=========  ====================  ==================================================
name       f(z)                  f'(z), as ``tf.GradientTape`` differentiates it
=========  ====================  ==================================================
relu       ``tf.nn.relu``        ``ReluGrad``: 1 where z > 0, else 0 (relu'(0) = 0)
sigmoid    ``tf.math.sigmoid``   ``SigmoidGrad``: f(z) (1 - f(z))
tanh       ``tf.math.tanh``      ``TanhGrad``: 1 - f(z)²
=========  ====================  ==================================================

``tf.math.sigmoid`` never overflows: it is exactly 0 at z = -1000 and exactly 1 at z = 1000 in
float32 and float64, so f' = 0 there. The derivative offered to the core is the autodiff one, the
same code path that training differentiates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from mlpcore.activations import ActivationName, check_activation

FloatArray = Any
"""A NumPy float32/float64 array at the boundary (``npt.NDArray[np.floating]``)."""


def activate(name: ActivationName, z: tf.Tensor) -> tf.Tensor:
    """``f(z)`` element-wise on a float tensor of any shape; same shape and dtype."""
    if name == "relu":
        return tf.nn.relu(z)
    if name == "tanh":
        return tf.math.tanh(z)
    return tf.math.sigmoid(z)


def _float_input(x: Any) -> np.ndarray[Any, Any]:
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise TypeError(f"activations take floating-point arrays, got dtype {array.dtype}")
    return array


class TensorflowActivations:
    """:class:`mlpcore.activations.ActivationOps` computed by TensorFlow, NumPy in and out."""

    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        """``f(x)``; ``x`` of any shape, float32 or float64."""
        check_activation(name)
        z = tf.convert_to_tensor(_float_input(x))
        return activate(name, z).numpy()

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        """``f'(x)`` at the pre-activation ``x``, by ``tf.GradientTape`` (element-wise)."""
        check_activation(name)
        z = tf.convert_to_tensor(_float_input(x))
        with tf.GradientTape() as tape:
            tape.watch(z)
            a = activate(name, z)
        return tape.gradient(a, z).numpy()
