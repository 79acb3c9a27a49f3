"""Activations in torch. See :mod:`mlpcore.activations` for the maths.

=========  ============================  ===============================
name       f(x)                          f'(x), from the output a = f(x)
=========  ============================  ===============================
relu       ``torch.relu``                ``[a > 0]``  (relu'(0) = 0)
sigmoid    ``torch.sigmoid``             ``a (1 - a)``
tanh       ``torch.tanh``                ``1 - a²``
=========  ============================  ===============================

``torch.sigmoid`` is finite at ``|x| = 1000`` in float32 and float64 (``exp`` overflowing to
``inf`` gives the correctly rounded 0, and torch raises no floating-point warnings). Autograd's
derivatives are the same formulas taken from the saved output, and relu's backward passes the
gradient only where ``a > 0``, so relu'(0) = 0 in training as well.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from mlpcore.activations import ActivationName, check_activation
from mlpcore_torch.boundary import as_tensor

FloatArray = npt.NDArray[np.floating]


def activate_(name: str, z: torch.Tensor) -> torch.Tensor:
    """Apply ``f`` to ``z`` in place and return it; ``z`` must be a fresh intermediate.

    Autograd accepts this after ``dense`` (either kernel): these three backward passes need only
    the output, and the dense product's backward does not need its own output.
    """
    if name == "relu":
        return torch.relu_(z)
    if name == "tanh":
        return torch.tanh_(z)
    return torch.sigmoid_(z)


def activate(name: str, x: torch.Tensor) -> torch.Tensor:
    """``f(x)`` as a new tensor, element-wise; any shape."""
    if name == "relu":
        return torch.relu(x)
    if name == "tanh":
        return torch.tanh(x)
    return torch.sigmoid(x)


def derivative_from_output(name: str, a: torch.Tensor) -> torch.Tensor:
    """``f'(z)`` given the output ``a = f(z)``: relu' = [a > 0], sigmoid' = a(1-a), tanh' = 1-a²."""
    if name == "relu":
        return (a > 0).to(a.dtype)
    if name == "tanh":
        return 1 - a * a
    return a * (1 - a)


def _floating(x: FloatArray) -> torch.Tensor:
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise TypeError(f"activations take floating-point arrays, got dtype {array.dtype}")
    return as_tensor(array)


class TorchActivations:
    """:class:`mlpcore.activations.ActivationOps` evaluated by torch, NumPy in and out."""

    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        check_activation(name)
        result: FloatArray = activate(name, _floating(x)).numpy()
        return result

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        check_activation(name)
        result: FloatArray = derivative_from_output(name, activate(name, _floating(x))).numpy()
        return result
