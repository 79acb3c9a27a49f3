"""Inverted dropout in TensorFlow. See :mod:`mlpcore.dropout` for the maths and mask sources.

With keep-mask ``m`` (bool, True = kept) and rate ``p``::

    training, p < 1:  y = where(m, x · 1/(1-p), 0)
    training, p = 1:  y = 0                          (no division, no NaN)
    eval:             y = x

That is :func:`apply_keep_mask`, which ``DropoutOps.apply`` uses: a dropped entry is exactly 0 even
where ``x`` is infinite or NaN. Inside the network (training and ``loss_and_gradients``) the mask
is applied as one multiplication by the *scaled mask* ``s = where(m, 1/(1-p), 0)``
(:func:`scaled_mask`), as in the torch backend: ``x · s`` has the same values for the finite
activations that validated, finite inputs produce, and its gradient is one ``Mul`` where the
``where`` costs two ``Select`` ops and a ``zeros_like``. ``1/(1-p)`` is ``keep_scale(p)`` rounded
once to the model dtype, so kept values are bit-identical to the NumPy backend's.

Native masks come from TensorFlow's counter-based stateless RNG: the mask of hidden layer ``l``
at step ``s`` of a run with seed ``seed`` is
``stateless_uniform(shape, seed=(seed, s · n_hidden + l), alg=alg) >= float32(p)``, a pure
function of (seed, step, layer), so a run is reproducible within this backend whatever the
chunking; it differs from the portable masks. ``alg`` is ``"philox"`` in graph and eager mode
and ``"threefry"`` in XLA mode (:data:`NATIVE_ALGORITHMS`): TensorFlow's CPU kernels implement
only Philox, and XLA's CPU Philox is slow: drawing and applying the (128, 256) mask of the
dropout benchmark takes about 0.23 ms a step with Philox and 0.065 ms with Threefry. So native
masks in XLA mode differ from those of the same run without XLA; portable masks are the same in
both.
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


def scaled_mask(keep: tf.Tensor, rate: float, dtype: tf.DType) -> tf.Tensor:
    """``where(keep, keep_scale(rate), 0)`` in ``dtype``, the shape of the bool mask ``keep``."""
    return tf.where(keep, tf.constant(keep_scale(rate), dtype), tf.constant(0, dtype))


NATIVE_ALGORITHMS = {False: "philox", True: "threefry"}
"""The stateless RNG algorithm of native masks, keyed by ``compiled`` (XLA mode)."""


def native_keep_mask(shape: Any, rate: float, seed: tf.Tensor,
                     compiled: bool = False) -> tf.Tensor:
    """A bool keep-mask of ``shape`` from the stateless RNG keyed by ``seed`` (int64 [2]): Philox,
    or Threefry when ``compiled`` (the op is inside an XLA-compiled function).

    Entry ``u`` of the float32 uniform draw keeps its unit when ``u >= float32(p)``.
    """
    uniform = tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32,
                                          alg=NATIVE_ALGORITHMS[compiled])
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
