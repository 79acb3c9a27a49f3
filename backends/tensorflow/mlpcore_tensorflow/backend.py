"""The TensorFlow backend object and its model.

Variables are ``tf.Variable`` objects in the canonical layout, ``dense_{i}/weights``
(d_i, d_{i+1}) and ``dense_{i}/bias`` (d_{i+1},), so no conversion is needed at the boundary
beyond NumPy <-> tensor. Initial values are copied bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from mlpcore.activations import ActivationOps
from mlpcore.backend import CONTRACT_VERSION, Capability, TrainingConfig
from mlpcore.dropout import DropoutOps
from mlpcore.losses import LossName, LossOps
from mlpcore.regularisers import Regulariser, RegulariserOps
from mlpcore.spec import DTypeName, MLPSpec, bias_name, weights_name
from mlpcore_tensorflow.activations import TensorflowActivations
from mlpcore_tensorflow.dropout import TensorflowDropout
from mlpcore_tensorflow.losses import TensorflowLosses, as_target_tensor
from mlpcore_tensorflow.network import forward, objective
from mlpcore_tensorflow.regularisers import TensorflowRegularisers
from mlpcore_tensorflow.training import TensorflowTrainer

FloatArray = npt.NDArray[np.floating]

FORWARD_ROWS = 16384
"""Rows per eager forward block, bounding the memory of ``forward`` on a large dataset."""


class TensorflowModel:
    """:class:`mlpcore.backend.BackendModel` holding ``tf.Variable`` objects."""

    def __init__(self, spec: MLPSpec, variables: Mapping[str, FloatArray], dtype: DTypeName):
        self.spec = spec
        self.dtype: DTypeName = dtype
        self._weights = [tf.Variable(np.asarray(variables[weights_name(i)], dtype=dtype),
                                     name=weights_name(i)) for i in range(spec.n_layers)]
        self._biases = [tf.Variable(np.asarray(variables[bias_name(i)], dtype=dtype),
                                    name=bias_name(i)) for i in range(spec.n_layers)]

    def _named(self) -> list[tuple[str, tf.Variable]]:
        return [(name, v) for i in range(self.spec.n_layers)
                for name, v in ((weights_name(i), self._weights[i]),
                                (bias_name(i), self._biases[i]))]

    @property
    def variables(self) -> list[tf.Variable]:
        """The ``tf.Variable`` objects, layer by layer, weights before bias."""
        return [v for _, v in self._named()]

    def read_variables(self) -> dict[str, FloatArray]:
        return {name: np.array(v.numpy(), copy=True) for name, v in self._named()}

    def write_variables(self, values: Mapping[str, FloatArray]) -> None:
        named = self._named()
        # convert everything first; assign only when every conversion succeeded
        converted = [tf.convert_to_tensor(np.asarray(values[name], dtype=self.dtype))
                     for name, _ in named]
        for (name, variable), tensor in zip(named, converted, strict=True):
            if tensor.shape != variable.shape:
                raise ValueError(f"variable {name!r} has shape {tuple(tensor.shape)}, "
                                 f"expected {tuple(variable.shape)}")
        for (_, variable), tensor in zip(named, converted, strict=True):
            variable.assign(tensor)

    def forward(self, x: FloatArray) -> FloatArray:
        x = np.asarray(x, dtype=self.dtype)
        if x.shape[0] <= FORWARD_ROWS:
            out: FloatArray = forward(self.spec, self._weights, self._biases,
                                      tf.convert_to_tensor(x)).numpy()
            return out
        blocks = [forward(self.spec, self._weights, self._biases,
                          tf.convert_to_tensor(x[start:start + FORWARD_ROWS])).numpy()
                  for start in range(0, x.shape[0], FORWARD_ROWS)]
        return np.concatenate(blocks)

    def loss_and_gradients(
        self,
        x: FloatArray,
        targets: npt.NDArray[Any],
        loss: LossName,
        regularisers: Sequence[Regulariser] = (),
        keep_masks: Sequence[npt.NDArray[np.bool_]] | None = None,
    ) -> tuple[float, dict[str, FloatArray]]:
        inputs = tf.convert_to_tensor(np.asarray(x, dtype=self.dtype))
        labels = as_target_tensor(targets, inputs.dtype)
        masks = None if keep_masks is None else [
            tf.convert_to_tensor(np.asarray(m, dtype=bool)) for m in keep_masks]
        named = self._named()
        with tf.GradientTape() as tape:
            value = objective(self.spec, self._weights, self._biases, inputs, labels, loss,
                              tuple(regularisers), masks)
        grads = tape.gradient(value, [v for _, v in named],
                              unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return float(value.numpy()), {name: g.numpy() for (name, _), g in
                                      zip(named, grads, strict=True)}

    def start_training(self, config: TrainingConfig, x: FloatArray,
                       targets: npt.NDArray[Any]) -> TensorflowTrainer:
        inputs = tf.convert_to_tensor(np.ascontiguousarray(x, dtype=self.dtype))
        return TensorflowTrainer(self.spec, self._weights, self._biases, config, inputs,
                                 as_target_tensor(targets, inputs.dtype))


class TensorflowBackend:
    """:class:`mlpcore.backend.Backend` on TensorFlow: ``tf.GradientTape`` gradients and whole
    chunks of training steps inside one ``tf.function`` (optionally XLA-compiled)."""

    # annotated with the protocol's types, so that mypy sees a structural ``Backend``
    name: str = "tensorflow"
    contract_version: int = CONTRACT_VERSION
    capabilities: frozenset[str] = frozenset({Capability.FLOAT64, Capability.GRADIENTS,
                                              Capability.NATIVE_DROPOUT, Capability.COMPILE})
    training_methods: tuple[str, ...] = ("autodiff", "optimizer")

    def __init__(self) -> None:
        self.activations: ActivationOps = TensorflowActivations()
        self.losses: LossOps = TensorflowLosses()
        self.regularisers: RegulariserOps = TensorflowRegularisers()
        self.dropout: DropoutOps = TensorflowDropout()

    def framework_version(self) -> str:
        return str(tf.__version__)

    def build(self, spec: MLPSpec, variables: Mapping[str, FloatArray],
              dtype: DTypeName) -> TensorflowModel:
        return TensorflowModel(spec, variables, dtype)

    def __repr__(self) -> str:
        return f"<mlpcore backend 'tensorflow' (TensorFlow {tf.__version__})>"
