"""Losses in NumPy: value and gradient with respect to the network outputs, in one pass.

See :mod:`mlpcore.losses` for the maths. ``targets`` are integer labels (N,) or floats (N, K).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import numpy.typing as npt

from mlpcore.losses import LossName, check_loss

FloatArray = npt.NDArray[np.floating]


def loss_and_gradient(name: LossName, outputs: FloatArray, targets: npt.NDArray[Any],
                      grad_out: FloatArray) -> float:
    """Return the batch-mean loss; write ``dL/d outputs`` into ``grad_out`` (outputs' shape)."""
    n = outputs.shape[0]
    if name == "mse":
        np.subtract(outputs, targets, out=grad_out)
        loss = float(np.vdot(grad_out, grad_out)) / grad_out.size
        grad_out *= 2.0 / grad_out.size
        return loss
    # softmax cross-entropy: shift by the row max, then log-sum-exp
    np.subtract(outputs, outputs.max(axis=1, keepdims=True), out=grad_out)
    shifted_logits_at_target = _pick(grad_out, targets)
    np.exp(grad_out, out=grad_out)
    sums = grad_out.sum(axis=1, keepdims=True)
    grad_out /= sums
    log_sums = np.log(sums[:, 0])
    if targets.ndim == 1:
        loss = float(np.mean(log_sums - shifted_logits_at_target))
        grad_out[np.arange(n), targets] -= 1
    else:
        # for rows of t that do not sum to one: L_n = sum(t_n) * lse(z_n) - t_n . z_n
        target_mass = targets.sum(axis=1, dtype=grad_out.dtype)
        loss = float(np.mean(log_sums * target_mass - shifted_logits_at_target))
        grad_out *= target_mass[:, None]
        grad_out -= targets
    grad_out /= n
    return loss


def _pick(shifted: FloatArray, targets: npt.NDArray[Any]) -> npt.NDArray[np.floating]:
    """``sum_k t_nk * shifted_nk`` for each row: the shifted logit of the target class."""
    if targets.ndim == 1:
        return cast("npt.NDArray[np.floating]", shifted[np.arange(shifted.shape[0]), targets])
    return cast("npt.NDArray[np.floating]", (shifted * targets).sum(axis=1))


class NumpyLosses:
    """:class:`mlpcore.losses.LossOps` in NumPy."""

    def value(self, name: LossName, outputs: FloatArray,
              targets: npt.NDArray[Any]) -> float:
        check_loss(name)
        return loss_and_gradient(name, outputs, targets, np.empty_like(outputs))

    def gradient(self, name: LossName, outputs: FloatArray,
                 targets: npt.NDArray[Any]) -> FloatArray:
        check_loss(name)
        grad = np.empty_like(outputs)
        loss_and_gradient(name, outputs, targets, grad)
        return grad
