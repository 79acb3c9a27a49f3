"""Contract: inverted dropout, and the portable masks every backend can reproduce.

With rate ``p`` in [0, 1] and a keep-mask ``m`` whose entries are 1 with probability ``1 - p``::

    training:  y = x * m / (1 - p)      for p < 1   (so E[y] = x)
               y = 0                    for p = 1   (no division, no NaN)
    eval:      y = x                    (the identity, whatever p is)

Shapes: ``x`` is (N, D); the mask has the same shape. Gradients flow as ``dy/dx = m / (1 - p)``.

Two sources of masks:

* **portable** (the default): :func:`portable_keep_mask` draws the mask in NumPy from the Philox
  stream ``(seed, DROPOUT, step, layer)``. Every backend gets exactly the same masks, so a run
  is reproducible across frameworks.
* **native**: the backend's own RNG, faster, reproducible only within that backend.
"""

from __future__ import annotations

from typing import Literal, Protocol, get_args, runtime_checkable

import numpy as np
import numpy.typing as npt

from mlpcore.random import Purpose, stream
from mlpcore.spec import check_rate

__all__ = [
    "DROPOUT_MODES",
    "DropoutMode",
    "DropoutOps",
    "check_rate",
    "keep_scale",
    "portable_keep_mask",
]

DropoutMode = Literal["portable", "native"]
DROPOUT_MODES: tuple[str, ...] = get_args(DropoutMode)


def keep_scale(rate: float) -> float:
    """The factor applied to kept units: ``1 / (1 - p)``, and 0 for ``p = 1``."""
    return 0.0 if rate >= 1.0 else 1.0 / (1.0 - rate)


def portable_keep_mask(seed: int, step: int, layer: int, shape: tuple[int, ...],
                       rate: float) -> npt.NDArray[np.bool_]:
    """The keep-mask (True = kept) for dropout after hidden layer ``layer`` at training ``step``.

    Entry ``u`` of a uniform [0, 1) draw keeps its unit when ``u >= p``, so ``p = 0`` keeps all and
    ``p = 1`` keeps none.
    """
    rate = check_rate(rate)
    uniform = stream(seed, Purpose.DROPOUT, step, layer).random(shape, dtype=np.float32)
    return uniform >= np.float32(rate)


@runtime_checkable
class DropoutOps(Protocol):
    """What a backend offers for dropout. Arrays cross as NumPy arrays.

    ``apply`` raises ``ValueError`` for a rate outside [0, 1] or NaN. With ``keep_mask`` given it
    must use exactly that mask; without it, it draws one from its native RNG seeded by ``seed``.
    """

    def apply(self, x: npt.NDArray[np.floating], rate: float, *, training: bool,
              keep_mask: npt.NDArray[np.bool_] | None = None,
              seed: int = 0) -> npt.NDArray[np.floating]:
        ...
