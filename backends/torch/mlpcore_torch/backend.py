"""The torch backend object and its model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from mlpcore.backend import CONTRACT_VERSION, Capability, TrainingConfig
from mlpcore.losses import LossName
from mlpcore.regularisers import Regulariser
from mlpcore.spec import DTypeName, MLPSpec, bias_name, weights_name
from mlpcore_torch.activations import TorchActivations
from mlpcore_torch.boundary import (
    FloatArray,
    as_tensor,
    canonical_weight,
    dtype_of,
    native_weight,
    to_numpy,
)
from mlpcore_torch.dropout import TorchDropout, scaled_mask_
from mlpcore_torch.losses import TorchLosses
from mlpcore_torch.network import forward, objective
from mlpcore_torch.regularisers import TorchRegularisers
from mlpcore_torch.training import TRAINING_METHODS, TorchTrainer

FORWARD_ROWS = 8192
"""Rows per forward-pass block, bounding the memory of ``forward`` on a large dataset."""


class TorchModel:
    """:class:`mlpcore.backend.BackendModel` holding CPU tensors in torch's native layout.

    ``dense_{i}/weights`` is stored as the ``(fan_out, fan_in)`` tensor that ``nn.Linear.weight``
    and ``F.linear`` use; every array crossing the boundary is converted to or from the canonical
    ``(fan_in, fan_out)`` layout exactly (see :mod:`mlpcore_torch.boundary`). The tensors are
    leaves with ``requires_grad=True`` and are updated in place, so a running trainer keeps
    seeing them.
    """

    def __init__(self, spec: MLPSpec, variables: Mapping[str, FloatArray], dtype: DTypeName):
        self.spec = spec
        self.dtype: DTypeName = dtype
        self._torch_dtype = dtype_of(dtype)
        self._weights = [native_weight(np.asarray(variables[weights_name(i)], dtype=dtype))
                         .requires_grad_(True) for i in range(spec.n_layers)]
        self._biases = [torch.from_numpy(np.array(variables[bias_name(i)], dtype=dtype,
                                                  copy=True)).requires_grad_(True)
                        for i in range(spec.n_layers)]

    @property
    def native_weights(self) -> list[torch.Tensor]:
        """The weight tensors themselves, ``(fan_out, fan_in)`` each (not copies)."""
        return list(self._weights)

    @property
    def native_biases(self) -> list[torch.Tensor]:
        """The bias tensors themselves, ``(fan_out,)`` each (not copies)."""
        return list(self._biases)

    def read_variables(self) -> dict[str, FloatArray]:
        values: dict[str, FloatArray] = {}
        for i, (w, b) in enumerate(zip(self._weights, self._biases, strict=True)):
            values[weights_name(i)] = canonical_weight(w)
            values[bias_name(i)] = to_numpy(b)
        return values

    def write_variables(self, values: Mapping[str, FloatArray]) -> None:
        # convert everything first; assign (in place) only once every conversion has succeeded
        new_weights = [native_weight(np.asarray(values[weights_name(i)], dtype=self.dtype))
                       for i in range(self.spec.n_layers)]
        new_biases = [as_tensor(np.asarray(values[bias_name(i)], dtype=self.dtype))
                      for i in range(self.spec.n_layers)]
        sources = new_weights + new_biases
        targets = self._weights + self._biases
        for target, source in zip(targets, sources, strict=True):
            if target.shape != source.shape:
                raise ValueError(f"variable shape {tuple(source.shape)} does not fit "
                                 f"{tuple(target.shape)}")
        with torch.no_grad():
            for target, source in zip(targets, sources, strict=True):
                target.copy_(source)

    def forward(self, x: FloatArray) -> FloatArray:
        inputs = as_tensor(x).to(self._torch_dtype)
        out = torch.empty((inputs.shape[0], self.spec.n_outputs), dtype=self._torch_dtype)
        with torch.inference_mode():
            for start in range(0, inputs.shape[0], FORWARD_ROWS):
                block = inputs[start:start + FORWARD_ROWS]
                out[start:start + block.shape[0]] = forward(
                    self.spec.activation, self._weights, self._biases, block)
        result: FloatArray = out.numpy()
        return result

    def loss_and_gradients(
        self,
        x: FloatArray,
        targets: npt.NDArray[Any],
        loss: LossName,
        regularisers: Sequence[Regulariser] = (),
        keep_masks: Sequence[npt.NDArray[np.bool_]] | None = None,
    ) -> tuple[float, dict[str, FloatArray]]:
        inputs = as_tensor(x).to(self._torch_dtype)
        labels = self._targets(targets)
        masks: list[torch.Tensor] = []
        if keep_masks is not None and self.spec.dropout > 0.0:
            masks = [scaled_mask_(torch.empty(m.shape, dtype=self._torch_dtype), as_tensor(m),
                                  self.spec.dropout) for m in keep_masks]
        value = objective(self.spec.activation, loss, tuple(regularisers), self._weights,
                          self._biases, inputs, labels, masks)
        params = self._weights + self._biases
        grads = torch.autograd.grad(value, params)
        n = self.spec.n_layers
        result: dict[str, FloatArray] = {}
        for i in range(n):
            result[weights_name(i)] = canonical_weight(grads[i])
            result[bias_name(i)] = to_numpy(grads[n + i])
        return float(value.detach()), result

    def start_training(self, config: TrainingConfig, x: FloatArray,
                       targets: npt.NDArray[Any]) -> TorchTrainer:
        return TorchTrainer(self.spec, self._weights, self._biases, config,
                            as_tensor(x).to(self._torch_dtype), self._targets(targets))

    def _targets(self, targets: npt.NDArray[Any]) -> torch.Tensor:
        """Integer labels as int64 (N,); float targets (N, K) in the model dtype. No copy when
        they already are."""
        tensor = as_tensor(targets)
        return tensor.to(self._torch_dtype if tensor.is_floating_point() else torch.int64)


class TorchBackend:
    """:class:`mlpcore.backend.Backend` in PyTorch (CPU): autograd, ``torch.optim``,
    ``torch.compile``."""

    name = "torch"
    contract_version = CONTRACT_VERSION
    capabilities = frozenset({Capability.FLOAT64, Capability.GRADIENTS,
                              Capability.NATIVE_DROPOUT, Capability.COMPILE})
    training_methods = TRAINING_METHODS

    def __init__(self) -> None:
        self.activations = TorchActivations()
        self.losses = TorchLosses()
        self.regularisers = TorchRegularisers()
        self.dropout = TorchDropout()

    def framework_version(self) -> str:
        return str(torch.__version__)

    def build(self, spec: MLPSpec, variables: Mapping[str, FloatArray],
              dtype: DTypeName) -> TorchModel:
        return TorchModel(spec, variables, dtype)

    def __repr__(self) -> str:
        return f"<mlpcore backend 'torch' (PyTorch {torch.__version__})>"
