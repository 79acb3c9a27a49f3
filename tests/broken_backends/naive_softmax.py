"""Softmax cross-entropy without the log-sum-exp shift: ``exp`` of raw logits overflows."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.losses import LossName
from mlpcore_numpy.backend import NumpyBackend
from mlpcore_numpy.ops import NumpyLosses

FloatArray = npt.NDArray[np.floating]


def _targets(outputs: FloatArray, targets: npt.NDArray[Any]) -> FloatArray:
    if targets.ndim == 1:
        return np.eye(outputs.shape[1], dtype=outputs.dtype)[targets]
    return targets


class NaiveLosses(NumpyLosses):
    """The textbook formula, evaluated literally."""

    def value(self, name: LossName, outputs: FloatArray, targets: npt.NDArray[Any]) -> float:
        if name != "softmax_cross_entropy":
            return super().value(name, outputs, targets)
        with np.errstate(all="ignore"):
            e = np.exp(outputs)  # BUG: no max subtracted
            log_softmax = np.log(e / e.sum(axis=1, keepdims=True))
            return float(-(_targets(outputs, targets) * log_softmax).sum() / outputs.shape[0])

    def gradient(self, name: LossName, outputs: FloatArray,
                 targets: npt.NDArray[Any]) -> FloatArray:
        if name != "softmax_cross_entropy":
            return super().gradient(name, outputs, targets)
        t = _targets(outputs, targets)
        with np.errstate(all="ignore"):
            e = np.exp(outputs)  # BUG: no max subtracted
            softmax = e / e.sum(axis=1, keepdims=True)
            mass = t.sum(axis=1, keepdims=True)
            return ((mass * softmax - t) / outputs.shape[0]).astype(outputs.dtype)


class Backend(NumpyBackend):
    """The NumPy backend with :class:`NaiveLosses`."""

    name = "broken_naive_softmax"

    def __init__(self) -> None:
        super().__init__()
        self.losses = NaiveLosses()
