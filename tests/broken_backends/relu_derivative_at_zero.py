"""relu' computed as ``x >= 0``: relu'(0) = 1 instead of 0."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mlpcore.activations import ActivationName
from mlpcore_numpy.backend import NumpyBackend
from mlpcore_numpy.ops import NumpyActivations


class ReluDerivativeOneAtZero(NumpyActivations):
    """Right everywhere except relu'(0)."""

    def derivative(self, name: ActivationName, x: npt.NDArray[np.floating]
                   ) -> npt.NDArray[np.floating]:
        if name == "relu":
            x = np.asarray(x)
            return (x >= 0).astype(x.dtype)  # BUG: >= instead of >
        return super().derivative(name, x)


class Backend(NumpyBackend):
    """The NumPy backend with :class:`ReluDerivativeOneAtZero`."""

    name = "broken_relu_derivative_at_zero"

    def __init__(self) -> None:
        super().__init__()
        self.activations = ReluDerivativeOneAtZero()
