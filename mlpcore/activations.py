"""Contract: element-wise activations ``relu``, ``sigmoid``, ``tanh`` and their derivatives.

Maths, shapes and numerics (relu'(0) = 0; no overflow or NaN at |x| = 1000): docs/contracts.md.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from mlpcore.spec import ACTIVATIONS, ActivationName

__all__ = ["ACTIVATIONS", "ActivationName", "ActivationOps", "check_activation"]

FloatArray = npt.NDArray[np.floating]


def check_activation(name: str) -> ActivationName:
    """Return ``name`` if it names a supported activation, else raise ``ValueError``."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}")
    return name  # type: ignore[return-value]


@runtime_checkable
class ActivationOps(Protocol):
    """A backend's activations, NumPy in and out: the input's shape and dtype."""

    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        """``f(x)`` element-wise."""

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        """``f'(x)`` element-wise, taken at the pre-activation ``x``."""
