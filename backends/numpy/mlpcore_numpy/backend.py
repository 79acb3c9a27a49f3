"""The NumPy backend object and its model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend import CONTRACT_VERSION, Capability, TrainingConfig
from mlpcore.losses import LossName
from mlpcore.regularisers import Regulariser
from mlpcore.spec import DTypeName, MLPSpec, bias_name, weights_name
from mlpcore_numpy.activations import NumpyActivations
from mlpcore_numpy.dropout import NumpyDropout
from mlpcore_numpy.losses import NumpyLosses
from mlpcore_numpy.network import BoolArray, FloatArray, Workspace, backprop, forward_into
from mlpcore_numpy.regularisers import NumpyRegularisers
from mlpcore_numpy.training import NumpyTrainer

FORWARD_ROWS = 8192
"""Rows per forward-pass block, bounding the memory of ``forward`` on a large dataset."""


class NumpyModel:
    """:class:`mlpcore.backend.BackendModel` holding plain NumPy arrays."""

    def __init__(self, spec: MLPSpec, variables: Mapping[str, FloatArray], dtype: DTypeName):
        self.spec = spec
        self.dtype: DTypeName = dtype
        self._weights: list[FloatArray] = []
        self._biases: list[FloatArray] = []
        for i in range(spec.n_layers):
            self._weights.append(np.array(variables[weights_name(i)], dtype=dtype, order="C"))
            self._biases.append(np.array(variables[bias_name(i)], dtype=dtype, order="C"))

    def read_variables(self) -> dict[str, FloatArray]:
        values: dict[str, FloatArray] = {}
        for i, (w, b) in enumerate(zip(self._weights, self._biases, strict=True)):
            values[weights_name(i)] = w.copy()
            values[bias_name(i)] = b.copy()
        return values

    def variable_views(self) -> dict[str, FloatArray]:
        """Read-only views of the model's own arrays (no copy), for ``mlpcore.save``.

        Optional extra of the contract (:class:`mlpcore.checkpoint.VariableViews`): the views
        follow later updates of the model, so unlike :meth:`read_variables` they are not a
        snapshot.
        """
        values: dict[str, FloatArray] = {}
        for i, (w, b) in enumerate(zip(self._weights, self._biases, strict=True)):
            for name, array in ((weights_name(i), w), (bias_name(i), b)):
                view = array.view()
                view.flags.writeable = False
                values[name] = view
        return values

    def write_variables(self, values: Mapping[str, FloatArray]) -> None:
        new_weights = [np.asarray(values[weights_name(i)], dtype=self.dtype)
                       for i in range(self.spec.n_layers)]
        new_biases = [np.asarray(values[bias_name(i)], dtype=self.dtype)
                      for i in range(self.spec.n_layers)]
        # assign in place, so that a running trainer keeps seeing the model's arrays
        for target, source in zip(self._weights + self._biases, new_weights + new_biases,
                                  strict=True):
            target[...] = source

    def forward(self, x: FloatArray) -> FloatArray:
        x = np.asarray(x, dtype=self.dtype)
        out = np.empty((x.shape[0], self.spec.n_outputs), self.dtype)
        ws = Workspace(self.spec, min(FORWARD_ROWS, max(x.shape[0], 1)), np.dtype(self.dtype))
        with np.errstate(over="ignore"):
            for start in range(0, x.shape[0], FORWARD_ROWS):
                block = x[start:start + FORWARD_ROWS]
                out[start:start + len(block)] = forward_into(
                    self.spec, self._weights, self._biases, block, ws, None)
        return out

    def loss_and_gradients(
        self,
        x: FloatArray,
        targets: npt.NDArray[Any],
        loss: LossName,
        regularisers: Sequence[Regulariser] = (),
        keep_masks: Sequence[BoolArray] | None = None,
    ) -> tuple[float, dict[str, FloatArray]]:
        x = np.asarray(x, dtype=self.dtype)
        if targets.dtype.kind == "f":
            targets = np.asarray(targets, dtype=self.dtype)
        ws = Workspace(self.spec, x.shape[0], np.dtype(self.dtype))
        with np.errstate(over="ignore"):
            objective = backprop(self.spec, self._weights, self._biases, x, targets, loss,
                                 tuple(regularisers), ws, keep_masks)
        grads: dict[str, FloatArray] = {}
        for i in range(self.spec.n_layers):
            grads[weights_name(i)] = ws.grad_w[i].copy()
            grads[bias_name(i)] = ws.grad_b[i].copy()
        return objective, grads

    def start_training(self, config: TrainingConfig, x: FloatArray,
                       targets: npt.NDArray[Any]) -> NumpyTrainer:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        if targets.dtype.kind == "f":
            targets = np.ascontiguousarray(targets, dtype=self.dtype)
        return NumpyTrainer(self.spec, self._weights, self._biases, config, x, targets)


class NumpyBackend:
    """:class:`mlpcore.backend.Backend` in plain NumPy with hand-written backpropagation."""

    name: str = "numpy"
    contract_version: int = CONTRACT_VERSION
    capabilities: frozenset[str] = frozenset({Capability.FLOAT64, Capability.GRADIENTS,
                                              Capability.NATIVE_DROPOUT})
    training_methods: tuple[str, ...] = ("manual",)

    def __init__(self) -> None:
        self.activations = NumpyActivations()
        self.losses = NumpyLosses()
        self.regularisers = NumpyRegularisers()
        self.dropout = NumpyDropout()

    def framework_version(self) -> str:
        return np.__version__

    def build(self, spec: MLPSpec, variables: Mapping[str, FloatArray],
              dtype: DTypeName) -> NumpyModel:
        return NumpyModel(spec, variables, dtype)

    def __repr__(self) -> str:
        return f"<mlpcore backend 'numpy' (NumPy {np.__version__})>"
