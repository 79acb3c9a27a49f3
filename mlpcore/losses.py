"""Contract: batch-mean losses ``softmax_cross_entropy`` (stable log-sum-exp; integer labels (N,)
or float targets (N, K)) and ``mse`` (the mean over every element). Maths: docs/contracts.md."""

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
    """A backend's losses. Targets are integer labels (N,) or float arrays (N, K)."""

    def value(self, name: LossName, outputs: npt.NDArray[np.floating],
              targets: npt.NDArray[Any]) -> float:
        """The batch-mean loss."""

    def gradient(self, name: LossName, outputs: npt.NDArray[np.floating],
                 targets: npt.NDArray[Any]) -> npt.NDArray[np.floating]:
        """``dL/d outputs``, shape and dtype of ``outputs``."""
