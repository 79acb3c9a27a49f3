"""The description of an MLP that every backend builds the same way.

A spec with ``sizes = (d_0, d_1, ..., d_L)`` has ``L`` dense layers. Layer ``i`` maps
``(batch, d_i) -> (batch, d_{i+1})``::

    z_i = a_i @ W_i + b_i            W_i: (d_i, d_{i+1}),  b_i: (d_{i+1},)
    a_{i+1} = dropout(act(z_i))      for the hidden layers i < L - 1
    logits  = z_{L-1}                the output layer is linear

with ``a_0 = x``. The variables are named ``dense_{i}/weights`` and ``dense_{i}/bias`` and are
stored in this (fan_in, fan_out) layout in every checkpoint, whatever the backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import numpy as np

__all__ = ["ActivationName", "DTypeName", "MLPSpec", "bias_name", "weights_name"]

ActivationName = Literal["relu", "sigmoid", "tanh"]
DTypeName = Literal["float32", "float64"]

ACTIVATIONS: tuple[str, ...] = get_args(ActivationName)
DTYPES: tuple[str, ...] = get_args(DTypeName)


def weights_name(layer: int) -> str:
    """Canonical name of layer ``layer``'s weight matrix, shape (fan_in, fan_out)."""
    return f"dense_{layer}/weights"


def bias_name(layer: int) -> str:
    """Canonical name of layer ``layer``'s bias vector, shape (fan_out,)."""
    return f"dense_{layer}/bias"


def check_dtype(dtype: str) -> DTypeName:
    """Return ``dtype`` if it is a supported floating dtype name, else raise ``ValueError``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return cast(DTypeName, dtype)


def check_rate(rate: float, what: str = "dropout rate") -> float:
    """Return ``rate`` as a float if it is a number in [0, 1], else raise ``ValueError``."""
    if isinstance(rate, bool) or not isinstance(rate, int | float):
        raise ValueError(f"{what} must be a number in [0, 1], got {rate!r}")
    value = float(rate)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be in [0, 1], got {rate!r}")
    return value


@dataclass(frozen=True)
class MLPSpec:
    """Layer sizes, hidden activation and dropout rate of a multilayer perceptron.

    ``sizes`` has at least two entries (input width, ..., output width), each a positive integer.
    ``activation`` is applied after every hidden layer, never after the output layer.
    ``dropout`` is the rate ``p`` of inverted dropout after every hidden activation (0 disables it).
    """

    sizes: tuple[int, ...]
    activation: ActivationName = "sigmoid"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        try:
            sizes = tuple(self.sizes)
        except TypeError:
            raise ValueError(
                f"MLPSpec.sizes must be a sequence of layer widths, got {self.sizes!r}") from None
        if len(sizes) < 2:
            raise ValueError(
                f"MLPSpec.sizes needs an input and an output width, got {self.sizes!r}")
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
                raise ValueError(
                    f"MLPSpec.sizes must be positive integers, got {size!r} in {self.sizes!r}"
                )
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"MLPSpec.activation must be one of {', '.join(ACTIVATIONS)}, "
                f"got {self.activation!r}"
            )
        object.__setattr__(self, "sizes", tuple(int(size) for size in sizes))
        object.__setattr__(self, "dropout", check_rate(self.dropout, "MLPSpec.dropout"))

    @property
    def n_layers(self) -> int:
        """Number of dense layers, ``len(sizes) - 1``."""
        return len(self.sizes) - 1

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    def variable_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every variable's canonical name and shape, in layer order (weights before bias)."""
        shapes: dict[str, tuple[int, ...]] = {}
        for i, (fan_in, fan_out) in enumerate(zip(self.sizes, self.sizes[1:], strict=False)):
            shapes[weights_name(i)] = (fan_in, fan_out)
            shapes[bias_name(i)] = (fan_out,)
        return shapes

    def weight_names(self) -> list[str]:
        """Names of the weight matrices, the variables a regulariser penalises."""
        return [weights_name(i) for i in range(self.n_layers)]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, the inverse of :meth:`from_dict`."""
        return {"sizes": list(self.sizes), "activation": self.activation, "dropout": self.dropout}

    @classmethod
    def from_dict(cls, data: Any) -> MLPSpec:
        """Build a spec from :meth:`to_dict` output, rejecting unknown or missing keys."""
        if not isinstance(data, dict):
            raise ValueError(f"an MLP spec must be a JSON object, got {type(data).__name__}")
        keys = ("sizes", "activation", "dropout")
        unknown = set(data) - set(keys)
        if unknown:
            raise ValueError(f"unknown MLP spec keys: {', '.join(sorted(map(str, unknown)))}")
        missing = [key for key in keys if key not in data]
        if missing:
            raise ValueError(f"missing MLP spec keys: {', '.join(missing)}")
        if not isinstance(data["sizes"], list):
            raise ValueError("MLP spec 'sizes' must be a list of positive integers")
        return cls(
            sizes=tuple(data["sizes"]),
            activation=data["activation"],
            dropout=data["dropout"],
        )
