"""A sigmoid that is off by 1e-3, e.g. from a badly fitted polynomial approximation."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mlpcore.activations import ActivationName
from mlpcore_numpy.backend import NumpyBackend
from mlpcore_numpy.ops import NumpyActivations


class OffSigmoid(NumpyActivations):
    """``sigmoid(x) + 1e-3``; relu and tanh are right."""

    def value(self, name: ActivationName, x: npt.NDArray[np.floating]
              ) -> npt.NDArray[np.floating]:
        out = super().value(name, x)
        if name == "sigmoid":
            out += out.dtype.type(1e-3)  # BUG
        return out


class Backend(NumpyBackend):
    """The NumPy backend with :class:`OffSigmoid`."""

    name = "broken_sigmoid_off"

    def __init__(self) -> None:
        super().__init__()
        self.activations = OffSigmoid()
