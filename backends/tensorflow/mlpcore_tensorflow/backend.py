"""The TensorFlow backend object and its model: ``tf.Variable`` objects in the canonical layout
``dense_{i}/weights`` (d_i, d_{i+1}), ``dense_{i}/bias`` (d_{i+1},), on one device (``/CPU:0``,
``/GPU:N``) where its ops run and its training set is copied."""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any, ClassVar

import numpy.typing as npt
import tensorflow as tf

from mlpcore.backend import Capability, TrainingConfig
from mlpcore.backend_common import (
    AUTODIFF_CAPABILITIES,
    BackendBase,
    DistributedBase,
    FloatArray,
    ModelBase,
)
from mlpcore.devices import Portable
from mlpcore.optimizers import OptimizerState
from mlpcore_tensorflow import distributed
from mlpcore_tensorflow.ops import OPS, on_device
from mlpcore_tensorflow.training import TensorflowTrainer


class TensorflowModel(ModelBase):
    """:class:`mlpcore.backend.BackendModel` holding ``tf.Variable`` objects, assigned in place
    (a running trainer sees every write)."""

    training_methods = ("autodiff", "optimizer", "manual")
    forward_rows = 16384
    ops = OPS

    def _placed(self) -> contextlib.AbstractContextManager[Any]:
        placed: contextlib.AbstractContextManager[Any] = tf.device(self.device)
        return placed

    def _tensor(self, array: npt.NDArray[Any]) -> tf.Tensor:
        return on_device(array, self.device)

    def _native(self, array: FloatArray) -> tf.Variable:
        return tf.Variable(array)

    def _canonical(self, value: tf.Variable) -> FloatArray:
        return OPS.numpy(value)

    def _assign(self, weights: list[tf.Variable], biases: list[tf.Variable]) -> None:
        for target, source in zip(self._weights + self._biases, weights + biases, strict=True):
            target.assign(source)

    def _trainer(self, config: TrainingConfig, x: FloatArray, targets: npt.NDArray[Any],
                 state: OptimizerState | None) -> TensorflowTrainer:
        return TensorflowTrainer(self.spec, self._weights, self._biases, config, x, targets,
                                 self.dtype, self.device, state)


class TensorflowBackend(DistributedBase, BackendBase):
    """:class:`mlpcore.backend.Backend` on TensorFlow (docs/backend-tensorflow.md). A
    ``TF_CONFIG`` cluster is joined when the backend is made: TensorFlow allows it only before
    the process's first op."""

    name = "tensorflow"
    capabilities = AUTODIFF_CAPABILITIES | {Capability.DATA_PARALLEL, Capability.BFLOAT16,
                                            Capability.FLOAT16, Capability.OPTIMIZERS,
                                            Capability.LOCAL_DATA_PARALLEL}
    training_methods = TensorflowModel.training_methods
    framework = tf
    model = TensorflowModel
    ops = OPS
    distributed: ClassVar[ModuleType] = distributed

    def __init__(self) -> None:
        super().__init__()
        distributed.join()

    def devices(self) -> list[str]:
        """The logical devices, ``/CPU:0`` first, as ``/TYPE:N`` (in a ``TF_CONFIG`` cluster their
        names begin ``/job:worker/replica:0/task:R``)."""
        found = [f"/{spec.device_type.upper()}:{spec.device_index or 0}"
                 for spec in (tf.DeviceSpec.from_string(d.name)
                              for d in tf.config.list_logical_devices())]
        return sorted(set(found), key=lambda name: (not name.startswith("/CPU"), name))

    def device_name(self, device: str, portable: Portable | None) -> str:
        """``tf.DeviceSpec``'s spellings (``/GPU:1``, ``/device:GPU:1``, ``gpu:1``) as
        ``/TYPE:N``; portable ``gpu:N`` is ``/GPU:N``, ``cpu`` ``/CPU:0``."""
        if portable is not None:
            return f"/{portable.kind.upper()}:{portable.index}"
        try:
            spec = tf.DeviceSpec.from_string(device)
        except ValueError as error:
            raise ValueError(str(error).splitlines()[0]) from None
        if spec.device_type is None or spec.job or spec.task is not None or spec.replica:
            raise ValueError("expected '/CPU:0' or '/GPU:N'")
        return f"/{spec.device_type.upper()}:{spec.device_index or 0}"
