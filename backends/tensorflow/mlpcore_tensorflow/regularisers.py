"""L1 and L2 penalties in TensorFlow. See :mod:`mlpcore.regularisers` for the maths.

Over the weight matrices ``W_i`` only::

    L2(λ) = λ · Σ_i tf.nn.l2_loss(W_i) = λ · Σ_i Σ W_i² / 2       gradient λ · W_i
    L1(λ) = λ · Σ_i Σ |W_i|                                       gradient λ · sign(W_i)

``tf.GradientTape`` differentiates ``|w|`` as ``sign(w)``, so the L1 gradient at 0 is 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from mlpcore.regularisers import Regulariser

FloatArray = Any
"""A NumPy float32/float64 array at the boundary (``npt.NDArray[np.floating]``)."""


def penalty_tensor(regularisers: Iterable[Regulariser],
                   weights: Sequence[tf.Tensor]) -> tf.Tensor | None:
    """The summed penalty of every regulariser over every weight matrix, a scalar tensor in the
    weights' dtype; ``None`` when there is no regulariser."""
    total: tf.Tensor | None = None
    for regulariser in regularisers:
        dtype = weights[0].dtype
        if regulariser.kind == "l2":
            term = tf.add_n([tf.nn.l2_loss(w) for w in weights])
        else:
            term = tf.add_n([tf.reduce_sum(tf.abs(w)) for w in weights])
        term = tf.constant(regulariser.strength, dtype) * term
        total = term if total is None else total + term
    return total


class TensorflowRegularisers:
    """:class:`mlpcore.regularisers.RegulariserOps` computed by TensorFlow, NumPy in and out."""

    def value(self, regulariser: Regulariser, weights: Sequence[FloatArray]) -> float:
        """The penalty as a Python float."""
        tensors = [tf.convert_to_tensor(np.asarray(w)) for w in weights]
        total = penalty_tensor((regulariser,), tensors)
        return 0.0 if total is None else float(total.numpy())

    def gradient(self, regulariser: Regulariser,
                 weights: Sequence[FloatArray]) -> list[FloatArray]:
        """``d penalty / d W_i`` for each weight matrix by ``tf.GradientTape``."""
        tensors = [tf.convert_to_tensor(np.asarray(w)) for w in weights]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            total = penalty_tensor((regulariser,), tensors)
        grads = tape.gradient(total, tensors,
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return [g.numpy() for g in grads]
