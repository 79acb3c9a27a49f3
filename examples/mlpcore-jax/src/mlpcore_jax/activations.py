"""Activations in JAX, and their derivatives by forward-mode autodiff. Maths in
:mod:`mlpcore.activations`.

=========  ==================  ===========================================================
name       f(x)                f'(x) = ``jax.jvp(f, (x,), (1,))``, from JAX's own rules
=========  ==================  ===========================================================
relu       ``jax.nn.relu``     ``[x > 0]``: relu's custom JVP makes relu'(0) = 0
sigmoid    ``jax.nn.sigmoid``  ``a (1 - a)`` with ``a = f(x)`` (the rule of ``lax.logistic``)
tanh       ``jnp.tanh``        ``1 - a²``
=========  ==================  ===========================================================

Each ``f`` is element-wise, so the Jacobian is diagonal and one JVP with a tangent of ones gives
every ``f'(x_i)`` at once (shape and dtype of ``x``). ``lax.logistic`` is finite at
``|x| = 1000`` in float32 and float64: sigmoid(-1000) = 0 and sigmoid(1000) = 1 exactly, and
XLA raises no floating-point warnings. The training step differentiates the same functions with
``jax.grad``, so training uses exactly these derivatives.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from mlpcore.activations import ActivationName, check_activation

from mlpcore_jax.boundary import FloatArray, floating, in_x64_scope, to_numpy


def activate(name: str, z: jax.Array) -> jax.Array:
    """``f(z)`` element-wise; any shape, the dtype of ``z``."""
    if name == "relu":
        return jax.nn.relu(z)
    if name == "tanh":
        return jnp.tanh(z)
    return jax.nn.sigmoid(z)


@partial(jax.jit, static_argnames="name")
def _value(name: str, x: jax.Array) -> jax.Array:
    return activate(name, x)


@partial(jax.jit, static_argnames="name")
def _derivative(name: str, x: jax.Array) -> jax.Array:
    tangent: jax.Array
    _, tangent = jax.jvp(lambda z: activate(name, z), (x,), (jnp.ones_like(x),))
    return tangent


class JaxActivations:
    """:class:`mlpcore.activations.ActivationOps` evaluated by JAX, NumPy in and out."""

    @in_x64_scope
    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        check_activation(name)
        return to_numpy(_value(name, floating(x)))

    @in_x64_scope
    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        check_activation(name)
        return to_numpy(_derivative(name, floating(x)))
