"""The NumPy backend object and its model: plain NumPy arrays in canonical layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend import Capability, TrainingConfig
from mlpcore.backend_common import BackendBase, ModelBase, interleave, penalties
from mlpcore.losses import LossName
from mlpcore.regularisers import Regulariser
from mlpcore_numpy.activations import NumpyActivations
from mlpcore_numpy.dropout import NumpyDropout
from mlpcore_numpy.losses import TABLE as LOSSES
from mlpcore_numpy.losses import NumpyLosses
from mlpcore_numpy.network import BoolArray, FloatArray, Workspace, backprop, forward_into
from mlpcore_numpy.regularisers import TABLE as PENALTIES
from mlpcore_numpy.regularisers import NumpyRegularisers
from mlpcore_numpy.training import NumpyTrainer


class NumpyModel(ModelBase):
    """:class:`mlpcore.backend.BackendModel` holding C-contiguous NumPy arrays. Writes copy into
    them in place, so a running trainer keeps seeing the model's arrays."""

    training_methods = ("manual",)

    def _native(self, array: FloatArray) -> FloatArray:
        return np.array(array, order="C")

    def _canonical(self, value: FloatArray) -> FloatArray:
        return np.array(value, order="C")

    def _assign(self, weights: list[FloatArray], biases: list[FloatArray]) -> None:
        for target, source in zip(self._weights + self._biases, weights + biases, strict=True):
            target[...] = source

    def variable_views(self) -> dict[str, FloatArray]:
        """Read-only views of the model's own arrays (no copy), for ``mlpcore.save``.

        Optional extra of the contract (:class:`mlpcore.io.checkpoint.VariableViews`): the views
        follow later updates of the model, so unlike :meth:`read_variables` they are not a
        snapshot.
        """
        views = {}
        for name, array in zip(self.spec.variable_shapes(),
                               interleave(self._weights, self._biases), strict=True):
            views[name] = array.view()
            views[name].flags.writeable = False
        return views

    def _forward(self, x: FloatArray) -> FloatArray:
        ws = Workspace(self.spec, x.shape[0], x.dtype)
        with np.errstate(over="ignore"):
            return forward_into(self.spec, self._weights, self._biases, x, ws, ())

    def _gradients(self, x: FloatArray, targets: npt.NDArray[Any], loss: LossName,
                   regularisers: Sequence[Regulariser],
                   masks: Sequence[BoolArray]) -> tuple[float, list[FloatArray]]:
        ws = Workspace(self.spec, x.shape[0], x.dtype)
        with np.errstate(over="ignore"):
            objective = backprop(self.spec, self._weights, self._biases, x, targets,
                                 LOSSES[loss], penalties(PENALTIES, regularisers), ws, masks)
        return objective, interleave(ws.grad_w, ws.grad_b)

    def _trainer(self, config: TrainingConfig, x: FloatArray,
                 targets: npt.NDArray[Any]) -> NumpyTrainer:
        return NumpyTrainer(self.spec, self._weights, self._biases, config, x, targets)


class NumpyBackend(BackendBase):
    """:class:`mlpcore.backend.Backend` in plain NumPy with hand-written backpropagation."""

    name = "numpy"
    capabilities: frozenset[str] = frozenset({Capability.FLOAT64, Capability.GRADIENTS,
                                              Capability.NATIVE_DROPOUT})
    training_methods = NumpyModel.training_methods
    framework = np
    model = NumpyModel

    def __init__(self) -> None:
        self.activations = NumpyActivations()
        self.losses = NumpyLosses()
        self.regularisers = NumpyRegularisers()
        self.dropout = NumpyDropout()
