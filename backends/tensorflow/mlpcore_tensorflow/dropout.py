"""Inverted dropout in TensorFlow. See :mod:`mlpcore.dropout` for the maths and mask sources.

With keep-mask ``m`` (bool, True = kept) and rate ``p``::

    training, p < 1:  y = where(m, x · 1/(1-p), 0)
    training, p = 1:  y = 0                          (no division, no NaN)
    eval:             y = x

Native masks come from TensorFlow's counter-based stateless RNG: the mask of hidden layer ``l``
at step ``s`` of a run with seed ``seed`` is
``stateless_uniform(shape, seed=(seed, s · n_hidden + l), alg="philox") >= float32(p)``, a pure
function of (seed, step, layer). It can be drawn inside a compiled graph (XLA too), and a run
is reproducible within this backend whatever the chunking; it differs from the portable masks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from mlpcore.dropout import check_rate, keep_scale

FloatArray = Any
"""A NumPy float32/float64 array at the boundary (``npt.NDArray[np.floating]``)."""

SEED_MASK = (1 << 63) - 1
"""Seeds are reduced to int64 range for ``tf.random.stateless_uniform``."""


def apply_keep_mask(x: tf.Tensor, keep: tf.Tensor, rate: float) -> tf.Tensor:
    """Training-mode inverted dropout of ``x`` (N, D) with the bool keep-mask ``keep`` (N, D)."""
    if rate >= 1.0:
        return tf.zeros_like(x)
    if rate == 0.0:
        return x
    scaled = x * tf.constant(keep_scale(rate), x.dtype)
    return tf.where(keep, scaled, tf.zeros_like(x))


def native_keep_mask(shape: Any, rate: float, seed: tf.Tensor) -> tf.Tensor:
    """A bool keep-mask of ``shape`` from the stateless Philox RNG keyed by ``seed`` (int64 [2]).

    Entry ``u`` of the float32 uniform draw keeps its unit when ``u >= float32(p)``.
    """
    uniform = tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32, alg="philox")
    return uniform >= tf.constant(rate, tf.float32)


def native_seed(seed: int, counter: tf.Tensor | int) -> tf.Tensor:
    """The stateless seed pair ``(seed, counter)`` as an int64 tensor of shape (2,)."""
    return tf.stack([tf.constant(seed & SEED_MASK, tf.int64),
                     tf.cast(counter, tf.int64)])


class TensorflowDropout:
    """:class:`mlpcore.dropout.DropoutOps` computed by TensorFlow, NumPy in and out."""

    def apply(self, x: FloatArray, rate: float, *, training: bool,
              keep_mask: Any = None, seed: int = 0) -> FloatArray:
        """Inverted dropout of ``x``; without ``keep_mask`` the mask is
        ``native_keep_mask(x.shape, rate, (seed, 0))``."""
        rate = check_rate(rate)
        array = np.asarray(x)
        if not training or rate == 0.0:
            return array.copy()
        tensor = tf.convert_to_tensor(array)
        if keep_mask is None:
            keep = native_keep_mask(tensor.shape, rate, native_seed(seed, 0))
        else:
            keep = tf.convert_to_tensor(np.asarray(keep_mask, dtype=bool))
        return apply_keep_mask(tensor, keep, rate).numpy()
