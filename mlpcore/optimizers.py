"""SGD with optional momentum μ, for every variable ``w`` with gradient ``g`` of the objective::

    w <- w - lr * g                      momentum = 0
    v <- μ * v + g ;  w <- w - lr * v    v starts at 0 (torch.optim.SGD's form)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SGD"]


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent. ``lr`` finite and > 0; ``momentum`` in [0, 1)."""

    lr: float = 0.1
    momentum: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.lr, bool) or not isinstance(self.lr, int | float) \
                or not math.isfinite(self.lr) or self.lr <= 0:
            raise ValueError(f"SGD learning rate must be a finite number > 0, got {self.lr!r}")
        if isinstance(self.momentum, bool) or not isinstance(self.momentum, int | float) \
                or not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"SGD momentum must be in [0, 1), got {self.momentum!r}")
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "momentum", float(self.momentum))
