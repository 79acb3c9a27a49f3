"""Contract: inverted dropout ``y = x · m / (1 - p)`` in training (0 for ``p = 1``), the identity
in eval mode, and the portable keep-masks every backend can reproduce. See docs/contracts.md."""

from __future__ import annotations

import math
from typing import Literal, Protocol, get_args, runtime_checkable

import numpy as np
import numpy.typing as npt

from mlpcore.random import Purpose, stream_words
from mlpcore.spec import MLPSpec, check_rate

__all__ = ["DROPOUT_MODES", "DropoutMode", "DropoutOps", "check_rate", "dropout_widths",
           "keep_scale", "keep_threshold", "portable_keep_mask", "scaled_mask"]

DropoutMode = Literal["portable", "native"]
DROPOUT_MODES: tuple[str, ...] = get_args(DropoutMode)


def keep_scale(rate: float) -> float:
    """The factor applied to kept units: ``1 / (1 - p)``, and 0 for ``p = 1``."""
    return 0.0 if rate >= 1.0 else 1.0 / (1.0 - rate)


def scaled_mask(keep: npt.NDArray[np.bool_], rate: float,
                dtype: npt.DTypeLike) -> npt.NDArray[np.floating]:
    """``keep · keep_scale(rate)`` in ``dtype``, the scale rounded to ``dtype`` first."""
    scaled: npt.NDArray[np.floating] = keep.astype(dtype) * np.asarray(keep_scale(rate), dtype)
    return scaled


def dropout_widths(spec: MLPSpec) -> tuple[int, ...]:
    """The widths of the hidden layers dropout follows; none when ``spec.dropout`` is 0."""
    return spec.sizes[1:-1] if spec.dropout > 0.0 else ()


def keep_threshold(rate: float) -> int:
    """The least 32-bit word ``w`` whose uniform ``u = (w >> 8) · 2^-24`` (NumPy's float32 draw)
    is kept: ``u >= float32(p)`` exactly when ``w >= ceil(float32(p) · 2^24) · 2^8``. It is 0 for
    ``p = 0`` (all kept) and ``2^32`` (none kept) when ``float32(p) = 1``."""
    return math.ceil(float(np.float32(check_rate(rate))) * 2**24) << 8


def portable_keep_mask(seed: int, step: int, layer: int, shape: tuple[int, ...],
                       rate: float) -> npt.NDArray[np.bool_]:
    """The keep-mask after hidden layer ``layer`` at training ``step``: ``u >= float32(p)`` for
    ``u`` uniform float32 from ``stream(seed, DROPOUT, step, layer)``, computed as
    ``word >= keep_threshold(p)`` on the stream's 32-bit words (the same mask, without floats)."""
    threshold = keep_threshold(rate)
    keep = np.empty(shape, bool)  # refuses a negative dimension as random(shape) did
    words = stream_words(seed, Purpose.DROPOUT, step, layer, count=keep.size)
    np.greater_equal(words.reshape(keep.shape), threshold, out=keep)
    return keep


@runtime_checkable
class DropoutOps(Protocol):
    """A backend's dropout. ``ValueError`` for a rate outside [0, 1] or NaN; with ``keep_mask``
    it uses exactly that mask, without one it draws from its native RNG seeded by ``seed``."""

    def apply(self, x: npt.NDArray[np.floating], rate: float, *, training: bool,
              keep_mask: npt.NDArray[np.bool_] | None = None,
              seed: int = 0) -> npt.NDArray[np.floating]:
        ...
