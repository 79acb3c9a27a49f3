"""L1 and L2 penalties in JAX, differentiated by ``jax.grad``. Maths in
:mod:`mlpcore.regularisers`.

Over the weight matrices ``W_i`` only, never the biases::

    L2(λ) = λ · Σ_i Σ W_i² / 2        jax.grad: dL2/dW_i = λ · W_i
    L1(λ) = λ · Σ_i Σ |W_i|           jax.grad: dL1/dW_i = λ · sign(W_i),  sign(0) = 0

JAX's own derivative of ``jnp.abs`` at 0 is 1 (its rule picks the right-hand slope), not the
contract's ``sign(0) = 0``, so the L1 term uses :func:`abs_with_sign_gradient`, ``jnp.abs`` with a
custom JVP ``d|w| = sign(w)·dw``. λ enters as a weakly typed Python float, so the penalty has the
weights' dtype.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial

import jax
import jax.numpy as jnp
from mlpcore.regularisers import Regulariser

from mlpcore_jax.boundary import FloatArray, floating, in_x64_scope, to_numpy


@jax.custom_jvp
def abs_with_sign_gradient(w: jax.Array) -> jax.Array:
    """``|w|`` element-wise, whose derivative is ``sign(w)``: 0 at 0 (the subgradient mlpcore's
    contract picks)."""
    return jnp.abs(w)


@abs_with_sign_gradient.defjvp
def _abs_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]) -> tuple[jax.Array, jax.Array]:
    (w,), (dw,) = primals, tangents
    return jnp.abs(w), jnp.sign(w) * dw


def penalty(regularisers: Iterable[Regulariser], weights: Sequence[jax.Array]) -> jax.Array:
    """The summed penalty of every regulariser over every weight matrix, a 0-d array.

    With no regulariser it is a zero of the weights' dtype (float32 without weights).
    """
    dtype = weights[0].dtype if weights else jnp.float32
    total = jnp.zeros((), dtype)
    for regulariser in regularisers:
        for w in weights:
            if regulariser.kind == "l2":
                total = total + jnp.sum(jnp.square(w)) * (regulariser.strength / 2)
            else:
                total = total + jnp.sum(abs_with_sign_gradient(w)) * regulariser.strength
    return total


@partial(jax.jit, static_argnames="regulariser")
def _value(regulariser: Regulariser, weights: tuple[jax.Array, ...]) -> jax.Array:
    return penalty((regulariser,), weights)


@partial(jax.jit, static_argnames="regulariser")
def _gradient(regulariser: Regulariser,
              weights: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
    grads: tuple[jax.Array, ...] = jax.grad(lambda ws: penalty((regulariser,), ws))(weights)
    return grads


class JaxRegularisers:
    """:class:`mlpcore.regularisers.RegulariserOps` evaluated by JAX, NumPy in and out."""

    @in_x64_scope
    def value(self, regulariser: Regulariser, weights: Sequence[FloatArray]) -> float:
        return float(_value(regulariser, tuple(floating(w) for w in weights)))

    @in_x64_scope
    def gradient(self, regulariser: Regulariser,
                 weights: Sequence[FloatArray]) -> list[FloatArray]:
        grads = _gradient(regulariser, tuple(floating(w) for w in weights))
        return [to_numpy(g) for g in grads]
