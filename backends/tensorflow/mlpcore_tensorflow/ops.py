"""The TensorFlow backend's function for each name of the contract, and its arrays and gradients:
what :class:`mlpcore.backend_common.AutodiffOps` and :class:`~mlpcore.backend_common.ManualOps`
ask for (maths in :mod:`mlpcore.activations`, :mod:`mlpcore.losses`, :mod:`mlpcore.regularisers`,
:mod:`mlpcore.dropout`; numerics in docs/backend-tensorflow.md). They build ops only: eager calls
and the in-graph training loop share them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from mlpcore.backend_common import Table
from mlpcore.dropout import keep_scale


def _cross_entropy(outputs: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """Integer labels: the fused sparse op; float targets: ``L_n = s_n log Σ_k exp(u_nk) -
    t_n·u_n``, ``u_n = z_n - max z_n`` (held constant), ``s_n = Σ_k t_nk`` (exact for rows that
    do not sum to one)."""
    if targets.dtype.is_integer:
        return tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=outputs))
    shifted = outputs - tf.stop_gradient(tf.reduce_max(outputs, axis=1, keepdims=True))
    log_sums = tf.math.log(tf.reduce_sum(tf.math.exp(shifted), axis=1))
    mass = tf.reduce_sum(targets, axis=1)
    return tf.reduce_mean(mass * log_sums - tf.reduce_sum(targets * shifted, axis=1))


def native_seed(seed: int, counter: tf.Tensor | int) -> tf.Tensor:
    """The stateless seed pair ``(seed mod 2^63, counter)`` as an int64 tensor of shape (2,)."""
    return tf.stack([tf.constant(seed & ((1 << 63) - 1), tf.int64), tf.cast(counter, tf.int64)])


def native_keep_mask(shape: Any, rate: float, seed: tf.Tensor, compiled: bool = False) -> tf.Tensor:
    """A bool keep-mask of ``shape`` from the stateless RNG keyed by ``seed`` (int64 (2,)):
    ``stateless_uniform(shape, seed) >= float32(p)`` in float32, a pure function of the seed.

    Philox, or Threefry when ``compiled`` (XLA's CPU Philox is slow, TensorFlow's CPU kernels
    have only Philox): native masks differ with and without XLA, portable ones do not.
    """
    uniform = tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32,
                                          alg="threefry" if compiled else "philox")
    return uniform >= tf.constant(rate, tf.float32)


def _cross_entropy_gradient(z: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
    """``dL/dz = (softmax(z)·Σ_k t_k - t) / N`` (the manual method's)."""
    probabilities = tf.nn.softmax(z, axis=1)
    if targets.dtype.is_integer:
        delta = probabilities - tf.one_hot(targets, tf.shape(z)[1], dtype=z.dtype)
    else:
        delta = probabilities * tf.reduce_sum(targets, axis=1, keepdims=True) - targets
    return delta / tf.cast(tf.shape(z)[0], z.dtype)


class TensorflowOps:
    """:class:`mlpcore.backend_common.AutodiffOps` and
    :class:`~mlpcore.backend_common.ManualOps` in TensorFlow."""

    activations: Table[Callable[[tf.Tensor], tf.Tensor]] = Table("activation", {
        "relu": tf.nn.relu, "sigmoid": tf.math.sigmoid, "tanh": tf.math.tanh})
    losses: Table[Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = Table("loss", {
        "softmax_cross_entropy": _cross_entropy,
        "mse": lambda o, t: tf.reduce_mean(tf.math.squared_difference(o, t))})
    penalties: Table[Callable[[tf.Tensor], tf.Tensor]] = Table("regulariser", {
        "l2": tf.nn.l2_loss, "l1": lambda w: tf.reduce_sum(tf.abs(w))})
    loss_gradients: Table[Callable[[tf.Tensor, tf.Tensor], tf.Tensor]] = Table("loss", {
        "softmax_cross_entropy": _cross_entropy_gradient,
        "mse": lambda o, t: 2 * (o - t) / tf.cast(tf.size(o), o.dtype)})
    derivatives: Table[Callable[[tf.Tensor], tf.Tensor]] = Table("activation", {
        "relu": lambda h: tf.cast(h > 0, h.dtype),
        "sigmoid": lambda a: a * (1 - a),
        "tanh": lambda t: 1 - t * t})
    penalty_gradients: Table[Callable[[tf.Tensor], tf.Tensor]] = Table("regulariser", {
        "l2": tf.identity, "l1": tf.sign})
    tensor = staticmethod(tf.convert_to_tensor)
    cast = staticmethod(tf.cast)

    @staticmethod
    def dense_gradients(a: tf.Tensor, delta: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.matmul(a, delta, transpose_a=True), tf.reduce_sum(delta, axis=0)

    @staticmethod
    def dense_backward(delta: tf.Tensor, w: tf.Tensor) -> tf.Tensor:
        return tf.matmul(delta, w, transpose_b=True)

    @staticmethod
    def dense(a: tf.Tensor, w: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
        """``a W + b``, ``W`` (d_in, d_out); ``bias_add``'s gradient is one ``BiasAddGrad``, a
        broadcast add's a reduction on shapes computed at run time."""
        return tf.nn.bias_add(tf.matmul(a, w), b)

    @staticmethod
    def numpy(value: tf.Tensor) -> npt.NDArray[Any]:
        return np.array(value.numpy())

    @staticmethod
    def gradients(fn: Callable[..., tf.Tensor], args: Sequence[tf.Tensor],
                  n: int) -> tuple[tf.Tensor, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            tape.watch(args[:n])
            value = fn(*args)
        return value, tape.gradient(value, list(args[:n]),
                                    unconnected_gradients=tf.UnconnectedGradients.ZERO)

    @staticmethod
    def keep_mask(seed: int, shape: tuple[int, ...], rate: float) -> tf.Tensor:
        return native_keep_mask(shape, rate, native_seed(seed, 0))

    @staticmethod
    def dropout(x: tf.Tensor, keep: tf.Tensor, rate: float) -> tf.Tensor:
        if rate >= 1.0:
            return tf.zeros_like(x)
        return tf.where(keep, x * tf.constant(keep_scale(rate), x.dtype), tf.zeros_like(x))


OPS = TensorflowOps()


def scaled_mask(keep: tf.Tensor, rate: float, dtype: tf.DType) -> tf.Tensor:
    """``where(keep, keep_scale(rate), 0)`` in ``dtype``: what the kept units of a hidden layer
    are multiplied by in the network, the scale rounded once to ``dtype``."""
    return tf.where(keep, tf.constant(keep_scale(rate), dtype), tf.constant(0, dtype))


def on_device(array: npt.NDArray[Any], device: str) -> tf.Tensor:
    """``array`` as a tensor on ``device`` sharing nothing written later (``convert_to_tensor``
    makes host tensors whatever the device scope: elsewhere it is copied by ``identity``)."""
    with tf.device(device):
        tensor = tf.convert_to_tensor(array)
        return tensor if device.startswith("/CPU") else tf.identity(tensor)
