"""The TensorFlow backend object and its model.

Variables are ``tf.Variable`` objects in the canonical layout, ``dense_{i}/weights``
(d_i, d_{i+1}) and ``dense_{i}/bias`` (d_{i+1},), so the boundary converts only NumPy <-> tensor
and copies the values bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from mlpcore.backend import Capability, TrainingConfig
from mlpcore.backend_common import AUTODIFF_CAPABILITIES, BackendBase, ModelBase
from mlpcore.optimizers import OptimizerState
from mlpcore_tensorflow.ops import OPS
from mlpcore_tensorflow.training import TensorflowTrainer

FloatArray = npt.NDArray[np.floating]


class TensorflowModel(ModelBase):
    """:class:`mlpcore.backend.BackendModel` holding ``tf.Variable`` objects, assigned in place
    (a running trainer sees every write)."""

    training_methods = ("autodiff", "optimizer", "manual")
    forward_rows = 16384
    ops = OPS

    def _native(self, array: FloatArray) -> tf.Variable:
        return tf.Variable(array)

    def _canonical(self, value: tf.Tensor) -> FloatArray:
        return np.array(value.numpy())

    def _assign(self, weights: list[tf.Variable], biases: list[tf.Variable]) -> None:
        for target, source in zip(self._weights + self._biases, weights + biases, strict=True):
            target.assign(source)

    def _trainer(self, config: TrainingConfig, x: FloatArray, targets: npt.NDArray[Any],
                 state: OptimizerState | None) -> TensorflowTrainer:
        return TensorflowTrainer(self.spec, self._weights, self._biases, config,
                                 tf.convert_to_tensor(x), tf.convert_to_tensor(targets), state)


class TensorflowBackend(BackendBase):
    """:class:`mlpcore.backend.Backend` on TensorFlow: ``tf.GradientTape`` gradients (or backprop
    by hand, ``manual``) and whole chunks of training steps inside one ``tf.function``
    (optionally XLA-compiled)."""

    name = "tensorflow"
    capabilities = AUTODIFF_CAPABILITIES | {Capability.OPTIMIZERS}
    training_methods = TensorflowModel.training_methods
    framework = tf
    model = TensorflowModel
    ops = OPS
