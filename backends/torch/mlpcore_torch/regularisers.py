"""L1 and L2 penalties in torch. See :mod:`mlpcore.regularisers` for the maths.

Over the weight matrices ``W_i`` only, never the biases::

    L2(λ) = λ · Σ_i Σ W_i² / 2        autograd: dL2/dW_i = λ · W_i
    L1(λ) = λ · Σ_i Σ |W_i|           autograd: dL1/dW_i = λ · sign(W_i),  sign(0) = 0

A sum over all entries does not depend on the layout, so the penalty is computed on the
backend's native ``(fan_out, fan_in)`` tensors directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import torch

from mlpcore.regularisers import Regulariser
from mlpcore_torch.boundary import as_tensor

FloatArray = npt.NDArray[np.floating]


def penalty(regularisers: Iterable[Regulariser], weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """The summed penalty of every regulariser over every weight matrix, a 0-d tensor.

    Differentiable: ``torch.autograd.grad`` of it gives the gradients above. With no
    regulariser or no weight matrix it is a float32 zero.
    """
    total: torch.Tensor | None = None
    for regulariser in regularisers:
        for w in weights:
            if regulariser.kind == "l2":
                term = torch.sum(w.square()) * (regulariser.strength / 2)
            else:
                term = torch.sum(w.abs()) * regulariser.strength
            total = term if total is None else total + term
    return torch.zeros(()) if total is None else total


class TorchRegularisers:
    """:class:`mlpcore.regularisers.RegulariserOps` evaluated by torch, NumPy in and out."""

    def value(self, regulariser: Regulariser, weights: Sequence[FloatArray]) -> float:
        with torch.no_grad():
            return float(penalty((regulariser,), [as_tensor(w) for w in weights]))

    def gradient(self, regulariser: Regulariser,
                 weights: Sequence[FloatArray]) -> list[FloatArray]:
        tensors = [as_tensor(w).detach().clone().requires_grad_(True) for w in weights]
        grads = torch.autograd.grad(penalty((regulariser,), tensors), tensors)
        return [g.numpy() for g in grads]
