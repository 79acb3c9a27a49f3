"""The torch backend object and its model."""

from __future__ import annotations

from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch

from mlpcore.backend import Capability, TrainingConfig
from mlpcore.backend_common import AUTODIFF_CAPABILITIES, BackendBase, DistributedBase, ModelBase
from mlpcore.devices import Portable
from mlpcore.optimizers import OptimizerState
from mlpcore_torch import distributed
from mlpcore_torch.ops import OPS, as_tensor
from mlpcore_torch.training import TorchTrainer, canonical

FloatArray = npt.NDArray[np.floating]


class TorchModel(ModelBase):
    """:class:`mlpcore.backend.BackendModel` holding leaf tensors on ``device``, updated in
    place, ``dense_{i}/weights`` as ``nn.Linear.weight`` ``(fan_out, fan_in)``: every array
    crossing the boundary is transposed (exactly) to or from the canonical layout, and copied."""

    training_methods = ("autodiff", "optimizer", "manual")
    ops = OPS

    def _tensor(self, array: npt.NDArray[Any]) -> torch.Tensor:
        return as_tensor(array).to(self.device)

    def _native(self, array: FloatArray) -> torch.Tensor:
        return self._tensor(np.array(array.T, order="C")).requires_grad_(True)

    _canonical = staticmethod(canonical)

    def _assign(self, weights: list[torch.Tensor], biases: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for target, source in zip(self._weights + self._biases, weights + biases,
                                      strict=True):
                target.copy_(source)

    def _forward(self, x: FloatArray) -> FloatArray:
        with torch.inference_mode():
            return super()._forward(x)

    def _trainer(self, config: TrainingConfig, x: FloatArray, targets: npt.NDArray[Any],
                 state: OptimizerState | None) -> TorchTrainer:
        return TorchTrainer(self.spec, self._weights, self._biases, config, self._tensor(x),
                            self._tensor(targets), self.dtype, state)


class TorchBackend(DistributedBase, BackendBase):
    """:class:`mlpcore.backend.Backend` in PyTorch: autograd, ``torch.optim``, ``torch.compile``,
    on the CPU, CUDA GPUs or Apple's MPS; mixed precision in bfloat16 and float16; data-parallel
    training on ``torch.distributed``; and backprop by hand (``manual``)."""

    name = "torch"
    capabilities = AUTODIFF_CAPABILITIES | {Capability.DATA_PARALLEL, Capability.BFLOAT16,
                                            Capability.FLOAT16, Capability.OPTIMIZERS}
    training_methods = TorchModel.training_methods
    framework = torch
    model = TorchModel
    ops = OPS
    distributed: ClassVar[ModuleType] = distributed

    def devices(self) -> list[str]:
        found = ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
        return found + (["mps"] if torch.backends.mps.is_available() else [])

    def device_name(self, device: str, portable: Portable | None) -> str:
        """``torch.device``'s spellings as ``cpu``, ``cuda:N``, ``mps``; portable ``gpu:N`` is
        ``cuda:N`` (``mps`` on a Mac without CUDA)."""
        if portable is not None:
            if portable.kind == "cpu":
                return super().device_name(device, portable)
            if (portable.index == 0 and not torch.cuda.is_available()
                    and torch.backends.mps.is_available()):
                return "mps"
            return f"cuda:{portable.index}"
        try:
            parsed = torch.device(device)
        except (RuntimeError, ValueError) as error:
            raise ValueError(str(error).splitlines()[0]) from None
        if parsed.type == "cuda":
            return f"cuda:{parsed.index or 0}"
        return parsed.type if parsed.index in (None, 0) else str(parsed)
