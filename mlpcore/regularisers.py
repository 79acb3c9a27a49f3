"""Contract: weight penalties on the weight matrices only, never biases: ``L2(λ) = λ Σ W² / 2``
and ``L1(λ) = λ Σ |W|`` (gradient ``λ sign(W)``, 0 at 0). See docs/contracts.md."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = ["L1", "L2", "REGULARISERS", "Regulariser", "RegulariserOps"]


@dataclass(frozen=True)
class _Strength:
    """``strength`` (λ) is checked when made: a finite number >= 0, else ``ValueError``."""

    strength: float

    def __post_init__(self) -> None:
        value = self.strength
        if (isinstance(value, bool) or not isinstance(value, int | float | np.floating)
                or not math.isfinite(value) or value < 0):
            raise ValueError(f"{type(self).__name__} strength must be a finite number >= 0, "
                             f"got {value!r}")
        object.__setattr__(self, "strength", float(value))


@dataclass(frozen=True)
class L2(_Strength):
    """``λ · Σ w² / 2`` over the weight matrices."""

    kind: Literal["l2"] = "l2"


@dataclass(frozen=True)
class L1(_Strength):
    """``λ · Σ |w|`` over the weight matrices."""

    kind: Literal["l1"] = "l1"


Regulariser = L1 | L2
REGULARISERS: tuple[str, ...] = ("l1", "l2")
"""Every regulariser ``kind``."""


@runtime_checkable
class RegulariserOps(Protocol):
    """A backend's regularisers. ``weights`` are the weight matrices only."""

    def value(self, regulariser: Regulariser,
              weights: Sequence[npt.NDArray[np.floating]]) -> float:
        """The penalty, a Python float."""

    def gradient(self, regulariser: Regulariser,
                 weights: Sequence[npt.NDArray[np.floating]]) -> list[npt.NDArray[np.floating]]:
        """``d penalty / d W_i`` for each weight matrix, same shapes and dtypes."""
