"""Contract: losses, averaged over the batch.

``softmax_cross_entropy`` takes logits ``z`` of shape (N, K) and either integer labels ``y`` of
shape (N,) with values in [0, K), or targets ``t`` of shape (N, K) (one-hot, or any rows of
probabilities)::

    L = -(1/N) * sum_n sum_k t_nk * log_softmax(z_n)_k
    log_softmax(z)_k = z_k - max(z) - log(sum_j exp(z_j - max(z)))      (log-sum-exp, stable)
    dL/dz_n = (s_n * softmax(z_n) - t_n) / N,    s_n = sum_k t_nk

(s_n = 1 for labels, one-hot rows and probability rows, giving the familiar ``softmax - t``.)

It is finite for logits as large as 1e30 and gives the same value for integer labels and their
one-hot encoding.

``mse`` takes outputs ``o`` and targets ``t`` of the same shape (N, K)::

    L = (1/N) * sum_n (1/K) * sum_k (o_nk - t_nk)^2        dL/do = 2 (o - t) / (N K)

i.e. the mean over every element, as in ``torch.nn.MSELoss`` and ``keras.losses.MeanSquaredError``.
Values are returned as Python floats, gradients in the dtype of the outputs.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, get_args, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["LOSSES", "LossName", "LossOps", "check_loss"]

LossName = Literal["softmax_cross_entropy", "mse"]
LOSSES: tuple[str, ...] = get_args(LossName)


def check_loss(name: str) -> LossName:
    """Return ``name`` if it names a supported loss, else raise ``ValueError``."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return name  # type: ignore[return-value]


@runtime_checkable
class LossOps(Protocol):
    """What a backend offers for losses. Targets are integer labels (N,) or float arrays (N, K)."""

    def value(self, name: LossName, outputs: npt.NDArray[np.floating],
              targets: npt.NDArray[Any]) -> float:
        """The batch-mean loss."""
        ...

    def gradient(self, name: LossName, outputs: npt.NDArray[np.floating],
                 targets: npt.NDArray[Any]) -> npt.NDArray[np.floating]:
        """``dL/d outputs``, shape and dtype of ``outputs``."""
        ...
