"""Where NumPy meets JAX: array conversion, dtypes, and the scope in which float64 exists.

The canonical layout of a weight matrix, ``(fan_in, fan_out)``, is also the natural one for
``x @ W`` in JAX, so this backend stores every variable in canonical layout and converts nothing
but the array type at its boundary. Every conversion keeps the dtype and the values bit for bit
(``jax.device_put`` copies bytes; it rounds nothing, subnormals and -0.0 included).

**float64.** JAX represents float64 only while its ``jax_enable_x64`` flag is on; with it off, a
float64 array is silently turned into float32. Turning the flag on process-wide
(``jax.config.update("jax_enable_x64", True)``) would change the default dtypes of *every* JAX
user in the process, so this backend never does. Instead every public method runs inside
:func:`x64_scope`, JAX's thread-local ``enable_x64`` context: float64 models are float64, and
float32 models stay float32 because every array and constant here is given an explicit dtype
(Python scalars are weakly typed and take the array's dtype). Jitted functions are cached per
flag state, so code inside and outside the scope never share a compiled program.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, ParamSpec, TypeVar, cast

import jax
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.floating]
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
    """Decorate a public method so that it runs inside :func:`x64_scope`."""

    @wraps(function)
    def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
        with x64_scope():
            return function(*args, **kwargs)

    return scoped


def dtype_of(name: str) -> np.dtype[Any]:
    """The JAX dtype of a model dtype name (``"float32"`` or ``"float64"``)."""
    if name not in ("float32", "float64"):
        raise ValueError(f"the jax backend stores float32 or float64, not {name!r}")
    return np.dtype(name)


def to_jax(array: npt.ArrayLike, dtype: str | None = None) -> jax.Array:
    """A JAX array with ``array``'s values and shape, in ``dtype`` (default: its own).

    Converting to ``dtype`` happens in NumPy first, so a value that cannot be converted (a
    string) raises before anything reaches JAX. Call inside :func:`x64_scope`.
    """
    values = np.asarray(array) if dtype is None else np.asarray(array, dtype=dtype)
    result: jax.Array = jax.device_put(values)
    return result


def floating(array: npt.ArrayLike) -> jax.Array:
    """A floating-point array as a JAX array; ``TypeError`` for any other dtype."""
    values = np.asarray(array)
    if values.dtype.kind != "f":
        raise TypeError(f"expected a floating-point array, got dtype {values.dtype}")
    result: jax.Array = jax.device_put(values)
    return result


def targets_for(targets: npt.ArrayLike, dtype: np.dtype[Any]) -> jax.Array:
    """Training targets: integer labels (N,) as int32, float targets (N, K) in ``dtype``."""
    values = np.asarray(targets)
    converted = values.astype(dtype if values.dtype.kind == "f" else np.int32, copy=False)
    result: jax.Array = jax.device_put(converted)
    return result


def to_numpy(array: jax.Array) -> npt.NDArray[Any]:
    """A writable NumPy copy of ``array`` that shares no memory with it."""
    return np.array(array, copy=True, order="C")
