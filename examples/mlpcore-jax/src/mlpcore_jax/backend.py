"""The JAX backend object and its model: what the plugin's ``factory`` returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
import numpy.typing as npt
from mlpcore.backend import Capability, TrainingConfig
from mlpcore.losses import LossName
from mlpcore.regularisers import Regulariser
from mlpcore.spec import DTypeName, MLPSpec, bias_name, weights_name

from mlpcore_jax.activations import JaxActivations
from mlpcore_jax.boundary import (
    FloatArray,
    dtype_of,
    in_x64_scope,
    targets_for,
    to_jax,
    to_numpy,
)
from mlpcore_jax.dropout import JaxDropout, scaled_mask
from mlpcore_jax.losses import JaxLosses
from mlpcore_jax.network import Params, predict, value_and_gradients
from mlpcore_jax.plugin import CONTRACT_VERSION
from mlpcore_jax.regularisers import JaxRegularisers
from mlpcore_jax.training import TRAINING_METHODS, JaxTrainer, VariableStore

FORWARD_ROWS = 8192
"""Rows per forward-pass block, bounding the memory of ``forward`` on a large dataset (and the
number of compiled shapes: every full block has the same one)."""


class JaxModel:
    """:class:`mlpcore.backend.BackendModel` holding JAX arrays in canonical layout.

    The variables live in a :class:`~mlpcore_jax.training.VariableStore` shared with the model's
    trainers; reading copies them out, writing converts every value first and then replaces them
    all at once (JAX arrays are immutable, so a replaced tuple is the whole assignment).
    """

    def __init__(self, spec: MLPSpec, variables: Mapping[str, FloatArray], dtype: DTypeName):
        self.spec = spec
        self.dtype: DTypeName = dtype
        self._jax_dtype = dtype_of(dtype)
        self._store = VariableStore(self._convert(variables))

    def _convert(self, values: Mapping[str, FloatArray]) -> Params:
        n = self.spec.n_layers
        weights = tuple(to_jax(values[weights_name(i)], self.dtype) for i in range(n))
        biases = tuple(to_jax(values[bias_name(i)], self.dtype) for i in range(n))
        return weights, biases

    @in_x64_scope
    def read_variables(self) -> dict[str, FloatArray]:
        weights, biases = self._store.params
        values: dict[str, FloatArray] = {}
        for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
            values[weights_name(i)] = to_numpy(w)
            values[bias_name(i)] = to_numpy(b)
        return values

    @in_x64_scope
    def write_variables(self, values: Mapping[str, FloatArray]) -> None:
        new = self._convert(values)  # raises before anything is assigned
        for old_group, new_group in zip(self._store.params, new, strict=True):
            for old, value in zip(old_group, new_group, strict=True):
                if old.shape != value.shape:
                    raise ValueError(f"variable shape {value.shape} does not fit {old.shape}")
        self._store.params = new

    @in_x64_scope
    def forward(self, x: FloatArray) -> FloatArray:
        inputs = np.asarray(x, dtype=self.dtype)
        out = np.empty((inputs.shape[0], self.spec.n_outputs), self.dtype)
        for start in range(0, inputs.shape[0], FORWARD_ROWS):
            block = inputs[start:start + FORWARD_ROWS]
            out[start:start + block.shape[0]] = np.asarray(
                predict(self._store.params, to_jax(block), self.spec.activation))
        return out

    @in_x64_scope
    def loss_and_gradients(
        self,
        x: FloatArray,
        targets: npt.NDArray[Any],
        loss: LossName,
        regularisers: Sequence[Regulariser] = (),
        keep_masks: Sequence[npt.NDArray[np.bool_]] | None = None,
    ) -> tuple[float, dict[str, FloatArray]]:
        masks: tuple[jax.Array, ...] = ()
        if keep_masks is not None and self.spec.dropout > 0.0:
            masks = tuple(scaled_mask(to_jax(m, "bool"), self.spec.dropout, self._jax_dtype)
                          for m in keep_masks)
        value, (grad_w, grad_b) = value_and_gradients(
            self._store.params, to_jax(x, self.dtype), targets_for(targets, self._jax_dtype),
            masks, self.spec.activation, loss, tuple(regularisers))
        grads: dict[str, FloatArray] = {}
        for i, (gw, gb) in enumerate(zip(grad_w, grad_b, strict=True)):
            grads[weights_name(i)] = to_numpy(gw)
            grads[bias_name(i)] = to_numpy(gb)
        return float(value), grads

    @in_x64_scope
    def start_training(self, config: TrainingConfig, x: FloatArray,
                       targets: npt.NDArray[Any]) -> JaxTrainer:
        return JaxTrainer(self.spec, self._store, config, to_jax(x, self.dtype),
                          targets_for(targets, self._jax_dtype))


class JaxBackend:
    """:class:`mlpcore.backend.Backend` in JAX (CPU or whatever ``jaxlib`` runs on).

    Capabilities: float64 (inside JAX's thread-local x64 scope, see
    :mod:`mlpcore_jax.boundary`), gradients (``jax.value_and_grad``), native dropout
    (``jax.random``), and compile: every training chunk is one ``jax.jit``-compiled XLA program,
    so ``compiled=True`` runs the same program as the default.
    """

    name = "jax"
    contract_version = CONTRACT_VERSION
    capabilities = frozenset({Capability.FLOAT64, Capability.GRADIENTS,
                              Capability.NATIVE_DROPOUT, Capability.COMPILE})
    training_methods = TRAINING_METHODS

    def __init__(self) -> None:
        self.activations = JaxActivations()
        self.losses = JaxLosses()
        self.regularisers = JaxRegularisers()
        self.dropout = JaxDropout()

    def framework_version(self) -> str:
        return str(jax.__version__)

    @in_x64_scope
    def build(self, spec: MLPSpec, variables: Mapping[str, FloatArray],
              dtype: DTypeName) -> JaxModel:
        return JaxModel(spec, variables, dtype)

    def __repr__(self) -> str:
        return f"<mlpcore backend 'jax' (JAX {jax.__version__})>"
