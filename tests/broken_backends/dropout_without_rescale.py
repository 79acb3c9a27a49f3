"""Dropout that forgets inverted dropout's ``1 / (1 - p)`` rescale of the kept units."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mlpcore.dropout import check_rate
from mlpcore_numpy.backend import NumpyBackend
from mlpcore_numpy.ops import native_keep_mask


class UnscaledDropout:
    """``x * m``: the expected value shrinks to ``(1 - p) x``."""

    def apply(self, x: npt.NDArray[np.floating], rate: float, *, training: bool,
              keep_mask: npt.NDArray[np.bool_] | None = None,
              seed: int = 0) -> npt.NDArray[np.floating]:
        rate = check_rate(rate)
        x = np.asarray(x)
        if not training or rate == 0.0:
            return x.copy()
        if keep_mask is None:
            keep_mask = native_keep_mask(np.random.default_rng(seed), x.shape, rate)
        return np.where(keep_mask, x, 0).astype(x.dtype)  # BUG: no 1 / (1 - p)


class Backend(NumpyBackend):
    """The NumPy backend with :class:`UnscaledDropout`."""

    name = "broken_dropout_without_rescale"

    def __init__(self) -> None:
        super().__init__()
        self.dropout = UnscaledDropout()  # type: ignore[assignment]
