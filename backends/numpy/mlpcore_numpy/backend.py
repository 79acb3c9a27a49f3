"""The NumPy backend object and its model: plain NumPy arrays in canonical layout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend import Capability, TrainingConfig
from mlpcore.backend_common import BackendBase, BoolArray, FloatArray, ModelBase, interleave
from mlpcore.losses import LossName
from mlpcore.optimizers import OptimizerState
from mlpcore.regularisers import Regulariser
from mlpcore_numpy.network import Workspace, backprop, forward_into
from mlpcore_numpy.ops import NumpyActivations, NumpyDropout, NumpyLosses, NumpyRegularisers
from mlpcore_numpy.training import NumpyTrainer


class NumpyModel(ModelBase):
    """:class:`mlpcore.backend.BackendModel` holding C-contiguous NumPy arrays, written in
    place."""

    training_methods = ("manual",)

    def variable_views(self) -> dict[str, FloatArray]:
        """Read-only views of the model's own arrays (no copy, no snapshot: they follow later
        updates) for ``mlpcore.save``: :class:`mlpcore.io.checkpoint.VariableViews`."""
        views = dict(zip(self.spec.variable_shapes(),
                         (a.view() for a in interleave(self._weights, self._biases)), strict=True))
        for view in views.values():
            view.flags.writeable = False
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
            objective = backprop(self.spec, self._weights, self._biases, x, targets, loss,
                                 regularisers, ws, masks)
        return objective, interleave(ws.grad_w, ws.grad_b)

    def _trainer(self, config: TrainingConfig, x: FloatArray, targets: npt.NDArray[Any],
                 state: OptimizerState | None) -> NumpyTrainer:
        return NumpyTrainer(self.spec, self._weights, self._biases, config, x, targets, state)


class NumpyBackend(BackendBase):
    """:class:`mlpcore.backend.Backend` in plain NumPy with hand-written backpropagation."""

    name = "numpy"
    capabilities: frozenset[str] = frozenset({Capability.FLOAT64, Capability.GRADIENTS,
                                              Capability.NATIVE_DROPOUT, Capability.OPTIMIZERS})
    training_methods = NumpyModel.training_methods
    framework = np
    model = NumpyModel

    def __init__(self) -> None:
        self.activations, self.losses = NumpyActivations(), NumpyLosses()
        self.regularisers, self.dropout = NumpyRegularisers(), NumpyDropout()
