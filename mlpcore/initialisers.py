"""Initial variables, drawn in NumPy: ``init.sample(rng, shape)`` gives float64, cast to the model
dtype. Draws come from the stream ``(seed, INIT, layer, slot)`` (slot 0 weights, 1 bias), so the
same spec and seed give bit-identical variables on every backend (docs/contracts.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from mlpcore.random import Purpose, stream
from mlpcore.spec import MLPSpec, bias_name, weights_name

__all__ = ["GlorotUniform", "Initialiser", "Normal", "TruncatedNormal", "Zeros",
           "initial_variables"]

Float64Array = npt.NDArray[np.float64]


class Initialiser(Protocol):
    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Float64Array:
        """A float64 array of ``shape`` drawn from ``rng``."""


@dataclass(frozen=True)
class Normal:
    """``N(mean, stddev²)``; ``stddev`` a finite number > 0."""

    stddev: float = 0.01
    mean: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.stddev, int | float) and 0 < self.stddev < math.inf):
            raise ValueError(f"stddev must be a finite number > 0, got {self.stddev!r}")

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Float64Array:
        return self.mean + self.stddev * rng.standard_normal(shape)


@dataclass(frozen=True)
class TruncatedNormal(Normal):
    """``N(mean, stddev²)``, re-drawn until within ``mean ± 2·stddev`` (tf.truncated_normal)."""

    stddev: float = 0.1

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Float64Array:
        values = rng.standard_normal(shape)
        while (outside := np.abs(values) > 2.0).any():
            values[outside] = rng.standard_normal(int(outside.sum()))
        return self.mean + self.stddev * values


@dataclass(frozen=True)
class Zeros:
    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Float64Array:
        return np.zeros(shape)


@dataclass(frozen=True)
class GlorotUniform:
    """Glorot & Bengio (2010): ``U(-a, a)``, ``a = sqrt(6 / (shape[0] + shape[-1]))``."""

    def sample(self, rng: np.random.Generator, shape: tuple[int, ...]) -> Float64Array:
        limit = math.sqrt(6.0 / (shape[0] + shape[-1]))
        return rng.uniform(-limit, limit, shape)


def initial_variables(spec: MLPSpec, seed: int, weights: Initialiser | None = None,
                      bias: Initialiser | None = None,
                      dtype: str = "float32") -> dict[str, npt.NDArray[np.floating]]:
    """``spec``'s variables by name; default: ``TruncatedNormal(0.1)`` weights, ``Zeros`` bias."""
    weights = TruncatedNormal(0.1) if weights is None else weights
    bias = Zeros() if bias is None else bias
    values: dict[str, npt.NDArray[np.floating]] = {}
    for layer, (fan_in, fan_out) in enumerate(zip(spec.sizes, spec.sizes[1:], strict=False)):
        w = weights.sample(stream(seed, Purpose.INIT, layer, 0), (fan_in, fan_out))
        b = bias.sample(stream(seed, Purpose.INIT, layer, 1), (fan_out,))
        values[weights_name(layer)] = w.astype(dtype)
        values[bias_name(layer)] = b.astype(dtype)
    return values
