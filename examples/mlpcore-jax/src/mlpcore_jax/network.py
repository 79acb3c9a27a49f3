"""The JAX MLP: forward pass and objective as pure functions of the variables.

Layer ``i`` holds ``W_i`` (d_i, d_{i+1}) in canonical layout and ``b_i`` (d_{i+1},). For a batch
``a_0 = x`` of shape (N, d_0)::

    z_i     = a_i @ W_i + b_i                                       (N, d_{i+1})
    a_{i+1} = f(z_i) · s_i       hidden layers; s_i the scaled dropout mask, or none in eval mode
    logits  = z_{L-1}            (N, K), the output layer is linear

    objective(θ) = loss(logits, targets) + Σ penalties(W_0 … W_{L-1}),   θ = (weights, biases)

Gradients are ``jax.value_and_grad(objective)``; nothing is differentiated by hand. The same
functions run inside :func:`value_and_gradients` and inside the jitted training chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
from mlpcore.regularisers import Regulariser

from mlpcore_jax.activations import activate
from mlpcore_jax.losses import loss_value
from mlpcore_jax.regularisers import penalty

Params = tuple[tuple[jax.Array, ...], tuple[jax.Array, ...]]
"""``(weights, biases)``: the pytree ``jax.grad`` differentiates."""


def forward(activation: str, params: Params, x: jax.Array,
            masks: Sequence[jax.Array] = ()) -> jax.Array:
    """Logits (N, K) of ``x`` (N, d_0). ``masks``: one scaled mask (N, d_{i+1}) per hidden layer
    in training mode, or empty for eval mode (no dropout)."""
    weights, biases = params
    last = len(weights) - 1
    a = x
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = a @ w + b
        if i == last:
            return z
        a = activate(activation, z)
        if masks:
            a = a * masks[i]
    raise AssertionError("an MLP has at least one layer")


def objective(params: Params, x: jax.Array, targets: jax.Array, masks: Sequence[jax.Array],
              activation: str, loss: str, regularisers: Sequence[Regulariser]) -> jax.Array:
    """Batch-mean loss plus the regularisers' penalty over the weight matrices, a 0-d array."""
    value = loss_value(loss, forward(activation, params, x, masks), targets)
    if regularisers:
        value = value + penalty(regularisers, params[0]).astype(value.dtype)
    return value


@partial(jax.jit, static_argnames="activation")
def predict(params: Params, x: jax.Array, activation: str) -> jax.Array:
    """Eval-mode logits of ``x``, compiled once per activation and shape."""
    return forward(activation, params, x)


@partial(jax.jit, static_argnames=("activation", "loss", "regularisers"))
def value_and_gradients(params: Params, x: jax.Array, targets: jax.Array,
                        masks: tuple[jax.Array, ...], activation: str, loss: str,
                        regularisers: tuple[Regulariser, ...]) -> tuple[jax.Array, Params]:
    """The objective on one batch and its gradient for every variable (same pytree)."""
    result: tuple[jax.Array, Params] = jax.value_and_grad(objective)(
        params, x, targets, masks, activation, loss, regularisers)
    return result
