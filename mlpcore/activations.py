"""Contract: element-wise activations and their derivatives.

=========  ==============================  =====================================
name       value f(x)                      derivative f'(x)
=========  ==============================  =====================================
relu       max(x, 0)                       1 if x > 0 else 0   (so relu'(0) = 0)
sigmoid    1 / (1 + exp(-x))               f(x) * (1 - f(x))
tanh       tanh(x)                         1 - tanh(x)^2
=========  ==============================  =====================================

Shapes: any; the output has the input's shape and dtype (float32 or float64).
Numerics: no overflow warning and no NaN for finite input, including |x| = 1000, in float32 and
float64; sigmoid(-1000) = 0 and sigmoid(1000) = 1. (The NumPy backend evaluates
``1 / (1 + exp(-x))`` with the overflow of ``exp`` to ``inf`` expected and silenced, which gives
exactly 0; ``exp(min(x, 0)) / (1 + exp(-|x|))`` is an equally good form.) NaN in gives NaN out.
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
    """What a backend offers for activations, evaluated by its own framework.

    Arrays cross this boundary as NumPy arrays so that any two backends can be compared; inside a
    backend's training loop the same maths runs on native arrays.
    """

    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        """``f(x)`` element-wise."""
        ...

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        """``f'(x)`` element-wise, taken at the pre-activation ``x``."""
        ...
