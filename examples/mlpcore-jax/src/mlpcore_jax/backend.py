"""The JAX backend object and its model: what the plugin's ``factory`` returns.

Every public method runs inside :func:`~mlpcore_jax.ops.x64_scope`, so float64 models are
float64 without turning on ``jax_enable_x64`` for the process. Devices are JAX's, named
``platform:id`` (``cpu:0``, ``gpu:0``, ``tpu:0``); a model's arrays are committed to its device
(``jax.device_put``), so its jitted training chunks run there.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import numpy as np
import numpy.typing as npt
from mlpcore.backend import TrainingConfig
from mlpcore.backend_common import (
    AUTODIFF_CAPABILITIES,
    Activations,
    BackendBase,
    Dropout,
    Losses,
    ModelBase,
    Regularisers,
)
from mlpcore.devices import Portable
from mlpcore.optimizers import OptimizerState

from mlpcore_jax.ops import OPS, in_x64_scope
from mlpcore_jax.plugin import CONTRACT_VERSION
from mlpcore_jax.training import JaxTrainer

FloatArray = npt.NDArray[np.floating]


class JaxModel(ModelBase):
    """:class:`mlpcore.backend.BackendModel` holding JAX arrays in canonical layout. JAX arrays
    are immutable, so a write replaces them all at once, after every conversion succeeded."""

    training_methods = ("autodiff",)
    ops = OPS
    read_variables = in_x64_scope(ModelBase.read_variables)
    write_variables = in_x64_scope(ModelBase.write_variables)
    forward = in_x64_scope(ModelBase.forward)
    loss_and_gradients = in_x64_scope(ModelBase.loss_and_gradients)
    start_training = in_x64_scope(ModelBase.start_training)

    def _tensor(self, array: npt.NDArray[Any]) -> jax.Array:
        platform, _, index = self.device.partition(":")
        device = next(d for d in jax.devices(platform) if d.id == int(index))
        result: jax.Array = jax.device_put(np.asarray(array), device)
        return result

    def _native(self, array: FloatArray) -> jax.Array:
        return self._tensor(array)

    def _assign(self, weights: list[jax.Array], biases: list[jax.Array]) -> None:
        self._weights[:], self._biases[:] = weights, biases  # the trainer holds these lists

    def _trainer(self, config: TrainingConfig, x: FloatArray, targets: npt.NDArray[Any],
                 state: OptimizerState | None) -> JaxTrainer:
        if state is not None:  # mlpcore.fit passes none: the backend does not declare OPTIMIZERS
            raise ValueError("the jax backend cannot start from an optimizer state")
        return JaxTrainer(self.spec, self._weights, self._biases, config, self._tensor(x),
                          self._tensor(targets))


class JaxActivations(Activations):
    value = in_x64_scope(Activations.value)
    derivative = in_x64_scope(Activations.derivative)


class JaxLosses(Losses):
    value = in_x64_scope(Losses.value)
    gradient = in_x64_scope(Losses.gradient)


class JaxRegularisers(Regularisers):
    value = in_x64_scope(Regularisers.value)
    gradient = in_x64_scope(Regularisers.gradient)


class JaxDropout(Dropout):
    apply = in_x64_scope(Dropout.apply)


class JaxBackend(BackendBase):
    """:class:`mlpcore.backend.Backend` in JAX (CPU or whatever ``jaxlib`` runs on).

    Capabilities: float64 (in the x64 scope), gradients (``jax.value_and_grad``), native dropout
    (``jax.random``), and compile: every training chunk is one ``jax.jit``-compiled XLA program,
    so ``compiled=True`` runs the same program as the default.
    """

    name = "jax"
    contract_version = CONTRACT_VERSION
    capabilities = AUTODIFF_CAPABILITIES
    training_methods = JaxModel.training_methods
    framework = jax
    model = JaxModel
    ops = OPS
    build = in_x64_scope(BackendBase.build)

    def devices(self) -> list[str]:
        """JAX's CPU devices, then those of its default backend (GPUs, TPUs), ``platform:id``."""
        found = [*jax.devices("cpu"), *jax.devices()]
        return list(dict.fromkeys(f"{d.platform}:{d.id}" for d in found))

    def device_name(self, device: str, portable: Portable | None) -> str:
        """``platform:id`` (``cuda:N`` is ``gpu:N``); portable ``cpu`` is ``cpu:0``."""
        if portable is not None:
            return f"{portable.kind}:{portable.index}"
        match = re.fullmatch(r"([a-z]+):(\d+)", device)
        if match is None:
            raise ValueError("expected a JAX device as 'platform:id', e.g. 'cpu:0', 'gpu:1'")
        return f"{'gpu' if match[1] == 'cuda' else match[1]}:{match[2]}"

    def __init__(self) -> None:
        self.activations = JaxActivations(OPS)
        self.losses = JaxLosses(OPS)
        self.regularisers = JaxRegularisers(OPS)
        self.dropout = JaxDropout(OPS)
