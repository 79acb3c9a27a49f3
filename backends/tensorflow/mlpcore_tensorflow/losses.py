"""Losses in TensorFlow, averaged over the batch. See :mod:`mlpcore.losses` for the maths.

``softmax_cross_entropy`` on logits ``z`` (N, K):

* integer labels ``y`` (N,): ``tf.nn.sparse_softmax_cross_entropy_with_logits``, the fused
  kernel, which computes ``lse(z_n) - z_{n, y_n}`` after subtracting the row maximum, and whose
  gradient is ``softmax(z_n) - onehot(y_n)``;
* float targets ``t`` (N, K): with ``m_n = max_k z_nk`` (held constant for the gradient),
  ``u_n = z_n - m_n`` and ``s_n = Σ_k t_nk``::

      L_n = s_n · log Σ_k exp(u_nk) - t_n · u_n          (= s_n · lse(z_n) - t_n · z_n)
      dL_n/dz_n = s_n · softmax(z_n) - t_n

  the general formula of :mod:`mlpcore.losses`, exact for rows that do not sum to one. (The
  fused ``tf.nn.softmax_cross_entropy_with_logits`` is not used: its gradient is
  ``softmax - t`` whatever ``s_n`` is.)

Both subtract the row maximum before ``exp``, so logits of 1e30 give finite values.
``L = (1/N) Σ_n L_n``. ``mse``: ``L = mean((o - t)²)`` over all N·K elements.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

from mlpcore.losses import LossName, check_loss

FloatArray = Any
"""A NumPy float32/float64 array at the boundary (``npt.NDArray[np.floating]``)."""


def loss_tensor(name: LossName, outputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """The batch-mean loss, a scalar tensor in the dtype of ``outputs`` (N, K).

    ``targets`` are integer labels (N,) (int32 or int64) or floats (N, K) in the outputs' dtype.
    """
    if name == "mse":
        return tf.reduce_mean(tf.math.squared_difference(outputs, targets))
    if targets.dtype.is_integer:
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=outputs))
    shifted = outputs - tf.stop_gradient(tf.reduce_max(outputs, axis=1, keepdims=True))
    log_sums = tf.math.log(tf.reduce_sum(tf.math.exp(shifted), axis=1))
    mass = tf.reduce_sum(targets, axis=1)
    return tf.reduce_mean(mass * log_sums - tf.reduce_sum(targets * shifted, axis=1))


def as_target_tensor(targets: Any, dtype: tf.DType) -> tf.Tensor:
    """Integer labels as int64 tensors, float targets as tensors of ``dtype``."""
    array = np.asarray(targets)
    if array.dtype.kind in "iu":
        return tf.convert_to_tensor(array.astype(np.int64, copy=False))
    return tf.convert_to_tensor(array, dtype=dtype)


class TensorflowLosses:
    """:class:`mlpcore.losses.LossOps` computed by TensorFlow, NumPy in and out."""

    def value(self, name: LossName, outputs: FloatArray, targets: Any) -> float:
        """The batch-mean loss as a Python float."""
        check_loss(name)
        z = tf.convert_to_tensor(np.asarray(outputs))
        return float(loss_tensor(name, z, as_target_tensor(targets, z.dtype)).numpy())

    def gradient(self, name: LossName, outputs: FloatArray, targets: Any) -> FloatArray:
        """``dL/d outputs`` by ``tf.GradientTape``; shape and dtype of ``outputs``."""
        check_loss(name)
        z = tf.convert_to_tensor(np.asarray(outputs))
        t = as_target_tensor(targets, z.dtype)
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = loss_tensor(name, z, t)
        return tape.gradient(value, z).numpy()
