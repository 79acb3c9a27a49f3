"""Losses in NumPy: value and gradient with respect to the network outputs, in one pass.

``TABLE[name](outputs, targets, grad_out)`` returns the batch-mean loss and writes ``dL/d
outputs`` into ``grad_out`` (the outputs' shape). Maths in :mod:`mlpcore.losses`; ``targets`` are
integer labels (N,) or floats (N, K).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend_common import FloatArray, Table
from mlpcore.losses import LossName


def _mse(outputs: FloatArray, targets: npt.NDArray[Any], grad_out: FloatArray) -> float:
    np.subtract(outputs, targets, out=grad_out)
    loss = float(np.vdot(grad_out, grad_out)) / grad_out.size
    grad_out *= 2.0 / grad_out.size
    return loss


def _cross_entropy(outputs: FloatArray, targets: npt.NDArray[Any], grad_out: FloatArray) -> float:
    n = outputs.shape[0]
    # shift by the row max, then log-sum-exp
    np.subtract(outputs, outputs.max(axis=1, keepdims=True), out=grad_out)
    # sum_k t_nk * shifted_nk: the shifted logit of the target class
    picked = (grad_out[np.arange(n), targets] if targets.ndim == 1
              else (grad_out * targets).sum(axis=1))
    np.exp(grad_out, out=grad_out)
    sums = grad_out.sum(axis=1, keepdims=True)
    grad_out /= sums
    log_sums = np.log(sums[:, 0])
    if targets.ndim == 1:
        loss = float(np.mean(log_sums - picked))
        grad_out[np.arange(n), targets] -= 1
    else:
        # for rows of t that do not sum to one: L_n = sum(t_n) * lse(z_n) - t_n . z_n
        target_mass = targets.sum(axis=1, dtype=grad_out.dtype)
        loss = float(np.mean(log_sums * target_mass - picked))
        grad_out *= target_mass[:, None]
        grad_out -= targets
    grad_out /= n
    return loss


TABLE: Table[Callable[[FloatArray, npt.NDArray[Any], FloatArray], float]] = Table(
    "loss", {"softmax_cross_entropy": _cross_entropy, "mse": _mse})


class NumpyLosses:
    """:class:`mlpcore.losses.LossOps` in NumPy."""

    def value(self, name: LossName, outputs: FloatArray, targets: npt.NDArray[Any]) -> float:
        return TABLE[name](outputs, targets, np.empty_like(outputs))

    def gradient(self, name: LossName, outputs: FloatArray,
                 targets: npt.NDArray[Any]) -> FloatArray:
        TABLE[name](outputs, targets, grad := np.empty_like(outputs))
        return grad
