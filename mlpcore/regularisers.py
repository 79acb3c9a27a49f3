"""Contract: weight penalties added to the loss.

Both act on the weight matrices ``W_i`` only, never on biases::

    L2(λ) = λ * sum_i sum(W_i ** 2) / 2        dL2/dW_i = λ * W_i
    L1(λ) = λ * sum_i sum(|W_i|)               dL1/dW_i = λ * sign(W_i)   (sign(0) = 0)

λ (``strength``) must be finite and >= 0; anything else raises ``ValueError`` when the
regulariser is made. ``L2`` is the d2l book's weight decay and ``tf.nn.l2_loss`` times λ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["L1", "L2", "REGULARISERS", "Regulariser", "RegulariserOps"]


def _check_strength(kind: str, strength: float) -> float:
    if isinstance(strength, bool) or not isinstance(strength, int | float | np.floating):
        raise ValueError(f"{kind} strength must be a finite number >= 0, got {strength!r}")
    value = float(strength)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{kind} strength must be a finite number >= 0, got {strength!r}")
    return value


@dataclass(frozen=True)
class L2:
    """``λ · Σ w² / 2`` over the weight matrices."""

    strength: float
    kind: Literal["l2"] = "l2"

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", _check_strength("L2", self.strength))


@dataclass(frozen=True)
class L1:
    """``λ · Σ |w|`` over the weight matrices."""

    strength: float
    kind: Literal["l1"] = "l1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", _check_strength("L1", self.strength))


Regulariser = L1 | L2
REGULARISERS: tuple[str, ...] = ("l1", "l2")
"""Every regulariser ``kind``."""


@runtime_checkable
class RegulariserOps(Protocol):
    """What a backend offers for regularisers. ``weights`` are the weight matrices only."""

    def value(self, regulariser: Regulariser,
              weights: Sequence[npt.NDArray[np.floating]]) -> float:
        """The penalty, a Python float."""
        ...

    def gradient(self, regulariser: Regulariser,
                 weights: Sequence[npt.NDArray[np.floating]]) -> list[npt.NDArray[np.floating]]:
        """``d penalty / d W_i`` for each weight matrix, same shapes and dtypes."""
        ...
