"""Checks on user data, done once in the core so every backend rejects bad input the same way.

Inputs ``x`` are floating arrays of shape (N, n_inputs). Integer, boolean, complex and object arrays
are refused rather than silently converted (``images.astype("float32") / 255`` is usually meant).
Targets are integer class labels (N,) in [0, n_outputs), or floating arrays (N, n_outputs).

NaN and infinity: :func:`check_inputs` with ``finite=True`` (used by ``fit`` and ``evaluate``)
refuses them and names the first bad row; ``predict`` lets them through, and a row with NaN gives
NaN outputs for that row only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.errors import InvalidInputError
from mlpcore.losses import LossName

__all__ = ["check_inputs", "check_targets"]


def check_inputs(x: Any, n_inputs: int, dtype: str, *, what: str = "inputs",
                 finite: bool = False) -> npt.NDArray[np.floating]:
    """Return ``x`` as a C-contiguous array of ``dtype`` with shape (N, n_inputs), N >= 1."""
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise InvalidInputError(
            f"{what} must be a floating-point array, got dtype {array.dtype}; "
            f"convert it first, e.g. x.astype('float32') / 255 for 8-bit images")
    if array.ndim != 2:
        raise InvalidInputError(
            f"{what} must have shape (batch, {n_inputs}), got shape {array.shape}")
    if array.shape[0] == 0:
        raise InvalidInputError(f"{what} is empty: shape {array.shape}; give at least one row")
    if array.shape[1] != n_inputs:
        raise InvalidInputError(
            f"{what} have width {array.shape[1]}, but the model expects {n_inputs} "
            f"(shape (batch, {n_inputs}), got {array.shape})")
    array = np.ascontiguousarray(array, dtype=dtype)
    if finite:
        # a row sum is finite unless the row holds NaN or inf, or finite values overflow it;
        # only the rows whose sum is not finite are checked element by element
        with np.errstate(over="ignore", invalid="ignore"):
            suspects = np.flatnonzero(~np.isfinite(array.sum(axis=1)))
        bad = suspects[~np.isfinite(array[suspects]).all(axis=1)]
        if bad.size:
            row = int(bad[0])
            raise InvalidInputError(
                f"{what} contain NaN or infinity (after conversion to {dtype}) in {bad.size} "
                f"row(s), first at row {row}")
    return array


def check_targets(targets: Any, n_rows: int, n_outputs: int, loss: LossName, dtype: str,
                  *, what: str = "labels") -> npt.NDArray[Any]:
    """Return targets as int64 labels (N,) or ``dtype`` floats (N, n_outputs), validated for
    ``loss``: MSE needs float targets; cross-entropy takes either."""
    array = np.asarray(targets)
    if array.ndim == 1 and array.dtype.kind in "iu":
        if loss == "mse":
            raise InvalidInputError(
                f"mse needs float {what} of shape ({n_rows}, {n_outputs}), got integer labels; "
                f"one-hot encode them or use softmax_cross_entropy")
        if array.shape[0] != n_rows:
            raise InvalidInputError(
                f"{what} have {array.shape[0]} rows but the inputs have {n_rows}")
        if array.size and (array.min() < 0 or array.max() >= n_outputs):
            bad = array[(array < 0) | (array >= n_outputs)][0]
            raise InvalidInputError(
                f"{what} must be class indices in [0, {n_outputs}), found {int(bad)}")
        return np.ascontiguousarray(array, dtype=np.int64)
    if array.ndim == 2 and array.dtype.kind == "f":
        if array.shape != (n_rows, n_outputs):
            raise InvalidInputError(
                f"{what} must have shape ({n_rows}, {n_outputs}), got {array.shape}")
        if not np.isfinite(array).all():
            raise InvalidInputError(f"{what} contain NaN or infinity")
        return np.ascontiguousarray(array, dtype=dtype)
    raise InvalidInputError(
        f"{what} must be integer class indices of shape ({n_rows},) or floats of shape "
        f"({n_rows}, {n_outputs}); got dtype {array.dtype} and shape {array.shape}")
