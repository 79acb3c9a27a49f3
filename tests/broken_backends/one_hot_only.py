"""Softmax cross-entropy written for one-hot rows only: integer labels (N,) make it raise."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.losses import LossName
from mlpcore_numpy.backend import NumpyBackend
from mlpcore_numpy.ops import NumpyLosses

FloatArray = npt.NDArray[np.floating]


def _log_softmax(outputs: FloatArray) -> FloatArray:
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


class OneHotOnly(NumpyLosses):
    """``-Σ t log softmax(z) / N``, with ``t`` taken as given: right for one-hot rows; labels
    (N,) do not broadcast against (N, K) and raise (or, when N = K, broadcast wrongly)."""

    def value(self, name: LossName, outputs: FloatArray, targets: npt.NDArray[Any]) -> float:
        if name != "softmax_cross_entropy":
            return super().value(name, outputs, targets)
        return float(-(targets * _log_softmax(outputs)).sum() / len(outputs))  # BUG

    def gradient(self, name: LossName, outputs: FloatArray,
                 targets: npt.NDArray[Any]) -> FloatArray:
        if name != "softmax_cross_entropy":
            return super().gradient(name, outputs, targets)
        softmax = np.exp(_log_softmax(outputs))
        return ((softmax - targets) / len(outputs)).astype(outputs.dtype)  # BUG


class Backend(NumpyBackend):
    """The NumPy backend with :class:`OneHotOnly`."""

    name = "broken_one_hot_only"

    def __init__(self) -> None:
        super().__init__()
        self.losses = OneHotOnly()
