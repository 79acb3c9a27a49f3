"""Inverted dropout in JAX. Maths and the two mask sources in :mod:`mlpcore.dropout`.

With rate ``p`` and keep-mask ``m`` (True = kept)::

    training, p < 1:  y = x · m / (1 - p)        training, p = 1:  y = 0        eval:  y = x

Inside the network a mask is applied as one multiplication by a *scaled mask*
``s = m · keep_scale(p)`` in the model dtype (entries ``1/(1-p)`` or 0), so ``jax.grad`` gives the
contract's ``dy/dx = m / (1 - p)`` and ``p = 1`` gives ``s = 0`` without a division.
``keep_scale(p)`` is cast to the model dtype before it multiplies, as in the NumPy backend, so the
scaled values are bit-identical to NumPy's.

Masks are :func:`mlpcore.dropout.portable_keep_mask` (portable mode: the same masks as every
backend) or drawn by ``jax.random`` (native mode): keep where ``u >= float32(p)`` for ``u``
uniform in [0, 1) in float32, the portable rule with JAX's counter-based threefry generator.
A native mask is addressed by its key alone, :func:`native_key`, so it can be drawn inside a
jitted training chunk without carrying generator state.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from mlpcore.dropout import check_rate, keep_scale

from mlpcore_jax.boundary import FloatArray, floating, in_x64_scope, to_jax, to_numpy


def scaled_mask(keep: jax.Array, rate: float, dtype: np.dtype[np.floating]) -> jax.Array:
    """``keep · keep_scale(rate)`` in ``dtype``: what a training-mode unit is multiplied by."""
    return keep.astype(dtype) * jnp.asarray(keep_scale(rate), dtype)


def native_key(base: jax.Array, step: int | jax.Array, layer: int) -> jax.Array:
    """The key of the native mask after hidden layer ``layer`` at training step ``step`` of a
    run whose key is ``base`` (``jax.random.key(seed)``)."""
    key: jax.Array = jax.random.fold_in(jax.random.fold_in(base, step), layer)
    return key


def native_keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
    """A boolean keep-mask: ``u >= float32(p)`` for ``u`` uniform in [0, 1) from ``key``."""
    uniform = jax.random.uniform(key, shape, dtype=jnp.float32)
    keep: jax.Array = uniform >= jnp.float32(rate)
    return keep


@partial(jax.jit, static_argnames="rate")
def _apply(x: jax.Array, keep: jax.Array, rate: float) -> jax.Array:
    # a `where`, not a multiplication: dropped units are exactly 0 even where x is inf or NaN
    kept = x * jnp.asarray(keep_scale(rate), x.dtype)
    return jnp.where(keep, kept, jnp.zeros((), x.dtype))


class JaxDropout:
    """:class:`mlpcore.dropout.DropoutOps` evaluated by JAX, NumPy in and out.

    Without ``keep_mask`` the mask is drawn from ``jax.random.key(seed)``.
    """

    @in_x64_scope
    def apply(self, x: FloatArray, rate: float, *, training: bool,
              keep_mask: npt.NDArray[np.bool_] | None = None, seed: int = 0) -> FloatArray:
        rate = check_rate(rate)
        values = floating(x)
        if not training or rate == 0.0:
            return to_numpy(values)
        if keep_mask is None:
            keep = native_keep_mask(jax.random.key(seed), tuple(values.shape), rate)
        else:
            keep = to_jax(keep_mask, "bool")
        return to_numpy(_apply(values, keep, rate))
