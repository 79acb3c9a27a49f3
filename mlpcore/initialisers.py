"""Initialisers: the starting values of every variable, drawn in NumPy for every backend.

Each initialiser is a small frozen dataclass; calling ``init.sample(rng, shape)`` returns a float64
array that the model then casts to its dtype. Because the draws come from the counter-based stream
``(seed, INIT, layer, slot)`` (slot 0 = weights, 1 = bias), the same spec and seed give
bit-identical starting variables on every backend.

==================  ========================================================================
TruncatedNormal     N(mean, stddev²) re-drawn until inside mean ± 2·stddev (``tf.truncated_normal``)
Normal              N(mean, stddev²)
Zeros               all zeros
GlorotUniform       U(-a, a), a = sqrt(6 / (fan_in + fan_out)); for a bias, fan_in = fan_out = n
==================  ========================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from mlpcore.random import Purpose, stream
from mlpcore.spec import MLPSpec, bias_name, weights_name

__all__ = [
    "GlorotUniform",
    "Initialiser",
    "Normal",
    "TruncatedNormal",
    "Zeros",
    "initial_variables",
]

Float64Array = npt.NDArray[np.float64]


class Initialiser(Protocol):
    """Draws a float64 array of ``shape`` from ``rng``."""

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Float64Array: ...


@dataclass(frozen=True)
class Normal:
    """Plain normal draws ``N(mean, stddev²)``."""

    stddev: float = 0.01
    mean: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.stddev, int | float) and math.isfinite(self.stddev)
                and self.stddev > 0):
            raise ValueError(f"stddev must be a finite number > 0, got {self.stddev!r}")

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Float64Array:
        return self.mean + self.stddev * rng.standard_normal(shape)


@dataclass(frozen=True)
class TruncatedNormal(Normal):
    """Normal draws, each re-drawn until it lies within two standard deviations of the mean."""

    stddev: float = 0.1

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Float64Array:
        values = rng.standard_normal(shape)
        outside = np.abs(values) > 2.0
        while outside.any():
            values[outside] = rng.standard_normal(int(outside.sum()))
            outside = np.abs(values) > 2.0
        return self.mean + self.stddev * values


@dataclass(frozen=True)
class Zeros:
    """All zeros (the usual bias initialiser)."""

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Float64Array:
        return np.zeros(shape)


@dataclass(frozen=True)
class GlorotUniform:
    """Glorot & Bengio (2010): ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``."""

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Float64Array:
        fan_in, fan_out = (shape[0], shape[-1]) if len(shape) >= 2 else (shape[0], shape[0])
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)


def initial_variables(spec: MLPSpec, seed: int, weights: Initialiser | None = None,
                      bias: Initialiser | None = None,
                      dtype: str = "float32") -> dict[str, npt.NDArray[np.floating]]:
    """Every variable of ``spec``, by canonical name, drawn from ``(seed, INIT, layer, slot)``.

    Defaults follow the textbook MLP: ``TruncatedNormal(0.1)`` weights and ``Zeros`` biases.
    """
    weights = TruncatedNormal(0.1) if weights is None else weights
    bias = Zeros() if bias is None else bias
    values: dict[str, npt.NDArray[np.floating]] = {}
    for layer, (fan_in, fan_out) in enumerate(zip(spec.sizes, spec.sizes[1:], strict=False)):
        w = weights.sample(stream(seed, Purpose.INIT, layer, 0), (fan_in, fan_out))
        b = bias.sample(stream(seed, Purpose.INIT, layer, 1), (fan_out,))
        values[weights_name(layer)] = w.astype(dtype)
        values[bias_name(layer)] = b.astype(dtype)
    return values
