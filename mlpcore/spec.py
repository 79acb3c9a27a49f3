"""The description of an MLP that every backend builds the same way (docs/contracts.md).

``sizes = (d_0, ..., d_L)`` gives ``L`` dense layers; with ``a_0 = x`` of shape (N, d_0)::

    z_i = a_i @ W_i + b_i          W_i = dense_{i}/weights (d_i, d_{i+1}), b_i = dense_{i}/bias
    a_{i+1} = dropout(act(z_i))    hidden layers i < L - 1; the output layer is linear: z_{L-1}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import numpy as np

__all__ = ["ActivationName", "ComputeDType", "DTypeName", "MLPSpec", "bias_name",
           "master_dtype", "weights_name"]

ActivationName = Literal["relu", "sigmoid", "tanh"]
DTypeName = Literal["float32", "float64"]
"""The dtypes of variables, checkpoints and every NumPy array crossing the backend boundary."""
ComputeDType = Literal["float32", "float64", "bfloat16", "float16"]
"""A model's dtype: the two above, or mixed precision (float32 master variables, see
:func:`master_dtype`, and the passes computed in bfloat16 or float16)."""

ACTIVATIONS: tuple[str, ...] = get_args(ActivationName)
DTYPES: tuple[str, ...] = get_args(DTypeName)
COMPUTE_DTYPES: tuple[str, ...] = get_args(ComputeDType)


def weights_name(layer: int) -> str:
    return f"dense_{layer}/weights"


def bias_name(layer: int) -> str:
    return f"dense_{layer}/bias"


def check_dtype(dtype: str) -> DTypeName:
    """``dtype`` if it is a variable dtype name (float32, float64), else ``ValueError``."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return cast(DTypeName, dtype)


def check_compute_dtype(dtype: str) -> ComputeDType:
    """``dtype`` if it is a model dtype name (:data:`ComputeDType`), else ``ValueError``."""
    if dtype not in COMPUTE_DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {dtype!r}")
    return cast(ComputeDType, dtype)


def master_dtype(dtype: ComputeDType) -> DTypeName:
    """The dtype of a ``dtype`` model's variables: float32 for bfloat16 and float16 (mixed
    precision keeps float32 masters, updated by float32 gradients), else ``dtype`` itself."""
    return "float64" if dtype == "float64" else "float32"


def check_rate(rate: float, what: str = "dropout rate") -> float:
    """``rate`` as a float if it is a number in [0, 1], else ``ValueError`` naming ``what``."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"{what} must be a number in [0, 1], got {rate!r}")  # NaN too
    return float(rate)


@dataclass(frozen=True)
class MLPSpec:
    """Layer widths ``sizes`` (input first), hidden ``activation``, inverted ``dropout`` rate."""

    sizes: tuple[int, ...]
    activation: ActivationName = "sigmoid"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        try:
            sizes = tuple(self.sizes)
        except TypeError:
            sizes = ()
        if len(sizes) < 2 or any(isinstance(size, bool) or not isinstance(size, int | np.integer)
                                 or size < 1 for size in sizes):
            raise ValueError("MLPSpec.sizes must be positive integers, at least an input and an "
                             f"output width; got {self.sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLPSpec.activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        object.__setattr__(self, "sizes", tuple(int(size) for size in sizes))
        object.__setattr__(self, "dropout", check_rate(self.dropout, "MLPSpec.dropout"))

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    @property
    def n_inputs(self) -> int:
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    def variable_shapes(self) -> dict[str, tuple[int, ...]]:
        """Every variable's name and shape in layer order; weights (fan_in, fan_out) everywhere."""
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
        """A spec from :meth:`to_dict` output; ``ValueError`` for unknown or missing keys."""
        if not isinstance(data, dict):
            raise ValueError(f"an MLP spec must be a JSON object, got {type(data).__name__}")
        keys = {"sizes", "activation", "dropout"}
        for problem, names in (("unknown", set(data) - keys), ("missing", keys - set(data))):
            if names:
                raise ValueError(f"{problem} MLP spec keys: {', '.join(sorted(map(str, names)))}")
        if not isinstance(data["sizes"], list):
            raise ValueError("MLP spec 'sizes' must be a list of positive integers")
        return cls(sizes=tuple(data["sizes"]), activation=data["activation"],
                   dropout=data["dropout"])
