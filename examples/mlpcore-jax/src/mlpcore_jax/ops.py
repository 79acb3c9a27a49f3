"""The JAX backend's function for each name of the contract, its arrays, gradients and scope.

What :class:`mlpcore.backend_common.AutodiffOps` asks for (maths in :mod:`mlpcore.activations`,
:mod:`mlpcore.losses`, :mod:`mlpcore.regularisers`, :mod:`mlpcore.dropout`):

==============  =================================================================================
dense           ``a @ W + b``, ``W`` canonical ``(d_in, d_out)``: nothing is transposed
activations     ``jax.nn.relu`` (its custom JVP makes relu'(0) = 0), ``jax.nn.sigmoid``
                (``lax.logistic``: exactly 0 and 1 at ∓1000, no warnings), ``jnp.tanh``
losses          cross-entropy through ``jax.nn.log_softmax`` (the row max subtracted: logits of
                1e30 stay finite), ``-(1/N) Σ_n Σ_k t_nk log_softmax(z_n)_k``, one-hot for
                integer labels, exact for float rows that do not sum to 1; ``mse``: the mean
                over every element
penalties       ``Σ W² / 2`` and ``Σ |W|``, the latter through :func:`abs_with_sign_gradient`
native masks    ``jax.random.uniform`` in float32 keyed by :func:`native_key`, kept where
                ``u >= float32(p)``: the portable rule with JAX's counter-based generator
==============  =================================================================================

Gradients are ``jax.value_and_grad``; nothing is differentiated by hand. Every conversion keeps
the dtype and the values bit for bit (``jax.device_put`` copies bytes, subnormals and -0.0 too).

**float64.** JAX represents float64 only while its ``jax_enable_x64`` flag is on; with it off, a
float64 array silently becomes float32. Turning the flag on process-wide would change the default
dtypes of every JAX user in the process, so this backend never does: every public method runs
inside :func:`x64_scope`, JAX's thread-local ``enable_x64`` context, and every array and constant
here has an explicit dtype (Python scalars are weakly typed and take the array's), so float32
models stay float32. Jitted functions are cached per flag state.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from mlpcore.backend_common import Table
from mlpcore.dropout import keep_scale

P = ParamSpec("P")
R = TypeVar("R")


def _enable_x64_context() -> Callable[[bool], contextlib.AbstractContextManager[Any]]:
    """JAX's thread-local x64 switch: ``jax.enable_x64`` (newer JAX), else
    ``jax.experimental.enable_x64`` (JAX 0.4)."""
    switch: Any = getattr(jax, "enable_x64", None)
    if not callable(switch):
        from jax import experimental

        switch = vars(experimental)["enable_x64"]
    return cast(Callable[[bool], contextlib.AbstractContextManager[Any]], switch)


_X64 = _enable_x64_context()


@contextlib.contextmanager
def x64_scope() -> Iterator[None]:
    """Run the body with 64-bit types enabled in this thread, restoring the flag after."""
    with _X64(True):
        yield


def in_x64_scope(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` run inside :func:`x64_scope` (for the public methods)."""

    @wraps(function)
    def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
        with x64_scope():
            return function(*args, **kwargs)

    return scoped


@jax.custom_jvp
def abs_with_sign_gradient(w: jax.Array) -> jax.Array:
    """``|w|`` element-wise, whose derivative is ``sign(w)``: 0 at 0, the subgradient the
    contract picks (JAX's own derivative of ``jnp.abs`` at 0 is 1)."""
    return jnp.abs(w)


@abs_with_sign_gradient.defjvp
def _abs_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]) -> tuple[jax.Array, jax.Array]:
    (w,), (dw,) = primals, tangents
    return jnp.abs(w), jnp.sign(w) * dw


def _cross_entropy(outputs: jax.Array, targets: jax.Array) -> jax.Array:
    log_p = jax.nn.log_softmax(outputs, axis=-1)
    if jnp.issubdtype(targets.dtype, jnp.integer):
        return -jnp.mean(jnp.take_along_axis(log_p, targets[:, None], axis=-1))
    return -jnp.mean(jnp.sum(targets * log_p, axis=-1))


def native_key(base: jax.Array, step: int | jax.Array, layer: int) -> jax.Array:
    """The key of the native mask after hidden layer ``layer`` at training step ``step`` of a
    run keyed ``base`` (``jax.random.key(seed)``): a mask is addressed by its key alone, so it can
    be drawn inside a jitted chunk without generator state."""
    key: jax.Array = jax.random.fold_in(jax.random.fold_in(base, step), layer)
    return key


def native_keep_mask(key: jax.Array, shape: tuple[int, ...], rate: float) -> jax.Array:
    """A bool keep-mask: ``u >= float32(p)`` for ``u`` uniform in [0, 1) from ``key``."""
    keep: jax.Array = jax.random.uniform(key, shape, dtype=jnp.float32) >= jnp.float32(rate)
    return keep


def scaled_mask(keep: jax.Array, rate: float, dtype: Any) -> jax.Array:
    """``keep · keep_scale(rate)`` in ``dtype``, the scale rounded to it first."""
    return keep.astype(dtype) * jnp.asarray(keep_scale(rate), dtype)


@functools.lru_cache(maxsize=256)
def _value_and_grad(fn: Callable[..., jax.Array], n: int) -> Callable[..., Any]:
    """``jax.jit`` of the sum of ``fn`` and its gradient in the first ``n`` arguments, kept per
    function (``fn`` is a hashable table entry, penalty or objective): compiled once per
    function and shapes, where an eager ``value_and_grad`` would trace on every call."""
    return jax.jit(jax.value_and_grad(lambda *a: jnp.sum(fn(*a)), argnums=tuple(range(n))))


class JaxOps:
    """:class:`mlpcore.backend_common.AutodiffOps` in JAX. Call inside :func:`x64_scope`."""

    activations: Table[Callable[[jax.Array], jax.Array]] = Table("activation", {
        "relu": jax.nn.relu, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh})
    losses: Table[Callable[[jax.Array, jax.Array], jax.Array]] = Table("loss", {
        "softmax_cross_entropy": _cross_entropy,
        "mse": lambda o, t: jnp.mean(jnp.square(o - t))})
    penalties: Table[Callable[[jax.Array], jax.Array]] = Table("regulariser", {
        "l2": lambda w: jnp.sum(jnp.square(w)) / 2,
        "l1": lambda w: jnp.sum(abs_with_sign_gradient(w))})

    @staticmethod
    def dense(a: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
        return a @ w + b

    @staticmethod
    def tensor(array: npt.NDArray[Any]) -> jax.Array:
        result: jax.Array = jax.device_put(np.asarray(array))
        return result

    @staticmethod
    def numpy(value: jax.Array) -> npt.NDArray[Any]:
        return np.array(value, order="C")

    @staticmethod
    def cast(x: jax.Array, dtype: str) -> jax.Array:
        return x.astype(dtype)

    @staticmethod
    def gradients(fn: Callable[..., jax.Array], args: Sequence[jax.Array],
                  n: int) -> tuple[jax.Array, list[jax.Array]]:
        value, grads = _value_and_grad(fn, n)(*args)
        return value, list(grads)

    @staticmethod
    def keep_mask(seed: int, shape: tuple[int, ...], rate: float) -> jax.Array:
        return native_keep_mask(jax.random.key(seed), shape, rate)

    @staticmethod
    def dropout(x: jax.Array, keep: jax.Array, rate: float) -> jax.Array:
        return jnp.where(keep, x * jnp.asarray(keep_scale(rate), x.dtype), jnp.zeros((), x.dtype))


OPS = JaxOps()
