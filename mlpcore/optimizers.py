"""The optimizers, as contracts. For every variable ``w`` (weights and biases) with gradient ``g``
of the objective, at update number ``t = 1, 2, …`` (slots start at 0)::

    SGD(lr)                      w ← w − lr·g
    SGD(lr, momentum=μ)          v ← μ·v + g;  w ← w − lr·v              (torch.optim.SGD's form)
    SGD(lr, μ, nesterov=True)    v ← μ·v + g;  w ← w − lr·(g + μ·v)
    Adam(lr, (β1, β2), ε)        m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
                                 w ← w − lr·m̂ / (√v̂ + ε),  m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)

Adam is torch.optim.Adam's form (Kingma & Ba's Algorithm 1): ε is added to √v̂, after the bias
correction (keras.optimizers.Adam adds it to √v; docs/contracts.md, "Optimizers").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "SGD",
    "SLOTS",
    "Adam",
    "Optimizer",
    "OptimizerState",
    "adam_factors",
    "kind",
    "slot_names",
    "state_problems",
]


def _number(value: Any, what: str, low: float, high: float, *, low_open: bool = False) -> float:
    """``value`` as a float in ``[low, high)`` (``(low, high)`` with ``low_open``), else
    ``ValueError`` naming ``what``."""
    ok = (not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
          and (value > low if low_open else value >= low) and value < high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {'inf' if high == math.inf else high})"
        raise ValueError(f"{what} must be a finite number in {interval}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent. ``lr`` finite and > 0; ``momentum`` in [0, 1); ``nesterov``
    needs momentum > 0."""

    lr: float = 0.1
    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _number(self.lr, "SGD lr", 0.0, math.inf, low_open=True))
        object.__setattr__(self, "momentum", _number(self.momentum, "SGD momentum", 0.0, 1.0))
        if not isinstance(self.nesterov, bool):
            raise TypeError(f"SGD nesterov must be True or False, got {self.nesterov!r}")
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("SGD nesterov=True needs a momentum > 0")


@dataclass(frozen=True)
class Adam:
    """Adam with bias correction. ``lr`` finite and > 0; ``betas`` two numbers in [0, 1);
    ``eps`` finite and > 0."""

    lr: float = 0.001
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        object.__setattr__(self, "lr", _number(self.lr, "Adam lr", 0.0, math.inf, low_open=True))
        betas = self.betas
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise ValueError(f"Adam betas must be a pair (β1, β2), got {betas!r}")
        object.__setattr__(self, "betas", tuple(_number(b, f"Adam betas[{i}]", 0.0, 1.0)
                                                for i, b in enumerate(betas)))
        object.__setattr__(self, "eps", _number(self.eps, "Adam eps", 0.0, math.inf,
                                                low_open=True))


Optimizer = SGD | Adam


def adam_factors(optimizer: Adam, t: int) -> tuple[float, float]:
    """``(lr / (1 − β1^t), √(1 − β2^t))`` of update ``t``, in float64 as torch.optim.Adam takes
    them: ``w ← w − step_size · m / (√v / √(1 − β2^t) + ε)``."""
    beta1, beta2 = optimizer.betas
    return optimizer.lr / (1.0 - beta1**t), math.sqrt(1.0 - beta2**t)

SLOTS: dict[str, tuple[str, ...]] = {"sgd": (), "momentum": ("velocity",), "adam": ("m", "v")}
"""The state each kind of update keeps per variable, by slot name."""


def kind(optimizer: Optimizer) -> str:
    """``"adam"``, ``"momentum"`` (SGD with momentum, Nesterov or not) or ``"sgd"``."""
    if isinstance(optimizer, Adam):
        return "adam"
    return "momentum" if optimizer.momentum > 0.0 else "sgd"


def slot_names(optimizer: Optimizer, variables: list[str] | tuple[str, ...]) -> list[str]:
    """``{variable}/{slot}`` for every variable and slot of ``optimizer``, variables first:
    ``["dense_0/weights/m", "dense_0/weights/v", …]``."""
    return [f"{name}/{slot}" for name in variables for slot in SLOTS[kind(optimizer)]]


@dataclass(frozen=True)
class OptimizerState:
    """Where a run of ``optimizer`` stands: ``step`` updates made (Adam's ``t``), its ``slots``
    by :func:`slot_names` (NumPy, canonical layout, the model's dtype), and what ``mlpcore.fit``
    continues from besides: the epochs done and the ``seed`` of its shuffling and dropout masks
    (a backend's trainer reports 0 and ``None``; ``fit`` sets them)."""

    optimizer: Optimizer
    step: int = 0
    slots: Mapping[str, npt.NDArray[np.floating]] = field(default_factory=dict)
    epoch: int = 0
    seed: int | None = None


def state_problems(state: OptimizerState, shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Every way ``state`` does not fit a model with variables of ``shapes``: missing,
    unexpected and wrong-shaped slots, a negative or non-integer step or epoch."""
    expected = {name: shapes[name.rsplit("/", 1)[0]]
                for name in slot_names(state.optimizer, tuple(shapes))}
    problems = [f"missing optimizer slot {name!r} (expected shape {shape})"
                for name, shape in expected.items() if name not in state.slots]
    problems += [f"unexpected optimizer slot {name!r}" for name in state.slots
                 if name not in expected]
    problems += [f"optimizer slot {name!r} has shape {np.shape(state.slots[name])}, expected "
                 f"{shape}" for name, shape in expected.items()
                 if name in state.slots and np.shape(state.slots[name]) != shape]
    counters = [("step", state.step), ("epoch", state.epoch)]
    counters += [] if state.seed is None else [("seed", state.seed)]
    return problems + [f"optimizer {what} must be an integer >= 0, got {value!r}"
                       for what, value in counters
                       if isinstance(value, bool) or not isinstance(value, int | np.integer)
                       or value < 0]
