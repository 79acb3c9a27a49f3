"""Deterministic test data for the suite's fixed (non-Hypothesis) cases.

Every generator is a pure function of its arguments, so a failure message can reproduce a large
array as the short call that made it (see :func:`code`) instead of printing it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend import Backend, BackendModel
from mlpcore.devices import available_devices
from mlpcore.spec import ComputeDType, MLPSpec
from mlpcore_conformance.repro import Code

__all__ = ["build", "code", "labels", "normal", "one_hot", "special_values", "variables"]


def build(backend: Backend, spec: MLPSpec, values: dict[str, npt.NDArray[Any]],
          dtype: ComputeDType, device: str) -> BackendModel:
    """``backend.build`` on ``device`` (a name the backend resolved), as :class:`mlpcore.MLP`
    calls it: without ``device=`` for the backend's CPU, its default."""
    if device != available_devices(backend)[0]:
        return backend.build(spec, values, dtype, device=device)  # type: ignore[call-arg]
    return backend.build(spec, values, dtype)


def normal(seed: int, shape: tuple[int, ...], dtype: str = "float64",
           scale: float = 1.0) -> npt.NDArray[np.floating]:
    """``scale`` times standard normal draws from ``default_rng(seed)``, cast to ``dtype``."""
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(dtype)


def labels(seed: int, n: int, k: int) -> npt.NDArray[np.int64]:
    """``n`` integer labels in ``[0, k)``."""
    return np.random.default_rng(seed).integers(0, k, n).astype(np.int64)


def one_hot(seed: int, n: int, k: int, dtype: str = "float32") -> npt.NDArray[np.floating]:
    """The one-hot rows of :func:`labels`."""
    return np.eye(k, dtype=dtype)[labels(seed, n, k)]


def variables(spec: MLPSpec, seed: int, dtype: str = "float32",
              scale: float = 0.5) -> dict[str, npt.NDArray[np.floating]]:
    """Every variable of ``spec`` drawn from :func:`normal` (seed ``seed + i`` for the i-th)."""
    return {name: normal(seed + i, shape, dtype, scale)
            for i, (name, shape) in enumerate(spec.variable_shapes().items())}


def special_values(dtype: str) -> npt.NDArray[np.floating]:
    """Values a checkpoint must keep bit for bit: ±0, the smallest subnormal, the largest finite
    value, and ordinary numbers."""
    info = np.finfo(np.dtype(dtype))
    return np.array([-0.0, 0.0, info.smallest_subnormal, -info.smallest_subnormal,
                     info.max, -info.max, info.tiny, 1.0 / 3.0], dtype=dtype)


def code(function: str, *args: Any, **kwargs: Any) -> Code:
    """``cases.function(*args, **kwargs)`` as a reproduction :class:`Code` value."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return Code(f"cases.{function}({', '.join(parts)})")
