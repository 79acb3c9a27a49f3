"""Losses in JAX, averaged over the batch, differentiated by ``jax.grad``. Maths in
:mod:`mlpcore.losses`.

``softmax_cross_entropy`` of logits ``z`` (N, K) works through ``jax.nn.log_softmax``, which
subtracts the row max before ``exp`` (logits of 1e30 stay finite)::

    L = -(1/N) Σ_n Σ_k t_nk log_softmax(z_n)_k            float targets t (N, K)
    L = -(1/N) Σ_n log_softmax(z_n)_{y_n}                  integer labels y (N,), t = one_hot(y)

which is the contract's general formula ``(1/N) Σ_n (s_n lse(z_n) - t_n·z_n)``, ``s_n = Σ_k t_nk``,
whether or not the rows of ``t`` sum to 1; ``jax.grad`` gives ``(s_n softmax(z_n) - t_n) / N``.

``mse`` is the mean over every element: ``L = Σ (o - t)² / (N K)``, ``dL/do = 2 (o - t) / (N K)``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy.typing as npt
from mlpcore.losses import LossName, check_loss

from mlpcore_jax.boundary import FloatArray, floating, in_x64_scope, targets_for, to_numpy


def loss_value(name: str, outputs: jax.Array, targets: jax.Array) -> jax.Array:
    """The batch-mean loss, a 0-d array in the dtype of ``outputs`` (N, K).

    ``targets`` are integer labels (N,) (cross-entropy only) or floats (N, K) in that dtype.
    """
    if name == "mse":
        return jnp.mean(jnp.square(outputs - targets))
    log_p = jax.nn.log_softmax(outputs, axis=-1)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        picked = jnp.take_along_axis(log_p, targets[:, None], axis=-1)
        return -jnp.mean(picked)
    return -jnp.mean(jnp.sum(targets * log_p, axis=-1))


@partial(jax.jit, static_argnames="name")
def _value(name: str, outputs: jax.Array, targets: jax.Array) -> jax.Array:
    return loss_value(name, outputs, targets)


@partial(jax.jit, static_argnames="name")
def _gradient(name: str, outputs: jax.Array, targets: jax.Array) -> jax.Array:
    gradient: jax.Array = jax.grad(loss_value, argnums=1)(name, outputs, targets)
    return gradient


class JaxLosses:
    """:class:`mlpcore.losses.LossOps` evaluated by JAX, NumPy in and out."""

    @in_x64_scope
    def value(self, name: LossName, outputs: FloatArray, targets: npt.NDArray[Any]) -> float:
        check_loss(name)
        z = floating(outputs)
        return float(_value(name, z, targets_for(targets, z.dtype)))

    @in_x64_scope
    def gradient(self, name: LossName, outputs: FloatArray,
                 targets: npt.NDArray[Any]) -> FloatArray:
        check_loss(name)
        z = floating(outputs)
        return to_numpy(_gradient(name, z, targets_for(targets, z.dtype)))
