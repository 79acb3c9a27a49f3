"""Losses in torch, averaged over the batch. See :mod:`mlpcore.losses` for the maths.

``softmax_cross_entropy`` is ``torch.nn.functional.cross_entropy``, which works through
``log_softmax`` (the row max is subtracted before ``exp``, so logits of 1e30 stay finite). For
logits ``z`` (N, K) and float targets ``t`` (N, K) it computes

    L = -(1/N) Σ_n Σ_k t_nk log_softmax(z_n)_k = (1/N) Σ_n (s_n lse(z_n) - t_n·z_n),  s_n = Σ_k t_nk

which is the contract's general formula whether or not the rows of ``t`` sum to 1; integer
labels ``y`` (N,) pick ``t = one_hot(y)``. Its autograd derivative is
``dL/dz_n = (s_n softmax(z_n) - t_n) / N``.

``mse`` is ``torch.nn.functional.mse_loss`` with the mean over every element:
``L = Σ (o - t)² / (N K)``, ``dL/do = 2 (o - t) / (N K)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional

from mlpcore.losses import LossName, check_loss
from mlpcore_torch.boundary import as_tensor

FloatArray = npt.NDArray[np.floating]


def loss_value(name: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The batch-mean loss as a 0-d tensor in the dtype of ``outputs`` (N, K).

    ``targets`` are int64 labels (N,) (cross-entropy only) or floats (N, K) in that dtype.
    """
    if name == "mse":
        return functional.mse_loss(outputs, targets)
    return functional.cross_entropy(outputs, targets)


def _targets_for(outputs: torch.Tensor, targets: npt.NDArray[Any]) -> torch.Tensor:
    """Targets as a tensor: integer labels as int64, float targets in the outputs' dtype."""
    tensor = as_tensor(targets)
    if tensor.is_floating_point():
        return tensor.to(outputs.dtype)
    return tensor.to(torch.int64)


class TorchLosses:
    """:class:`mlpcore.losses.LossOps` evaluated by torch, NumPy in and out.

    The gradient is autograd's: ``torch.autograd.grad`` of the batch-mean loss.
    """

    def value(self, name: LossName, outputs: FloatArray, targets: npt.NDArray[Any]) -> float:
        check_loss(name)
        z = as_tensor(outputs)
        with torch.no_grad():
            return float(loss_value(name, z, _targets_for(z, targets)))

    def gradient(self, name: LossName, outputs: FloatArray,
                 targets: npt.NDArray[Any]) -> FloatArray:
        check_loss(name)
        z = as_tensor(outputs).detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_value(name, z, _targets_for(z, targets)), z)
        result: FloatArray = grad.numpy()
        return result
